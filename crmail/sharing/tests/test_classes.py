"""Visibility classes (decision 063) never change an answer: after every kind of write
that changes who may see a message, made after its class was worked out and before it is
worked out again, ``every_visible_message`` (through the classes) agrees with
``visible_messages`` (the rules asked message by message), and the answer really moved.
The writes are the database triggers' business, so each is made the way crmail's own
code makes it, ORM bulk statements and plain updates included."""

from __future__ import annotations

import pytest

from crmail.crm.models import Contact
from crmail.linking.models import Link
from crmail.mail.models import Participant
from crmail.mailboxes.models import Location, Mailbox, SentMessage
from crmail.people.models import ModuleDefault, User
from crmail.sharing import actions, classes
from crmail.sharing.models import (
    ExcludedDomain,
    MessageClass,
    VisibilityChange,
    VisibilityClass,
)
from crmail.sharing.tests.build import mailbox, message, place
from crmail.sharing.visibility import every_visible_message, visible_messages
from tests import factories as f

pytestmark = pytest.mark.django_db

CUSTOMER = "jane@customer.test"


def sees(viewer: User) -> set[int]:
    """What ``viewer`` sees through the classes, checked against the rules asked message
    by message."""
    every = set(every_visible_message(viewer).values_list("pk", flat=True))
    assert every == set(visible_messages(viewer).values_list("pk", flat=True)), viewer
    return every


def classified() -> None:
    classes.classify()
    assert not VisibilityChange.objects.exists()
    assert MessageClass.objects.exists()


@pytest.fixture
def jane(org):  # type: ignore[no-untyped-def]
    """Contacts private: a record is seen by its owner and those above them only."""
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "private"})
    return f.contact(org.rep, CUSTOMER)


def test_messages_alike_share_one_class_and_a_class_is_never_rewritten(org, jane):
    first = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    second = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    rows = dict(MessageClass.objects.values_list("message_id", "visibility_class_id"))
    assert rows[first.pk] == rows[second.pk]
    key = VisibilityClass.objects.get(pk=rows[first.pk]).key
    place(second, org.peer)
    classified()
    assert MessageClass.objects.get(message=second).visibility_class_id != rows[first.pk]
    assert VisibilityClass.objects.get(pk=rows[first.pk]).key == key


def test_a_record_handed_to_another_owner(org, jane):
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    assert msg.pk not in sees(org.outsider_manager)
    Contact.objects.filter(pk=jane.pk).update(owner=org.outsider_manager)
    assert msg.pk in sees(org.outsider_manager)
    assert msg.pk not in sees(org.manager)


def test_a_contact_moved_to_an_account_the_viewer_may_view(org, jane):
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    east = f.account(org.outsider_manager)
    classified()
    assert msg.pk not in sees(org.outsider_manager)
    jane.account = east
    jane.save()
    assert msg.pk in sees(org.outsider_manager)


def test_an_account_handed_to_another_owner(org, jane):
    account = f.account(org.rep)
    Contact.objects.filter(pk=jane.pk).update(account=account)
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    assert msg.pk not in sees(org.outsider_manager)
    account.owner = org.outsider_manager
    account.save()
    assert msg.pk in sees(org.outsider_manager)


def test_a_record_deleted(org, jane):
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    assert msg.pk in sees(org.manager)
    Contact.objects.filter(pk=jane.pk).delete()  # its links stay until the next relink
    assert msg.pk not in sees(org.manager)
    assert msg.pk in sees(org.rep)  # their own mail


