"""Showing mail safely: HTML inlined and cleaned, remote images held back, text linkified.

Pure functions on strings, no I/O, no models. The web layer decides where images come
from by passing two functions: ``inline_url(content_id)`` for ``cid:`` parts of the same
message and ``remote_url(url)`` for remote images (``None`` keeps them blocked). The
cleaned HTML is still shown only inside a sandboxed iframe under a strict
Content-Security-Policy (crmail/web/views/messages.py); this module is the first of
those layers, not the only one (docs/decisions/014-safe-display.md).

The order matters: the mail's own ``<style>`` rules are inlined first (css-inline, no
remote stylesheets, no network), because the cleaner then drops every ``<style>`` element;
the cleaner (nh3, an allowlist) keeps only plain formatting elements and attributes;
every ``style`` attribute is rebuilt declaration by declaration from a list of safe
properties; every URL is decided here, never passed through.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

import css_inline
import nh3

from crmail.mail.parse import decode_words

MAX_HTML = 1_000_000  # characters of mail HTML worth cleaning (parse.MAX_TEXT keeps as much)
LINK_REL = "noopener noreferrer nofollow"

# Formatting elements only: no forms, no embedded content (iframe, object, embed, video,
# audio, svg, math), no document-level elements (base, meta, link, title).
TAGS = frozenset(
    {
        "a", "abbr", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote",
        "br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "details",
        "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2",
        "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main",
        "mark", "ol", "p", "pre", "q", "s", "samp", "section", "small", "span", "strike",
        "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
        "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
# Elements removed together with everything inside them.
DROP_WITH_CONTENT = frozenset(
    {
        "script", "style", "head", "title", "template", "noscript", "noembed", "noframes",
        "svg", "math", "iframe", "frame", "frameset", "object", "embed", "applet", "canvas",
        "audio", "video", "select", "textarea", "button", "xmp", "plaintext",
    }
)  # fmt: skip
_LAYOUT = {"align", "valign", "width", "height", "bgcolor"}
ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "title", "dir", "lang"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height", "border", "align", "hspace", "vspace"},
    "table": _LAYOUT | {"border", "cellpadding", "cellspacing", "frame", "rules", "summary"},
    "tr": set(_LAYOUT),
    "td": _LAYOUT | {"colspan", "rowspan", "nowrap"},
    "th": _LAYOUT | {"colspan", "rowspan", "nowrap", "scope"},
    "col": _LAYOUT | {"span"},
    "colgroup": _LAYOUT | {"span"},
    "thead": {"align", "valign"},
    "tbody": {"align", "valign"},
    "tfoot": {"align", "valign"},
    "div": {"align"},
    "p": {"align"},
    "h1": {"align"},
    "h2": {"align"},
    "h3": {"align"},
    "h4": {"align"},
    "h5": {"align"},
    "h6": {"align"},
    "center": set(),
    "hr": {"align", "width", "size", "noshade", "color"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "details": {"open"},
}
# Schemes the cleaner lets reach ``_attribute``; which ones survive is decided there.
_SCHEMES = {"http", "https", "mailto", "cid"}

# CSS properties a message may set in a style attribute. Not: position, z-index, top,
# content, cursor, behavior, -moz-binding, filter, transform, animation, mask,
# border-image, list-style-image; nothing that loads anything but a background image.
STYLE_PROPERTIES = frozenset(
    {
        "color", "background", "background-color", "background-image", "background-repeat",
        "background-position", "background-size", "border", "border-top", "border-right",
        "border-bottom", "border-left", "border-color", "border-style", "border-width",
        "border-top-color", "border-right-color", "border-bottom-color", "border-left-color",
        "border-top-style", "border-right-style", "border-bottom-style", "border-left-style",
        "border-top-width", "border-right-width", "border-bottom-width", "border-left-width",
        "border-radius", "border-top-left-radius", "border-top-right-radius",
        "border-bottom-left-radius", "border-bottom-right-radius", "border-collapse",
        "border-spacing", "margin", "margin-top", "margin-right", "margin-bottom",
        "margin-left", "padding", "padding-top", "padding-right", "padding-bottom",
        "padding-left", "font", "font-family", "font-size", "font-style", "font-weight",
        "font-variant", "line-height", "letter-spacing", "word-spacing", "text-align",
        "text-decoration", "text-indent", "text-transform", "vertical-align", "white-space",
        "word-break", "word-wrap", "overflow-wrap", "direction", "width", "height",
        "max-width", "min-width", "max-height", "min-height", "display", "float", "clear",
        "list-style", "list-style-type", "list-style-position", "table-layout",
        "caption-side", "empty-cells", "overflow", "overflow-x", "overflow-y",
        "text-overflow", "box-sizing", "mso-line-height-rule", "mso-table-lspace",
        "mso-table-rspace", "visibility",
    }
)  # fmt: skip
# CSS functions allowed in values (url() is handled on its own).
_CSS_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla", "calc", "url"})
_CSS_URL = re.compile(r"url\(\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s'\"()]*))\s*\)", re.IGNORECASE)
_CSS_FUNCTION = re.compile(r"([a-z_-][a-z0-9_-]*)\s*\(", re.IGNORECASE)
# What a declaration's value may contain once its url() tokens are taken out: no
# backslash (escapes), no colon or semicolon, no comment, no angle brackets, no @.
_CSS_VALUE = re.compile(r"[a-zA-Z0-9\s#%.,+!'\"()/_-]*")
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_BODY_OPEN = re.compile(r"<body\b([^>]*)>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)

_inliner = css_inline.CSSInliner(
    inline_style_tags=True,
    keep_style_tags=False,
    keep_link_tags=False,
    keep_at_rules=False,
    load_remote_stylesheets=False,
)


@dataclass
class SafeHtml:
    """Cleaned HTML and what was held back from it."""

    html: str
    blocked_images: int = 0  # remote images (img and CSS backgrounds) not loaded
    remote_images: int = 0  # remote images rewritten to crmail's proxy
    missing_parts: list[str] = field(default_factory=list)  # cid: references not found


def scheme_of(url: str) -> str:
    """A URL's scheme as a browser reads it: ASCII whitespace and controls anywhere in
    it are ignored (``jav&#9;ascript:`` is ``javascript:``); ``""`` for a relative URL."""
    found = _SCHEME.match(_CONTROL.sub("", url))
    return found.group(1).lower() if found else ""


def inline_styles(markup: str) -> str:
    """The mail's ``<style>`` rules moved into ``style`` attributes; no stylesheet is
    fetched (``<link>`` and ``@import`` are dropped). Unreadable CSS leaves the HTML as
    it was: the cleaner drops the ``<style>`` elements either way."""
    try:
        return _inliner.inline(markup)
    except Exception:  # css-inline raises on CSS it cannot parse; show the mail unstyled
        return markup


def clean_html(
    markup: str,
    *,
    inline_url: Callable[[str], str | None],
    remote_url: Callable[[str], str] | None = None,
) -> SafeHtml:
    """Mail HTML made safe to show inside crmail's sandboxed message frame.

    ``inline_url(content_id)`` gives the address of a ``cid:`` part of the same message
    (``None`` when there is no such part); ``remote_url(url)`` gives the proxy address of
    a remote image, and when it is ``None`` remote images are blocked and counted.
    """
    result = SafeHtml(html="")
    inlined = inline_styles(markup[:MAX_HTML])
    # The body element would be dropped with its attributes; keep them on a div (a body
    # without any needs none: cleaning twice adds no wrapper).
    body = _BODY_OPEN.search(inlined)
    if body is not None and body.group(1).strip():
        inlined = _BODY_CLOSE.sub("</div>", _BODY_OPEN.sub(r"<div\1>", inlined, count=1), count=1)

    def image(url: str) -> str | None:
        scheme = scheme_of(url)
        if scheme == "cid":
            content_id = _CONTROL.sub("", url)[4:].strip("<>")
            found = inline_url(content_id)
            if found is None:
                result.missing_parts.append(content_id)
            return found
        if scheme in ("http", "https"):
            if remote_url is None:
                result.blocked_images += 1
                return None
            result.remote_images += 1
            return remote_url(url.strip())
        return None  # data:, javascript:, relative and scheme-relative addresses

    def attribute(tag: str, name: str, value: str) -> str | None:
        if name == "style":
            return clean_style(value, image) or None
        if tag == "a" and name == "href":
            return value.strip() if scheme_of(value) in ("http", "https", "mailto") else None
        if tag == "img" and name == "src":
            return image(value)
        return value

    result.html = nh3.clean(
        inlined,
        tags=set(TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        attribute_filter=attribute,
        strip_comments=True,
        link_rel=LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(_SCHEMES),
        url_relative="pass_through",  # every URL attribute is decided by ``attribute``
    )
    return result


def clean_style(style: str, image: Callable[[str], str | None]) -> str:
    """A ``style`` attribute rebuilt from its safe declarations.

    A declaration survives when its property is in ``STYLE_PROPERTIES`` and its value
    has no escapes, comments, colons, at-rules or functions but colours, ``calc()`` and
    ``url()``; a ``url()`` survives only as an image ``image(url)`` answers for (a
    message part, or a remote image through the proxy), else the declaration goes.
    """
    kept: list[str] = []
    for declaration in style.split(";"):
        name, colon, value = declaration.partition(":")
        name = name.strip().lower()
        if not colon or name not in STYLE_PROPERTIES:
            continue
        cleaned = _style_value(value, image)
        if cleaned:
            kept.append(f"{name}: {cleaned}")
    return "; ".join(kept)


def _style_value(value: str, image: Callable[[str], str | None]) -> str | None:
    value = value.strip()
    if not value or "\\" in value or "/*" in value:
        return None
    urls: list[str] = []

    def take(found: re.Match[str]) -> str:
        url = next((g for g in found.groups() if g is not None), "")
        urls.append(url)
        return f"url(__{len(urls) - 1}__)"

    rest = _CSS_URL.sub(take, value)
    if not _CSS_VALUE.fullmatch(rest):
        return None
    if any(f.lower() not in _CSS_FUNCTIONS for f in _CSS_FUNCTION.findall(rest)):
        return None  # expression(), image-set(), var(), attr(), element() …
    if rest.lower().count("url(") != len(urls):
        return None  # a url( the pattern did not read as one URL
    for n, url in enumerate(urls):
        target = image(url)
        if target is None or '"' in target or "\\" in target:
            return None
        rest = rest.replace(f"url(__{n}__)", f'url("{target}")')
    return rest


# -- HTML as text -------------------------------------------------------------------------

# What shapes the text: kept through the first pass, read by ``_TextReader``.
_TEXT_TAGS = frozenset(
    {
        "a", "address", "article", "aside", "blockquote", "br", "center", "dd", "details",
        "div", "dl", "dt", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "ol", "p", "pre", "section", "summary", "table", "td", "th",
        "tr", "ul",
    }
)  # fmt: skip
_BLANK_AROUND = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "hr", "dl"})
_SPACE = re.compile(r"\s+")
SIGNATURE_LINE = "-- "  # the signature separator keeps its space (RFC 3676 4.3)


