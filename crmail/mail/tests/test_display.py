"""Safe display: mail HTML inlined and cleaned, remote images held back, text linkified.

The corpus of XSS vectors below is checked structurally: the cleaned HTML is parsed again
and every element, attribute, URL and style declaration must be one the allowlist lets
through, whatever the vector tried.
"""

from __future__ import annotations

import http.server
import re
from html.parser import HTMLParser

import pytest

from crmail.mail import display
from crmail.mail.compose import text_html
from crmail.mail.display import (
    clean_html,
    clean_style,
    header_block,
    html_to_text,
    scheme_of,
    subject_from_headers,
    text_to_html,
)
from tests.harness.serving import serve_in_thread

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

INLINE = "/inline/"
PROXY = "/proxy/?u="


def inline_url(content_id: str) -> str | None:
    return f"{INLINE}{content_id}" if content_id in ("logo@x", "pic") else None


def proxy_url(url: str) -> str:
    return PROXY + url.replace('"', "").replace(":", "%3A")


class Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))


def elements(markup: str) -> list[tuple[str, dict[str, str]]]:
    parser = Parsed()
    parser.feed(markup)
    parser.close()
    return parser.elements


_STYLE_OK = re.compile(r"[a-zA-Z0-9\s#%.,+!'\"()/_-]*")


def assert_inert(markup: str, *, as_text_ok: bool = False) -> None:
    """Nothing in ``markup`` can run, submit, navigate the frame, or load from elsewhere.

    ``as_text_ok``: the words of a vector may remain as escaped text (text mail)."""
    lowered = "" if as_text_ok else markup.lower()
    for needle in ("<script", "<style", "<iframe", "<object", "<embed", "<svg", "<math",
                   "<form", "<input", "<button", "<meta", "<base", "<link", "<textarea",
                   "javascript:", "vbscript:", "data:", "expression", "-moz-binding",
                   "behavior", "@import", "srcdoc", "srcset", "formaction"):  # fmt: skip
        assert needle not in lowered, (needle, markup)
    for tag, attrs in elements(markup):
        assert tag in display.TAGS, (tag, markup)
        allowed = display.ATTRIBUTES["*"] | display.ATTRIBUTES.get(tag, set())
        if tag == "a":
            allowed = allowed | {"target", "rel"}
            assert attrs.get("target") == "_blank"
            assert attrs.get("rel") == display.LINK_REL
        for name, value in attrs.items():
            assert name in allowed, (tag, name, markup)
            assert not name.startswith("on")
            if name == "href":
                assert scheme_of(value) in ("http", "https", "mailto"), value
            if name == "src":
                assert value.startswith((INLINE, PROXY)), value
            if name == "style":
                for declaration in value.split(";"):
                    prop, _, rest = declaration.partition(":")
                    assert prop.strip() in display.STYLE_PROPERTIES, value
                    urls = re.findall(r'url\("([^"]*)"\)', rest)
                    assert all(u.startswith((INLINE, PROXY)) for u in urls), value
                    assert _STYLE_OK.fullmatch(re.sub(r'url\("[^"]*"\)', "", rest)), value


