"""Bytes of mail handed to a browser: attachments, inline images, raw messages, mbox files.

The message page, the API and the departed-users page all answer through here, so a
download looks the same wherever it is taken: ``Content-Disposition: attachment`` with
both forms of the name (RFC 6266), a type a browser could run sent as
``application/octet-stream``, ``nosniff``, no caching, and a Content-Security-Policy
under which a browser that renders the bytes anyway runs nothing.

Who may download what is decided before these are called (``sharing.visibility``).
"""

from __future__ import annotations

import mimetypes
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from django.core import signing
from django.http import Http404, HttpResponse, StreamingHttpResponse

from crmail.mail import mbox
from crmail.mail.parse import AttachmentInfo, ParsedMessage, part_bytes
from crmail.people.models import User

# Bytes from a message (attachments, inline images, proxied images, the raw message): a
# browser that renders one anyway runs nothing in it.
DOWNLOAD_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"

# Types an attachment keeps when downloaded; everything else is application/octet-stream.
SAFE_DOWNLOAD_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}
)
# Types a message part may have to be shown inside the body frame as a cid: image.
INLINE_IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/gif", "image/webp", "image/bmp"}
)

INLINE_SALT = "crmail.web.message-inline"
INLINE_MAX_AGE = 7 * 24 * 3600


def inline_token(message_pk: int, part: int, viewer_pk: int) -> str:
    """The signed name of one image part of one message, for its ``cid:`` reference: given
    out only when the body is rendered for ``viewer_pk``, who may open the message. The
    image is served only while that viewer still may (the frame's requests carry no
    session, so the token says whose it is)."""
    return signing.dumps([message_pk, part, viewer_pk], salt=INLINE_SALT)


LIVE_INLINE_SALT = "crmail.web.live-inline"


def live_inline_token(mailbox_id: int, remote_id: str, part: int, viewer_pk: int, on: str) -> str:
    """``inline_token`` for a message asked live: its mailbox and Mail ID, the part, the
    viewer and the record it was opened from (``on``, "contacts/12" or empty). The image
    is served only while the viewer may still open the message from there."""
    return signing.dumps([mailbox_id, remote_id, part, viewer_pk, on], salt=LIVE_INLINE_SALT)


def live_inline_part(token: str) -> tuple[int, str, int, int, str] | None:
    """What a token from ``live_inline_token`` names; None when forged, altered or old."""
    signed = _signed(token, LIVE_INLINE_SALT, (int, str, int, int, str))
    if signed is None:
        return None
    mailbox_id, remote_id, part, viewer_pk, on = signed
    return mailbox_id, remote_id, part, viewer_pk, on


def inline_part(token: str) -> tuple[int, int, int] | None:
    """The (message, part, viewer) a token from ``inline_token`` names; None when it is
    forged, altered or older than ``INLINE_MAX_AGE``."""
    signed = _signed(token, INLINE_SALT, (int, int, int))
    if signed is None:
        return None
    return signed[0], signed[1], signed[2]


def _signed(token: str, salt: str, shape: tuple[type, ...]) -> list[Any] | None:
    """The values a token signed with ``salt`` holds, one of each type of ``shape``;
    None when it is forged, altered, older than ``INLINE_MAX_AGE`` or of another shape."""
    try:
        signed = signing.loads(token, salt=salt, max_age=INLINE_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(signed, list) or len(signed) != len(shape):
        return None
    if not all(isinstance(value, kind) for value, kind in zip(signed, shape, strict=True)):
        return None
    return signed


def attachment_disposition(filename: str) -> str:
    """``Content-Disposition: attachment`` with the name in both forms of RFC 6266:
    an ASCII ``filename`` for old clients and the exact UTF-8 ``filename*`` (RFC 8187)."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    ascii_name = (
        "".join(
            "_" if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F else c for c in ascii_name
        ).strip()
        or "download"
    )
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def _download_headers(response: HttpResponse | StreamingHttpResponse, filename: str) -> None:
    response["Content-Disposition"] = attachment_disposition(filename)
    response["Content-Security-Policy"] = DOWNLOAD_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"


def download(data: bytes, content_type: str, filename: str) -> HttpResponse:
    """``data`` as a file to save, never to show."""
    response = HttpResponse(data, content_type=content_type)
    _download_headers(response, filename)
    return response


def raw_download(raw: bytes, message_pk: int) -> HttpResponse:
    """A message exactly as the server gave it, as an .eml file."""
    return download(raw, "message/rfc822", f"message-{message_pk}.eml")


def inline_image(raw: bytes, parsed: ParsedMessage | None, part: int, max_age: int) -> HttpResponse:
    """The image part ``part`` of a message, to be shown in its body frame (a ``cid:``
    reference); 404 for a part that is no image of the ``INLINE_IMAGE_TYPES``."""
    info = find_attachment(parsed, part)
    if info.content_type not in INLINE_IMAGE_TYPES:
        raise Http404("No such image.")
    try:
        data, _, _ = part_bytes(raw, part)
    except Exception as exc:
        raise Http404("No such image.") from exc
    response = HttpResponse(data, content_type=info.content_type)
    response["Content-Security-Policy"] = DOWNLOAD_POLICY
    response["Cache-Control"] = f"private, max-age={max_age}"
    return response


def find_attachment(parsed: ParsedMessage | None, part: int) -> AttachmentInfo:
    """The attachment numbered ``part``; 404 when the message has none such (or could not
    be parsed)."""
    if parsed is not None:
        for info in parsed.attachments:
            if info.part == part:
                return info
    raise Http404("No such attachment.")


def attachment_response(raw: bytes, parsed: ParsedMessage | None, part: int) -> HttpResponse:
    """Part ``part`` of a message as a download (the page's link and the API's alike): a
    type a browser could run goes as application/octet-stream. 404 for no such part."""
    info = find_attachment(parsed, part)
    try:
        data, ctype, filename = part_bytes(raw, part)
    except Exception as exc:  # LookupError, or a part the parser cannot decode
        raise Http404("No such attachment.") from exc
    ctype = ctype.lower()
    safe_type = ctype if ctype in SAFE_DOWNLOAD_TYPES else "application/octet-stream"
    name = filename or info.filename
    if not name:
        name = f"attachment-{part}{mimetypes.guess_extension(ctype) or '.bin'}"
    return download(data, safe_type, name)


def mbox_download(chunks: Iterable[bytes], user: User) -> StreamingHttpResponse:
    """``user``'s mail as an mbox file, streamed as ``chunks`` come (``mail.mbox``)."""
    response = StreamingHttpResponse(chunks, content_type=mbox.CONTENT_TYPE)
    _download_headers(response, mbox.backup_filename(user))
    return response
