"""The inbox's conversation rows (decision 028): every writer keeps them equal to what a
rebuild from locations and links makes, and the inbox reads them."""

from __future__ import annotations

import os

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmail.config.cli import main
from crmail.crm import actions
from crmail.linking import links
from crmail.mail import ingest
from crmail.mail.models import Message, Thread
from crmail.mailboxes import conversations, inbox, sync, twoway
from crmail.mailboxes.drivers.base import FolderDelta
from crmail.mailboxes.models import Conversation, ConversationLink, Location
from crmail.mailboxes.tests.test_inbox import connect, folder, put
from tests import factories as f

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("CRMAIL_PROPERTY_EXAMPLES", "40"))
FOLDERS = ("INBOX", "Archive", "Clients")


def snapshot() -> set[tuple]:
    """Every conversation as its fields and records (not its row id)."""
    records: dict[int, set[tuple[str, int, bool]]] = {}
    for cid, module, record_id, unread in ConversationLink.objects.values_list(
        "conversation_id", "module", "record_id", "unread"
    ):
        records.setdefault(cid, set()).add((module, record_id, unread))
    return {
        (
            c.folder_id,
            c.key,
            c.location_id,
            c.date,
            c.messages,
            c.unread,
            c.flagged,
            frozenset(records.get(c.pk, ())),
        )
        for c in Conversation.objects.all()
    }


def reparsed(message: Message) -> None:
    """What saving a message's parse results does (its thread may have changed)."""
    with transaction.atomic():
        ingest.results_saved.send(sender=Message, message_ids=[message.pk])


def rebuilt() -> set[tuple]:
    with transaction.atomic():
        conversations.rebuild()
        got = snapshot()
        transaction.set_rollback(True)
    return got


index = st.integers(min_value=0, max_value=50)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), index, index, st.booleans(), st.booleans()),
        st.tuples(st.just("flags"), index, st.booleans(), st.booleans()),
        st.tuples(st.just("remove"), index),
        st.tuples(st.just("delete"), index),
        st.tuples(st.just("move"), index, index),
        st.tuples(st.just("thread"), index, index),
        st.tuples(st.just("link"), index, index),
        st.tuples(st.just("unlink"), index, index),
    ),
    max_size=25,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_every_writer_keeps_the_conversations_a_rebuild_makes(
    org, django_capture_on_commit_callbacks, ops
):
    user = org.admin

    def act(fn, *args):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args)

    with transaction.atomic():
        box = connect(user)
        threads = [Thread.objects.create(subject=f"t{i}") for i in range(3)]
        records = [f.contact(user), f.lead(user), f.deal(user)]
        messages = [put(box, thread=threads[i % 3], minutes=i % 4) for i in range(4)]
        messages.append(put(box))
        Message.objects.filter(pk=messages[-1].pk).update(thread=None)
        act(reparsed, messages[-1])
        serial = 1000

        def pick(n: int) -> Location | None:
            rows = list(Location.objects.order_by("pk"))
            return rows[n % len(rows)] if rows else None

        for op, *args in ops:
            loc = pick(args[0])
            if op == "add":
                serial += 1
                Location.objects.create(
                    mailbox=box,
                    folder=folder(box, FOLDERS[args[1] % 3]),
                    message=messages[args[0] % len(messages)],
                    remote_id=str(serial),
                    seen=args[2],
                    flagged=args[3],
                )
            elif loc is None:
                continue
            elif op == "flags":
                flags = frozenset(n for n, on in (("seen", args[1]), ("flagged", args[2])) if on)
                delta = FolderDelta(cursor={}, flag_changes={loc.remote_id: flags})
                sync._apply_flags(loc.folder, delta, sync.SyncReport())
            elif op == "remove":
                delta = FolderDelta(cursor={}, removed_ids=[loc.remote_id])
                sync._apply_removals(loc.folder, delta, {loc.remote_id: 1}, sync.SyncReport())
            elif op == "delete":
                loc.delete()
            elif op == "move":
                serial += 1
                twoway._relocate(loc, folder(box, FOLDERS[args[1] % 3]), str(serial))
            elif op == "thread":
                message = messages[args[0] % len(messages)]
                choice = args[1] % 4
                Message.objects.filter(pk=message.pk).update(
                    thread=threads[choice] if choice < 3 else None
                )
                act(reparsed, message)
            elif op == "link":
                act(links.link_to_record, user, loc.message, records[args[1] % 3])
            elif op == "unlink":
                act(links.unlink_from_record, user, loc.message, records[args[1] % 3])
        assert snapshot() == rebuilt()
        transaction.set_rollback(True)


def test_links_made_and_removed_move_a_conversation_between_streams(
    org, django_capture_on_commit_callbacks
):
    rep = org.rep
    box = connect(rep)
    buyer = f.contact(rep, "buyer@example.com")
    msg = put(box)
    assert inbox.page(rep, stream="others").count == 1
    with django_capture_on_commit_callbacks(execute=True):
        links.link_to_record(rep, msg, buyer)
    assert [e.message.pk for e in inbox.page(rep, stream="contacts").items] == [msg.pk]
    assert inbox.page(rep, stream="others").count == 0
    with django_capture_on_commit_callbacks(execute=True):
        links.unlink_from_record(rep, msg, buyer)
    assert inbox.page(rep, stream="contacts").count == 0
    assert [e.message.pk for e in inbox.page(rep, stream="others").items] == [msg.pk]


def test_the_rebuild_command_recomputes_one_mailbox(org, capsys):
    box = connect(org.rep)
    put(box, seen=False)
    put(box)
    Conversation.objects.all().delete()
    assert inbox.page(org.rep).count == 0
    assert main(["inbox", "rebuild", "--mailbox", str(box.pk)]) == 0
    assert "Rebuilt 2 conversations" in capsys.readouterr().out
    assert inbox.page(org.rep).count == 2
    assert [c.unread for c in inbox.folders(org.rep)][:1] == [1]
    assert main(["inbox", "rebuild", "--mailbox", "999999"]) != 0


def test_a_deleted_record_names_no_conversation(org, django_capture_on_commit_callbacks):
    rep = org.rep
    box = connect(rep)
    buyer = f.contact(rep, "buyer@example.com")
    msg = put(box, on=(buyer,))
    assert ConversationLink.objects.filter(module="contacts", record_id=buyer.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        actions.delete_record(org.admin, buyer)
    assert not ConversationLink.objects.filter(module="contacts", record_id=buyer.pk).exists()
    assert [e.message.pk for e in inbox.page(rep, stream="others").items] == [msg.pk]
    assert snapshot() == rebuilt()