# Each vector tries to run script, load something from elsewhere, submit a form or
# leave the frame. Names say what.
VECTORS = {
    "script tag": "<p>hi</p><script>window.top.__xss = 1</script>",
    "script split by nesting": "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "script in angle soup": "<<script>script>alert(1)<</script>/script>",
    "upper case script": "<SCRIPT SRC=http://evil.example/x.js></SCRIPT>",
    "img onerror": '<img src="x" onerror="alert(1)">',
    "img onerror unquoted": "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "body onload": '<body onload="alert(1)"><p>x</p></body>',
    "onclick on a link": '<a href="https://ok.example/" onclick="alert(1)">ok</a>',
    "onmouseover": "<p onmouseover=alert(1)>hover</p>",
    "details ontoggle": "<details open ontoggle=alert(1)><summary>s</summary></details>",
    "marquee onstart": "<marquee onstart=alert(1)>m</marquee>",
    "custom element": "<x-foo onclick=alert(1)>x</x-foo>",
    "javascript href": '<a href="javascript:alert(1)">x</a>',
    "javascript href mixed case": "<a href=\"JaVaScRiPt:alert('XSS')\">x</a>",
    "javascript href leading space": '<a href="  javascript:alert(1)">x</a>',
    "javascript href with tab": '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "javascript href with newline": '<a href="jav&#x0A;ascript:alert(1)">x</a>',
    "javascript href with NUL": '<a href="java\x00script:alert(1)">x</a>',
    "javascript href entity encoded": '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;'
    '&#105;&#112;&#116;&#58;alert(1)">x</a>',
    "javascript href padded entities": '<a href="&#0000106&#0000097&#0000118&#0000097'
    '&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)">x</a>',
    "javascript href named colon": '<a href="javascript&colon;alert(1)">x</a>',
    "javascript href control char": '<a href="\x01javascript:alert(1)">x</a>',
    "javascript img src": "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "vbscript href": '<a href="vbscript:msgbox(1)">x</a>',
    "data href": '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    "data href base64": '<a href="data:text/html;base64,'
    'PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "data img": '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "svg onload": "<svg onload=alert(1)><circle r=5 /></svg>",
    "svg script": "<svg><script>alert(1)</script></svg>",
    "svg image href": '<svg><image href="http://evil.example/x.png" /></svg>',
    "svg animate": "<svg><a><animate attributeName=href values=javascript:alert(1) />"
    "<text y=20>x</text></a></svg>",
    "math mxss": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "noscript mxss": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "template": "<template><script>alert(1)</script></template>",
    "css expression": '<div style="width: expression(alert(1))">x</div>',
    "css expression with comment": "<div style=\"xss:expr/*XSS*/ession(alert('XSS'))\">x</div>",
    "css escaped expression": '<div style="width: e\\xpression(alert(1))">x</div>',
    "css behavior": '<div style="behavior: url(xss.htc)">x</div>',
    "css moz binding": '<div style="-moz-binding: url(http://evil.example/xss.xml#xss)">x</div>',
    "css url javascript": '<div style="background:url(javascript:alert(1))">x</div>',
    "css escaped url": '<div style="background-image: u\\72l(javascript:alert(1))">x</div>',
    "css url data": '<div style="background-image:url(data:image/png;base64,AAAA)">x</div>',
    "css scheme relative url": '<div style="background: url(//evil.example/x.png)">x</div>',
    "css image-set": '<div style="background-image: '
    "image-set('//evil.example/x.png' 1x)\">x</div>",
    "css position overlay": '<a href="https://ok.example/" style="position:fixed;top:0;'
    'left:0;width:100%;height:100%">cover</a>',
    "style import": "<style>@import url(http://evil.example/x.css); p{color:red}</style><p>x</p>",
    "style list-style-image": "<style>li {list-style-image: url(\"javascript:alert('XSS')\");}"
    "</style><ul><li>XSS</li></ul>",
    "style behavior rule": "<style>p { behavior: url(#default#time2) }</style><p>x</p>",
    "link stylesheet": '<link rel="stylesheet" href="http://evil.example/x.css"><p>x</p>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><p>x</p>',
    "meta refresh to site": '<meta http-equiv="refresh" content="0;url=http://evil.example/">',
    "base href": '<base href="http://evil.example/"><a href="x">rel</a>',
    "form": '<form action="http://evil.example/"><input name="p" type="password">'
    "<button formaction=javascript:alert(1)>Go</button></form>",
    "input image": '<input type="image" src="http://evil.example/x.png">',
    "iframe": '<iframe src="http://evil.example/"></iframe>',
    "iframe srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "object": '<object data="http://evil.example/x.swf"></object>',
    "embed": '<embed src="http://evil.example/x.swf">',
    "video poster": '<video poster="http://evil.example/x.png"></video>',
    "audio": '<audio src="http://evil.example/x.mp3" autoplay></audio>',
    "table background": '<table background="http://evil.example/x.png"><tr><td>x</td></tr></table>',
    "img srcset": '<img srcset="http://evil.example/x.png 1x">',
    "relative img": '<img src="/messages/1/original/">',
    "relative link": '<a href="/settings/users/">x</a>',
    "target override": '<a href="https://ok.example/" target="_top">x</a>',
    "comment conditional": "<!--[if gte mso 9]><script>alert(1)</script><![endif]--><p>x</p>",
    "textarea breakout": "<textarea></textarea><script>alert(1)</script></textarea>",
    "title breakout": "<title></title><img src=x onerror=alert(1)></title>",
    "xmp": "<xmp><img src=x onerror=alert(1)></xmp>",
    "fullwidth brackets": "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_known_xss_vectors_come_out_inert(name):
    result = clean_html(VECTORS[name], inline_url=inline_url)
    assert_inert(result.html)
    # And again with remote images allowed through the proxy.
    assert_inert(clean_html(VECTORS[name], inline_url=inline_url, remote_url=proxy_url).html)


def test_plain_formatting_survives():
    html = (
        "<html><head><style>.big { font-size: 20px; color: #123456 }</style></head>"
        '<body><h1 class="big">Offer</h1><p>Dear <b>Ada</b>,<br>see <a href="https://'
        'shop.example/?a=1&b=2">the shop</a> or <a href="mailto:sales@shop.example">write'
        "</a>.</p><table border=0 cellpadding=4><tr><td bgcolor=#eeeeee>cell</td></tr>"
        "</table><blockquote>quoted</blockquote></body></html>"
    )
    out = clean_html(html, inline_url=inline_url).html
    assert '<h1 style="font-size: 20px; color: #123456">Offer</h1>' in out
    assert "<b>Ada</b>" in out and "<br>" in out and "<blockquote>quoted</blockquote>" in out
    assert 'href="https://shop.example/?a=1&amp;b=2"' in out
    assert 'href="mailto:sales@shop.example"' in out
    assert '<td bgcolor="#eeeeee">cell</td>' in out
    assert 'target="_blank" rel="noopener noreferrer nofollow"' in out
    assert "class=" not in out


def test_body_styles_are_kept_on_a_div():
    out = clean_html(
        '<body style="background-color:#f0f0f0"><p>x</p></body>', inline_url=inline_url
    ).html
    assert out.startswith('<div style="background-color: #f0f0f0">')


def test_remote_images_are_blocked_and_counted():
    html = (
        '<img src="http://tracker.example/open.gif" width="1" height="1">'
        '<img src="https://cdn.example/logo.png" alt="Logo">'
        '<div style="background-image: url(https://cdn.example/bg.png); color: red">x</div>'
    )
    result = clean_html(html, inline_url=inline_url)
    assert result.blocked_images == 3 and result.remote_images == 0
    assert "tracker.example" not in result.html and "cdn.example" not in result.html
    assert '<img alt="Logo">' in result.html
    assert '<div style="color: red">' in result.html


def test_remote_images_go_through_the_proxy_when_asked():
    html = (
        '<img src="https://cdn.example/logo.png">'
        "<div style=\"background: #fff url('https://cdn.example/bg.png') no-repeat\">x</div>"
    )
    result = clean_html(html, inline_url=inline_url, remote_url=proxy_url)
    assert result.blocked_images == 0 and result.remote_images == 2
    srcs = [a["src"] for t, a in elements(result.html) if t == "img"]
    assert srcs == [PROXY + "https%3A//cdn.example/logo.png"]
    assert 'url("/proxy/?u=https%3A//cdn.example/bg.png") no-repeat' in result.html.replace(
        "&quot;", '"'
    )
    assert_inert(result.html)


def test_cid_images_point_at_the_messages_own_parts():
    html = (
        '<img src="cid:logo@x"><img src="CID:pic"><img src="cid:missing@x">'
        "<div style=\"background-image: url('cid:logo@x')\">x</div>"
    )
    result = clean_html(html, inline_url=inline_url)
    srcs = [a.get("src") for t, a in elements(result.html) if t == "img"]
    assert srcs == ["/inline/logo@x", "/inline/pic", None]
    assert result.missing_parts == ["missing@x"]
    assert "/inline/logo@x" in result.html.split("<div")[1]


def test_style_attributes_keep_only_safe_declarations():
    def image(url: str) -> str | None:
        return "/inline/a" if url == "cid:a" else None

    assert clean_style("color: red; position: absolute; z-index: 9", image) == "color: red"
    assert clean_style("COLOR:Red;;font: 12px/1.4 'Segoe UI', Arial", image) == (
        "color: Red; font: 12px/1.4 'Segoe UI', Arial"
    )
    assert clean_style("background-color: rgb(1, 2, 3) !important", image) == (
        "background-color: rgb(1, 2, 3) !important"
    )
    assert clean_style("background: url(cid:a) no-repeat", image) == (
        'background: url("/inline/a") no-repeat'
    )
    for bad in (
        "width: expression(alert(1))",
        "width: calc(1px + var(--x))",
        "background: url(cid:unknown)",
        "background: url(https://x.example/a.png)",
        "color: red\\;",
        "color: /**/red",
        "font-family: x</style><script>",
        "content: 'x'",
        "width: 1px; behavior: url(a.htc)",
        "background: url(cid:a) url(",
    ):
        assert "expression" not in clean_style(bad, image)
        assert clean_style(bad, image) in ("", "width: 1px"), bad


def test_the_inliner_never_fetches_a_stylesheet():
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"p { color: red }")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_thread(server)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        html = (
            f'<html><head><link rel="stylesheet" href="{base}/link.css">'
            f'<style>@import url("{base}/import.css"); p {{ font-weight: bold }}</style>'
            "</head><body><p>x</p></body></html>"
        )
        out = clean_html(html, inline_url=inline_url).html
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
    assert '<p style="font-weight: bold">x</p>' in out


