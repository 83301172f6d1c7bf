"""Building outgoing messages safely (SPEC F3).

Every header value crmail writes is checked: a CR or LF in a subject, a name or an address
is refused (header injection), addresses must be valid, and the message gets its own
Message-ID and Date. The result is bytes ready for SMTP and for storing like synced mail.

A message written in HTML is cleaned by the allowlist that shows mail
(``display.clean_html``: no scripts, event handlers, forms, ``javascript:`` links or
remote images) and sent as multipart/alternative, its text part first: the writer's
text, else the text of the cleaned HTML (``display.html_to_text``). Attachments make
a multipart/mixed around it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.core.exceptions import ValidationError
from django.utils import timezone

from crmail.crm.addresses import normalize_address
from crmail.mail.display import clean_html, html_to_text


class ComposeError(ValueError):
    """The message cannot be built; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Draft:
    sender: str  # the From address
    to: Sequence[str]
    subject: str
    text: str
    sender_name: str = ""
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    reply_to: str = ""
    html: str = ""  # written in HTML: cleaned when the message is built
    in_reply_to: str = ""
    references: Sequence[str] = ()
    attachments: Sequence[tuple[str, str, bytes]] = field(default_factory=list)  # name, type, data


def safe_html(markup: str) -> str:
    """HTML from a writer, cleaned as crmail cleans mail it shows (decision 014): the
    same elements, attributes, styles and link schemes. Images keep no address: a
    remote one is held back as display holds it back (a tracking pixel), and a ``cid:``
    one names no part of an outgoing message."""
    return clean_html(markup, inline_url=lambda _content_id: None).html if markup else ""


def text_alternative(markup: str) -> str:
    """The text part of a message written as ``markup``: the text of its cleaned HTML."""
    return html_to_text(safe_html(markup))


def text_html(text: str) -> str:
    """Plain text (a signature, a quoted message, a template) as HTML: escaped, every
    line break kept as ``<br>``."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(html.escape(line, quote=False) for line in lines)


def no_newlines(field_name: str, value: str) -> str:
    """``value`` unchanged, or ComposeError when it holds CR, LF or NUL."""
    if any(c in value for c in "\r\n\x00"):
        raise ComposeError(field_name, f"The {field_name} may not contain line breaks.")
    return value


def _address(field_name: str, raw: str, name: str = "") -> Address:
    no_newlines(field_name, raw)
    no_newlines(field_name, name)
    try:
        address = normalize_address(raw)
    except ValidationError as exc:
        raise ComposeError(field_name, exc.messages[0]) from None
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def build_message(draft: Draft) -> tuple[EmailMessage, list[str]]:
    """The message and its envelope recipients (To, Cc and Bcc; Bcc is not in the headers)."""
    if not (draft.to or draft.cc or draft.bcc):
        raise ComposeError("to", "Add at least one recipient.")
    sender = _address("from", draft.sender, draft.sender_name)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    recipients: list[str] = []
    for header, values in (("To", draft.to), ("Cc", draft.cc)):
        addresses = [_address(header.lower(), v) for v in values]
        if addresses:
            msg[header] = addresses
        recipients += [a.addr_spec for a in addresses]
    recipients += [_address("bcc", v).addr_spec for v in draft.bcc]
    if draft.reply_to:
        msg["Reply-To"] = _address("reply_to", draft.reply_to)
    msg["Subject"] = no_newlines("subject", draft.subject)
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = make_msgid(domain=sender.domain)
    if draft.in_reply_to:
        msg["In-Reply-To"] = f"<{no_newlines('in_reply_to', draft.in_reply_to).strip('<>')}>"
    if draft.references:
        msg["References"] = " ".join(
            f"<{no_newlines('references', r).strip('<>')}>" for r in draft.references
        )
    markup = safe_html(draft.html) if draft.html.strip() else ""
    text = draft.text if draft.text.strip() or not markup else html_to_text(markup)
    msg.set_content(text or "")
    if markup:
        msg.add_alternative(markup, subtype="html")
    for name, content_type, data in draft.attachments:
        maintype, _, subtype = (content_type or "application/octet-stream").partition("/")
        msg.add_attachment(
            data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=no_newlines("attachment name", name),
        )
    return msg, list(dict.fromkeys(recipients))
