"""Turning stored raw messages into parsed rows: fields, participants, attachments, threads."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from crmail.mail.models import Attachment, Message, ParseState, Participant, Thread
from crmail.mail.parse import ParsedMessage, Unparseable, parse_message
from crmail.mail.store import raw_bytes

SNIPPET = 200
BODY_TEXT_LIMIT = 200_000


def parse_stored(messages: Sequence[Message]) -> None:
    """Parse each message from its raw bytes and save what was found, in one transaction.

    A message whose structure cannot be read is marked ``failed`` with the reason; its
    bytes stay, and it is listed as a parse failure. Rerunning replaces earlier results.
    """
    results: list[tuple[Message, ParsedMessage | None]] = []
    for message in messages:
        try:
            results.append((message, parse_message(raw_bytes(message))))
        except Unparseable as exc:
            message.parse_state = ParseState.FAILED
            message.parse_problems = str(exc)[:2000]
            results.append((message, None))
    with transaction.atomic():
        ids = [m.pk for m, _ in results]
        Participant.objects.filter(message_id__in=ids).delete()
        Attachment.objects.filter(message_id__in=ids).delete()
        participants: list[Participant] = []
        attachments: list[Attachment] = []
        for message, parsed in results:
            if parsed is None:
                continue
            _fill(message, parsed)
            participants += [
                Participant(
                    message=message,
                    role=p.role,
                    address=p.address[:254],
                    name=p.name[:300],
                    valid=p.valid,
                    position=i,
                )
                for i, p in enumerate(parsed.participants)
            ]
            attachments += [
                Attachment(
                    message=message,
                    part=a.part,
                    filename=a.filename,
                    content_type=a.content_type[:200],
                    size=a.size,
                    content_id=a.content_id[:500],
                    inline=a.inline,
                )
                for a in parsed.attachments
            ]
        _assign_threads([m for m, p in results if p is not None])
        _save_parsed_fields([m for m, _ in results])
        Participant.objects.bulk_create(participants, batch_size=1000)
        Attachment.objects.bulk_create(attachments, batch_size=1000)


PARSED_FIELDS = (
    "parse_state",
    "parse_problems",
    "message_id",
    "in_reply_to",
    "references",
    "subject",
    "sent_at",
    "date",
    "from_address",
    "from_name",
    "snippet",
    "body_text",
    "has_html",
    "has_attachments",
    "automated",
    "list_id",
    "thread",
)


def _save_parsed_fields(messages: list[Message]) -> None:
    """One prepared UPDATE per message, sent with executemany.

    ``bulk_update`` builds a CASE expression per field over the whole batch; on a first
    sync that cost more than parsing itself.
    """
    if not messages:
        return
    fields = [Message._meta.get_field(name) for name in PARSED_FIELDS]
    connection = connections[router.db_for_write(Message)]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    # Identifiers from the model, quoted; every value is a parameter.
    sql = f"UPDATE {quote(Message._meta.db_table)} SET {assignments} WHERE {quote('id')} = %s"  # noqa: S608
    rows = [
        [f.get_db_prep_save(getattr(m, f.attname), connection) for f in fields] + [m.pk]
        for m in messages
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _fill(message: Message, parsed: ParsedMessage) -> None:
    message.parse_state = ParseState.PARTIAL if parsed.problems else ParseState.PARSED
    message.parse_problems = "\n".join(parsed.problems)[:2000]
    message.message_id = parsed.message_id[:500]
    message.in_reply_to = parsed.in_reply_to[:500]
    message.references = " ".join(parsed.references)[:10000]
    message.subject = parsed.subject[:2000]
    message.sent_at = parsed.date
    message.date = parsed.date or message.first_seen_at or timezone.now()
    sender = next((p for p in parsed.participants if p.role == "from"), None)
    message.from_address = sender.address[:254] if sender else ""
    message.from_name = sender.name[:300] if sender else ""
    text = parsed.text or _strip_tags(parsed.html)
    message.snippet = " ".join(text.split())[:SNIPPET]
    message.body_text = text[:BODY_TEXT_LIMIT]
    message.has_html = bool(parsed.html)
    message.has_attachments = any(not a.inline for a in parsed.attachments)
    message.automated = parsed.automated
    message.list_id = parsed.list_id[:300]


def _strip_tags(html: str) -> str:
    import nh3

    return nh3.clean(html, tags=set()) if html else ""


def thread_subject(subject: str) -> str:
    """The subject without reply and forward prefixes, for naming threads."""
    s = subject.strip()
    while True:
        lowered = s.lower()
        for prefix in ("re:", "fw:", "fwd:", "aw:", "wg:", "sv:", "vs:", "antw:"):
            if lowered.startswith(prefix):
                s = s[len(prefix) :].lstrip()
                break
        else:
            return s


def _assign_threads(messages: list[Message]) -> None:
    """Join each message to the thread of the messages it refers to, or start one.

    A parent that arrives after its replies adopts their thread, so order does not matter.
    """
    if not messages:
        return
    wanted = {ref for m in messages for ref in [m.in_reply_to, *m.references.split()] if ref}
    own_ids = {m.message_id for m in messages if m.message_id}
    related = Message.objects.filter(
        Q(message_id__in=wanted) | Q(in_reply_to__in=own_ids), thread__isnull=False
    ).values_list("message_id", "in_reply_to", "thread_id")
    by_msgid: dict[str, int] = {}
    children: dict[str, int] = {}
    for msgid, parent, thread_id in related:
        if msgid:
            by_msgid[msgid] = thread_id
        if parent:
            children[parent] = thread_id
    for message in sorted(messages, key=lambda m: m.date or timezone.now()):
        refs = [message.in_reply_to, *reversed(message.references.split())]
        thread_id = next((by_msgid[r] for r in refs if r and r in by_msgid), None)
        if thread_id is None and message.message_id in children:
            thread_id = children[message.message_id]
        if thread_id is None:
            thread = Thread.objects.create(
                subject=thread_subject(message.subject)[:2000], last_message_at=message.date
            )
            thread_id = thread.pk
        message.thread_id = thread_id
        if message.message_id:
            by_msgid[message.message_id] = thread_id
    latest: dict[int, object] = {}
    for m in messages:
        if m.date and (m.thread_id not in latest or m.date > latest[m.thread_id]):  # type: ignore[operator]
            latest[m.thread_id] = m.date
    for thread_id, when in latest.items():
        Thread.objects.filter(pk=thread_id).filter(
            Q(last_message_at__isnull=True) | Q(last_message_at__lt=when)
        ).update(last_message_at=when)