def test_css_the_inliner_cannot_read_leaves_the_html_unstyled():
    out = clean_html("<style>p { color: </style><p>still here</p>", inline_url=inline_url).html
    assert "still here" in out
    assert_inert(out)


def test_scheme_is_read_the_way_a_browser_reads_it():
    assert scheme_of("java\tscript:alert(1)") == "javascript"
    assert scheme_of(" \x01JavaScript:x") == "javascript"
    assert scheme_of("HTTPS://x") == "https"
    assert scheme_of("/relative") == "" and scheme_of("//host/x") == ""


def test_text_is_escaped_and_links_made_clickable():
    out = text_to_html(
        "Hi <b>Ada</b> & co,\nsee https://shop.example/a_(b)?q=1&r=2. Or (http://x.example/).\n"
        "Mail bob@example.com or mailto:sales@example.com, not javascript:alert(1) "
        'nor data:text/html,x nor "><script>alert(1)</script>'
    )
    assert out.startswith('<pre class="plain">Hi &lt;b&gt;Ada&lt;/b&gt; &amp; co,\nsee ')
    links = [(a["href"], a["target"], a["rel"]) for t, a in elements(out) if t == "a"]
    assert [h for h, _, _ in links] == [
        "https://shop.example/a_(b)?q=1&r=2",
        "http://x.example/",
        "mailto:bob@example.com",
        "mailto:sales@example.com",
    ]
    assert all(t == "_blank" and r == display.LINK_REL for _, t, r in links)
    assert ">https://shop.example/a_(b)?q=1&amp;r=2</a>." in out
    assert "(<a " in out and "</a>)." in out
    assert "&lt;script&gt;" in out and "<script" not in out
    assert_inert(out.replace('<pre class="plain">', "<pre>"), as_text_ok=True)