def test_an_excluded_domain_added_and_removed(org, jane):
    msg = message("pat@partner.test", [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    assert msg.pk in sees(org.manager)
    ExcludedDomain.objects.create(setting_id=org.rep.pk, domain="partner.test")
    assert msg.pk not in sees(org.manager)
    classified()
    assert msg.pk not in sees(org.manager)
    actions.set_sharing(None, org.rep, excluded_domains=["crmail.test"])
    assert msg.pk in sees(org.manager)


def test_an_address_becoming_the_owners_own(org, jane):
    """Mail with colleagues only is internal; from an address of the owner's that crmail
    did not know, it was not, until the mailbox says it sends as that address."""
    msg = message("rex@home.test", [org.peer.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    assert msg.pk in sees(org.manager)
    Mailbox.objects.filter(owner=org.rep).update(extra_from_addresses=["Rex@Home.test"])
    assert msg.pk not in sees(org.manager)
    classified()
    User.objects.filter(pk=org.rep.pk).update(email="rex@elsewhere.test")
    assert sees(org.manager) == set(visible_messages(org.manager).values_list("pk", flat=True))


def test_a_mailbox_reconnected_at_another_address(org, jane):
    msg = message("rex@home.test", [org.peer.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    assert msg.pk in sees(org.manager)
    Mailbox.objects.filter(owner=org.rep).update(email="rex@home.test")
    assert msg.pk not in sees(org.manager)


def test_a_participant_from_outside_added(org, jane):
    msg = message(org.rep.email, [org.peer.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    assert msg.pk not in sees(org.manager)  # internal: colleagues only
    Participant.objects.create(message=msg, role="cc", address=CUSTOMER, position=5)
    assert msg.pk in sees(org.manager)


def test_a_copy_placed_moved_and_removed(org, jane):
    actions.set_sharing(None, org.rep, mode="private")
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    assert msg.pk not in sees(org.peer)
    copy = place(msg, org.peer)
    assert msg.pk in sees(org.peer)
    classified()
    Location.objects.filter(pk=copy.pk).update(mailbox=mailbox(org.manager))
    assert msg.pk not in sees(org.peer)
    assert msg.pk in sees(org.manager)
    classified()
    Location.objects.filter(message=msg).exclude(mailbox__owner=org.rep).delete()
    assert msg.pk not in sees(org.manager)


def test_a_link_added_and_removed(org, jane):
    msg = message(CUSTOMER, [org.rep.email], in_mailboxes=[org.rep])
    classified()
    assert msg.pk not in sees(org.manager)
    Link.objects.bulk_create(  # as the linker writes them: conflicts ignored (OR IGNORE)
        [
            Link(
                message=msg,
                module="contacts",
                record_id=jane.pk,
                reason="manual",
                date=msg.date,
                created_at=msg.date,
            )
        ],
        ignore_conflicts=True,
    )
    assert msg.pk in sees(org.manager)
    classified()
    Link.objects.filter(message=msg).delete()
    assert msg.pk not in sees(org.manager)


def test_mail_sent_from_crmail(org, jane):
    actions.set_sharing(None, org.rep, mode="private")
    msg = message(org.rep.email, [CUSTOMER], on=[jane], in_mailboxes=[org.rep])
    classified()
    assert msg.pk not in sees(org.manager)
    SentMessage.objects.create(message=msg, sender=org.rep, from_address=org.rep.email)
    assert msg.pk in sees(org.manager)


def test_a_message_deleted_and_changes_of_messages_gone(org, jane):
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    VisibilityChange.objects.create(message_id=msg.pk + 1000)  # no such message
    msg.locations.all().delete()
    msg.delete()
    classes.classify()
    assert not MessageClass.objects.filter(message_id=msg.pk).exists()
    assert not VisibilityChange.objects.exists()
    assert sees(org.rep) == set()


def test_sharing_modes_and_audiences_need_no_new_class(org, jane):
    """Whom a user shares with, and roles, are read when asked: no class holds them."""
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    actions.set_sharing(None, org.rep, mode="private")
    assert not VisibilityChange.objects.exists()
    assert msg.pk not in sees(org.manager)
    actions.set_sharing(None, org.rep, mode="public")
    assert msg.pk in sees(org.manager)


def test_a_viewers_reach_changed_between_two_looks(org, jane):
    """What a viewer sees through a class is remembered for a set of rules, never for the
    viewer alone: the records they may view widened and narrowed again move the answer
    at once, with no class worked out in between."""
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    actions.set_sharing(None, org.rep, mode="public")
    classified()
    assert msg.pk not in sees(org.peer)
    ModuleDefault.objects.filter(module="contacts").update(level="public_read")
    assert msg.pk in sees(org.peer)
    ModuleDefault.objects.filter(module="contacts").update(level="private")
    assert msg.pk not in sees(org.peer)
    assert not VisibilityChange.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_classes_read_ahead_leave_nothing_to_decode_for_the_first_report(org, jane, monkeypatch):
    """``crmail serve`` reads the classes as it starts (``warm``, a thread of its own):
    the process's first report then decodes no class."""
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    monkeypatch.setattr(classes, "_known", classes._Known())
    classes.warm().join()

    def decoded(key: str) -> classes.Kind:
        raise AssertionError("decoded by the report")

    monkeypatch.setattr(classes.Kind, "from_key", decoded)
    assert msg.pk in sees(org.rep)


@pytest.mark.django_db(transaction=True)
def test_a_large_run_leaves_no_dead_rows_behind_on_postgresql(org, jane, monkeypatch):
    """After a large run the drained log and the rewritten classes are vacuumed (every
    report reads past dead rows, and autovacuum may be off), and the planner's figures
    renewed."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("VACUUM is PostgreSQL's")
    monkeypatch.setattr(classes, "TIDY_AFTER", 1)
    message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])

    def dead(table: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT n_dead_tup, last_vacuum IS NOT NULL FROM pg_stat_user_tables"
                " WHERE relname = %s",
                [table],
            )
            found, vacuumed = cursor.fetchone()
            assert vacuumed, table
            return int(found)

    assert classes.classify() > 0
    assert dead(VisibilityChange._meta.db_table) == 0
    assert dead(MessageClass._meta.db_table) == 0


def test_a_message_logged_by_many_writes_is_worked_out_once(org, jane, monkeypatch):
    """A batch takes every change of the messages it reads, so a bulk load (a message
    logged once per table) classifies each message once, not once per change."""
    first = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    second = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    classified()
    before = dict(MessageClass.objects.values_list("message_id", "visibility_class_id"))
    place(first, org.peer)
    place(first, org.manager)
    place(second, org.peer)
    logged = VisibilityChange.objects.filter(message_id=first.pk).count()
    assert logged > 1
    monkeypatch.setattr(classes, "BATCH", 1)
    assert classes.classify(limit=1) == logged  # one batch: the first message's changes
    after = dict(MessageClass.objects.values_list("message_id", "visibility_class_id"))
    assert after[first.pk] != before[first.pk]  # worked out with both new copies
    assert after[second.pk] == before[second.pk]
    assert set(VisibilityChange.objects.values_list("message_id", flat=True)) == {second.pk}
    assert sees(org.peer) >= {first.pk, second.pk}
