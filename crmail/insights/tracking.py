"""The copy of a message its recipients get, when it is tracked (SPEC F9, decision 057).

``mailboxes.sending.send_message`` builds a message once; crmail stores that message (what
colleagues read in crmail: no pixel, the links as written) and hands the recipients a copy
made here, DKIM-signed on its own: its HTML part gets the open pixel at the end and each
http(s) link pointed at crmail's click address, each a signed token (``tokens``). A message
written as plain text gets an HTML part made from its text to carry them; its text part is
left as written. The ``MessageInsight`` row is written in the transaction that stores the
sent message.
"""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Callable
from email.message import EmailMessage, MIMEPart

from django.conf import settings

from crmail.insights import tokens
from crmail.insights.models import MessageInsight
from crmail.mail.display import text_to_html
from crmail.mailboxes.models import SentMessage

OPEN_PATH = "/t/o/"
CLICK_PATH = "/t/c/"
MAX_LINKS = 200  # links past these go out as written
_HREF = re.compile(r"(<a\b[^>]*?\shref=\")([^\"]*)(\")", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_PRE = re.compile(r"^<pre class=\"plain\">(.*)</pre>$", re.DOTALL)


def is_tracking_url(url: str) -> bool:
    """True for an address of crmail's own pixel or tracked links (never fetched for a
    viewer: the image proxy refuses it)."""
    public = settings.CRMAIL_PUBLIC_URL
    if not public:
        return False
    lowered = url.strip().lower()
    return lowered.startswith((public + OPEN_PATH, public + CLICK_PATH))


class Tracker:
    """Email insights' part in sending one message (``mailboxes.sending.Tracking``).

    ``track``: give recipients the tracked copy (the caller has checked the switch and the
    public address: ``switch.state().tracking``); ``template_id``: the template the message
    was written from; ``after(sent)``: more to do in the storing transaction (a scheduled
    send marks itself sent).
    """

    def __init__(
        self,
        *,
        track: bool,
        template_id: int | None = None,
        public_url: str = "",
        after: Callable[[SentMessage], None] | None = None,
    ) -> None:
        self.public_url = public_url or settings.CRMAIL_PUBLIC_URL
        self.key: str | None = tokens.new_key() if track and self.public_url else None
        self.template_id = template_id
        self.links: list[str] = []
        self.after = after

    def recipients_copy(self, msg: EmailMessage) -> EmailMessage | None:
        """The tracked copy of ``msg`` for its recipients; None: they get ``msg`` itself."""
        if self.key is None:
            return None
        tracked = copy.deepcopy(msg)
        body = tracked.get_body(("html", "plain"))
        if body is None:  # nothing but attachments: nothing to put a pixel in
            self.key = None
            return None
        if body.get_content_type() == "text/html":
            body.set_content(self.tracked_html(body.get_content()), subtype="html")
        else:
            self._add_html(body, self.tracked_html(html_of_text(body.get_content())))
        return tracked

    @staticmethod
    def _add_html(part: MIMEPart, markup: str) -> None:
        part.make_alternative()
        part.add_alternative(markup, subtype="html")

    def tracked_html(self, markup: str) -> str:
        """``markup`` with its http(s) links through crmail and the pixel at the end."""
        assert self.key is not None
        key = self.key

        def link(found: re.Match[str]) -> str:
            url = html.unescape(found.group(2)).strip()
            if len(self.links) >= MAX_LINKS or not tokens.safe_destination(url):
                return found.group(0)
            token = tokens.make("c", key, link=len(self.links), url=url)
            self.links.append(url)
            address = f"{self.public_url}{CLICK_PATH}{token}"
            return f"{found.group(1)}{html.escape(address)}{found.group(3)}"

        rewritten = _HREF.sub(link, markup)
        pixel = (
            f'<img src="{html.escape(self.public_url + OPEN_PATH + tokens.make("o", key))}" '
            'width="1" height="1" alt="" style="border:0;width:1px;height:1px">'
        )
        ends = list(_BODY_END.finditer(rewritten))
        if ends:
            at = ends[-1].start()
            return rewritten[:at] + pixel + rewritten[at:]
        return rewritten + pixel

    def record(self, sent: SentMessage) -> None:
        """The message's ``MessageInsight``, in the transaction that stores it."""
        if self.key is not None or self.template_id is not None:
            MessageInsight.objects.create(
                sent=sent,
                tracked=self.key is not None,
                key=self.key,
                links=self.links,
                template_id=self.template_id,
            )
        if self.after is not None:
            self.after(sent)


def html_of_text(text: str) -> str:
    """A plain-text message as HTML for its tracked copy: escaped, its line breaks kept,
    its links clickable (as crmail shows text mail)."""
    shown = text_to_html(text)
    found = _PRE.match(shown)
    inner = found.group(1) if found else html.escape(text)
    return f'<div style="white-space:pre-wrap">{inner}</div>'