def test_text_links_cannot_break_out_of_the_attribute():
    out = text_to_html('http://x.example/"onmouseover="alert(1) and http://y.example/\'x')
    for tag, attrs in elements(out):
        if tag == "a":
            assert set(attrs) == {"href", "target", "rel"}
    assert "onmouseover=" not in out.replace("&quot;onmouseover", "")


def test_header_block_is_the_raw_header_lines():
    raw = b"From: a@b\r\nSubject: <script>\r\n\r\nbody\r\n"
    assert header_block(raw) == "From: a@b\nSubject: <script>"
    assert header_block(b"no blank line at all") == "no blank line at all"


def test_the_subject_is_read_from_raw_header_lines():
    headers = "From: a@b\nSUBJECT: =?utf-8?q?Caf=C3=A9?=\n  offer\nTo: c@d"
    assert subject_from_headers(headers) == "Café offer"
    assert subject_from_headers("From: a@b") == ""


# -- HTML as text ------------------------------------------------------------------------


def test_html_reads_as_text_with_lists_quotes_links_and_the_signature_line():
    markup = (
        "Hello <b>Grace</b>,<div>the&nbsp;terms:</div><ul><li>one</li><li>two<ol><li>a</li>"
        "<li>b</li></ol></li></ul><div>--&nbsp;</div><div>Rex<br>Acme</div>"
        "<p>On 3 Dec, Ada wrote:</p><blockquote>Thanks<br><br>Can you<blockquote>earlier"
        "</blockquote></blockquote><p>See <a href='https://x.example/a'>the page</a>, "
        "<a href='mailto:ada@x.example'>ada@x.example</a> and <a href='javascript:x()'>this"
        "</a>.</p><style>p { color: red }</style><script>x()</script>"
    )
    assert html_to_text(markup) == (
        "Hello Grace,\nthe terms:\n\n- one\n- two\n   1. a\n   2. b\n\n-- \nRex\nAcme\n\n"
        "On 3 Dec, Ada wrote:\n\n> Thanks\n>\n> Can you\n> > earlier\n\n"
        "See the page <https://x.example/a>, ada@x.example and this."
    )


def test_plain_text_as_html_is_escaped_with_its_line_breaks():
    assert text_html("Rex <Acme> & Sons\r\n-- \nbye") == "Rex &lt;Acme&gt; &amp; Sons<br>-- <br>bye"
    assert html_to_text(text_html("a\n\n-- \nb")) == "a\n\n-- \nb"
