"""The visibility query stays one query however much mail there is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crmail.linking.models import Link
from crmail.mail.models import Message, Participant
from crmail.mailboxes.models import Location
from crmail.people.models import ModuleDefault
from crmail.sharing import actions
from crmail.sharing.tests.build import inbox
from crmail.sharing.visibility import may_see_message, visible_messages
from tests import factories as f

pytestmark = pytest.mark.django_db


def bulk_mail(contact, owners, n: int, first: int = 0) -> None:  # type: ignore[no-untyped-def]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    messages = Message.objects.bulk_create(
        [
            Message(sha256=f"{first + i:064x}", size=0, date=start + timedelta(minutes=i))
            for i in range(n)
        ]
    )
    boxes = [inbox(o) for o in owners]
    Participant.objects.bulk_create(
        [
            Participant(message=m, role=role, address=address)
            for i, m in enumerate(messages)
            for role, address in (
                ("from", "jane@customer.test"),
                ("to", owners[i % len(owners)].email),
            )
        ]
    )
    Location.objects.bulk_create(
        [
            Location(
                mailbox=boxes[i % len(boxes)],
                folder=boxes[i % len(boxes)].folders.first(),
                message=m,
                remote_id=str(first + i),
            )
            for i, m in enumerate(messages)
        ]
    )
    Link.objects.bulk_create(
        [
            Link(
                message=m,
                module="contacts",
                record_id=contact.pk,
                reason="address",
                address="jane@customer.test",
                date=m.date,
                created_at=m.date,
            )
            for m in messages
        ]
    )


def queries(fn) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_a_record_list_costs_the_same_few_queries_for_ten_or_thousands(org):
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    jane = f.contact(org.rep, "jane@customer.test")
    owners = [org.rep, org.peer, org.manager, org.outsider_manager]
    actions.set_sharing(None, org.peer, mode="private")
    actions.set_sharing(None, org.manager, share_with=[org.rep])
    bulk_mail(jane, owners, 10)

    def page() -> None:
        viewer = type(org.rep).objects.select_related("role", "profile").get(pk=org.rep.pk)
        qs = visible_messages(viewer, "contacts", jane.pk)
        list(qs[:50])
        qs.count()

    small = queries(page)
    bulk_mail(jane, owners, 3000, first=10)
    assert queries(page) == small <= 4  # the viewer, the module default, the page, the count
    viewer = org.rep
    got = visible_messages(viewer, "contacts", jane.pk).count()
    assert got == 3010 - (3 + 750)  # everything but the peer's private quarter
    msg = Message.objects.order_by("pk").last()
    assert queries(lambda: may_see_message(viewer, msg)) <= 6
