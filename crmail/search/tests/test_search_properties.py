"""Property test: search never shows or counts a message outside ``visible_messages``.

The organisations are those of the visibility property test (its generator and builder,
``sharing/tests/test_visibility_properties.py``): role trees, groups, every sharing mode,
excluded domains, custom records, several mailboxes per message, mail sent from crmail.
Every message's subject is ``m<n>``, so the query ``m`` (a prefix) matches them all: for
each viewer its results must be exactly the messages it may see, overall and on the few
(viewer, record) pairs the organisation's spec chose; any other query (a participant's
address, a domain) a subset of them, with a count that agrees with its rows.

``CRMAIL_PROPERTY_EXAMPLES`` runs more examples (default 40).
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmail.people.models import User
from crmail.search import index, queries
from crmail.search.queries import Filters, search_messages
from crmail.search.query import parse
from crmail.sharing.tests.test_visibility_properties import (
    EXAMPLES,
    OrgSpec,
    build_org,
    key_args,
    org_specs,
)
from crmail.sharing.visibility import visible_messages

pytestmark = pytest.mark.django_db

WORDS = [
    "m",
    "c1",
    "cust",
    "partner",
    "gmail",
    "u0",
    "acme",
    "from:c2",
    "to:u1",
    "sub",
    "is:unread",
    "is:read",
    "in:inbox",
    "m in:inbox",
]


def found(viewer: User, text: str, filters: Filters | None = None) -> tuple[set[int], int]:
    results = search_messages(viewer, parse(text), filters, limit=10_000)
    ids = [h.message.pk for h in results.hits]
    assert len(ids) == len(set(ids)) == results.count, text
    assert not results.more, text
    # A window of one match (then two, four…) cuts matches off: the first page is the
    # same, and the count a lower bound of what the viewer may see.
    with (
        mock.patch.object(queries, "WINDOW", 1),
        mock.patch.object(queries, "GROWTH", 2),
    ):
        small = search_messages(viewer, parse(text), filters, limit=2)
    assert [h.message.pk for h in small.hits] == ids[:2], text
    assert [h.in_thread for h in small.hits] == [h.in_thread for h in results.hits[:2]], text
    assert len(small.hits) <= small.count <= results.count, text
    return set(ids), results.count


def check(spec: OrgSpec, words: list[str]) -> None:
    users, records, _ = build_org(spec)
    index.reindex()
    for v, user in enumerate(users):
        viewer = User.objects.select_related("role", "profile").get(pk=user.pk)
        visible = set(visible_messages(viewer).values_list("pk", flat=True))
        assert found(viewer, "m")[0] == visible, ("all", viewer.email)
        for text in words:
            assert found(viewer, text)[0] <= visible, (text, viewer.email)
        # On a record, search keeps to ``visible_messages(viewer, module, id)``, which the
        # visibility property test checks for every pair: here the few pairs of the
        # organisation that hypothesis chose (and shrinks) for the Emails list's views.
        for key in sorted(key for w, key in spec.view_checks if w == v):
            module, pk = key_args(records[key])
            on_record = set(visible_messages(viewer, module, pk).values_list("pk", flat=True))
            got, _ = found(viewer, "m", Filters(record=(module, pk)))
            assert got == on_record, ("on record", key, viewer.email)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=org_specs(), words=st.lists(st.sampled_from(WORDS), max_size=3))
def test_search_shows_and_counts_only_visible_mail(spec: OrgSpec, words: list[str]) -> None:
    with transaction.atomic():
        check(spec, words)
        transaction.set_rollback(True)
