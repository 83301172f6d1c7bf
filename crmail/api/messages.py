"""``/messages``: sending mail from crmail (SPEC F3).

``POST /messages/send`` sends through the caller's active mailbox's SMTP server, stores
the message like synced mail, and files a copy in the server's Sent folder where the
mailbox asks for it. Sent from a record, the mail is recorded against it (the record must
be one the caller may see: 404 otherwise). Headers are checked in ``crmail.mail.compose``:
a line break in a header answers 422 naming the field, and nothing is sent.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from ninja import Router
from ninja.errors import HttpError

from crmail.api.auth import current_user
from crmail.api.errors import Invalid
from crmail.api.schemas import SendIn, SentOut, errors_doc
from crmail.crm.models import RECORD_MODELS
from crmail.mail.compose import ComposeError, Draft
from crmail.mail.models import Message
from crmail.mailboxes.drivers.base import DriverError
from crmail.mailboxes.sending import SendingNotPossible, send_message, sent_copy_outcome
from crmail.people import access

router = Router(tags=["Messages"])

# What compose.py calls a field, as the request names it.
FIELDS = {"references": "in_reply_to"}
SEND_ERRORS = errors_doc(400, 401, 404, 409, 422, 502)


@router.post("/send", response={201: SentOut}, openapi_extra=SEND_ERRORS, summary="Send a message")
def send(request: HttpRequest, payload: SendIn) -> dict[str, Any]:
    """Send as ``from`` (your mailbox's address or one of its extra addresses) to ``to``,
    ``cc`` and ``bcc``. Answers 409 when you have no active mailbox or it has no outgoing
    server, 502 when that server refuses (both say why), and otherwise the stored message
    and whether a copy went to the server's Sent folder (and if not, why)."""
    user = current_user(request)
    module, record_id = "", None
    if payload.record is not None:
        module, record_id = payload.record.module, payload.record.id
        model = RECORD_MODELS[module]
        if not access.visible(user, model).filter(pk=record_id).exists():
            raise Http404
    draft = Draft(
        sender=payload.sender,
        sender_name=user.name,
        to=payload.to,
        cc=payload.cc,
        bcc=payload.bcc,
        subject=payload.subject,
        text=payload.text,
        html=payload.html,
        in_reply_to=payload.in_reply_to,
        references=[payload.in_reply_to] if payload.in_reply_to else [],
    )
    try:
        sent = send_message(user, draft, record_module=module, record_id=record_id)
    except ComposeError as exc:
        raise Invalid.one(FIELDS.get(exc.field, exc.field), str(exc)) from None
    except SendingNotPossible as exc:
        raise HttpError(409, str(exc)) from None
    except DriverError as exc:
        raise HttpError(502, f"The outgoing server did not take the message: {exc}") from None
    stored, note = sent_copy_outcome(sent)
    return {
        "message_id": sent.message_id,
        "message_id_header": Message.objects.values_list("message_id", flat=True).get(
            pk=sent.message_id
        ),
        "sent_id": sent.pk,
        "from_address": sent.from_address,
        "recipients": sent.recipients,
        "sent_copy_stored": stored,
        "sent_copy_note": note,
    }