class _TextReader(HTMLParser):
    """Lines of text with their quote depth, from HTML the first pass made regular."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self.line = ""
        self.depth = 0  # blockquotes open
        self.lists: list[list[int]] = []  # per open list: [numbered, items so far]
        self.pre = 0
        self.links: list[tuple[str, list[str]]] = []  # open links: href, their text

    def end_line(self) -> None:
        line = self.line if self.line == SIGNATURE_LINE else self.line.rstrip()
        self.lines.append((self.depth, line))
        self.line = ""

    def block(self, blank: bool = False) -> None:
        if self.line.strip():
            self.end_line()
        self.line = ""
        if blank and self.lines and self.lines[-1][1]:
            self.lines.append((self.depth, ""))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.end_line()
        elif tag == "blockquote":
            self.block()
            self.depth += 1
        elif tag in ("ul", "ol"):
            self.block(blank=not self.lists)
            self.lists.append([tag == "ol", 0])
        elif tag == "li":
            self.block()
            if self.lists:
                self.lists[-1][1] += 1
                numbered, count = self.lists[-1]
                indent = "   " * (len(self.lists) - 1)
                self.line = f"{indent}{count}. " if numbered else f"{indent}- "
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href, []))
        elif tag in ("td", "th"):
            self.add(" ")
        elif tag in _TEXT_TAGS:
            self.block(blank=tag in _BLANK_AROUND)
            self.pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote":
            self.block()
            self.depth = max(0, self.depth - 1)
            if self.lines and not self.lines[-1][1]:  # a quote's end: a blank line outside it
                self.lines[-1] = (self.depth, "")
            self.block(blank=True)
        elif tag in ("ul", "ol"):
            self.block(blank=len(self.lists) == 1)
            if self.lists:
                self.lists.pop()
        elif tag == "a" and self.links:
            href, words = self.links.pop()
            shown = " ".join("".join(words).split())
            if scheme_of(href) in ("http", "https", "mailto") and href.strip() not in (
                shown,
                f"mailto:{shown}",
            ):
                self.add(f" <{href.strip()}>" if shown else href.strip())
        elif tag in _TEXT_TAGS and tag not in ("br", "td", "th", "li"):
            self.pre -= tag == "pre" and self.pre > 0
            self.block(blank=tag in _BLANK_AROUND)

    def handle_data(self, data: str) -> None:
        data = data.replace("\xa0", " ")
        if self.pre:
            first, *rest = data.replace("\r\n", "\n").split("\n")
            self.add(first)
            for part in rest:
                self.end_line()
                self.add(part)
            return
        data = _SPACE.sub(" ", data)
        if not self.line.strip():
            data = self.line + data.lstrip()
            self.line = ""
        self.add(data)

    def add(self, text: str) -> None:
        self.line += text
        for _, words in self.links:
            words.append(text)

    def text(self) -> str:
        self.block()
        out: list[str] = []
        for depth, line in self.lines:
            if not line and out and not out[-1] and depth == 0:
                continue  # one blank line at most
            out.append(("> " * depth + line).rstrip() if line != SIGNATURE_LINE else line)
        return "\n".join(out).strip("\n")


def html_to_text(markup: str) -> str:
    """HTML as readable plain text: paragraphs and line breaks kept, list items as
    ``- `` or ``1. ``, blockquotes under ``> ``, a link's address after its words
    (only http, https and mailto), entities decoded; scripts, styles and other
    non-text elements go with their contents. For quoting a message and for the text
    part of a message written in HTML."""
    regular = nh3.clean(
        markup[:MAX_HTML],
        tags=set(_TEXT_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={"a": {"href"}},
        link_rel=None,
        strip_comments=True,
        url_relative="pass_through",
    )
    reader = _TextReader()
    reader.feed(regular)
    reader.close()
    return reader.text()


# -- text mail --------------------------------------------------------------------------

# http(s) and mailto links, and bare addresses; the end of a match is trimmed of trailing
# punctuation (and of a closing parenthesis that has no opening one in the link).
_LINK = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"'`]+)"
    r"|(?P<mailto>\bmailto:[^\s<>\"'`]+)"
    r"|(?P<email>\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?'\"*_"


def _trim(link: str) -> str:
    while link and (
        link[-1] in _TRAILING or (link[-1] == ")" and link.count(")") > link.count("("))
    ):
        link = link[:-1]
    return link


def text_to_html(text: str) -> str:
    """Plain-text mail as HTML: everything escaped, http, https and mailto links (and
    bare addresses) made clickable, opening in a new window without a referrer. Line
    breaks are kept by the frame's ``white-space: pre-wrap``."""
    out: list[str] = []
    pos = 0
    for found in _LINK.finditer(text):
        link = _trim(found.group(0))
        if not link or found.start() < pos:
            continue
        href = f"mailto:{link}" if found.group("email") else link
        out.append(html.escape(text[pos : found.start()]))
        out.append(
            f'<a href="{html.escape(href)}" target="_blank" rel="{LINK_REL}">'
            f"{html.escape(link)}</a>"
        )
        pos = found.start() + len(link)
    out.append(html.escape(text[pos:]))
    return '<pre class="plain">' + "".join(out) + "</pre>"


def header_block(raw: bytes, limit: int = 65_536) -> str:
    """The raw header lines of a message as text (to show, escaped, when parsing failed)."""
    head = raw[:limit]
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = head.find(separator)
        if end >= 0:
            head = head[:end]
            break
    text = head.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")


_SUBJECT = re.compile(r"^subject:[ \t]*(.*(?:\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def subject_from_headers(headers: str) -> str:
    """The Subject of raw header lines (``header_block``), decoded; ``""`` when none."""
    found = _SUBJECT.search(headers)
    if found is None:
        return ""
    unfolded = found.group(1).replace("\n", "")  # RFC 5322 2.2.3: the line break goes
    return " ".join(decode_words(unfolded).split())
