"""Ids past the database's integers in an ``in`` list match nothing, on every database."""

from __future__ import annotations

import pytest

from crmail.people.models import User
from tests import factories as f

pytestmark = pytest.mark.django_db

PAST = 2**63  # one more than the largest 64-bit integer: no id can be it


def test_an_id_list_with_ids_past_the_databases_integers_finds_the_others():
    ada = f.user("ada@crmail.test")
    assert list(User.objects.filter(pk__in=[PAST, ada.pk])) == [ada]
    assert list(User.objects.filter(pk__in=[-PAST - 1, str(PAST)])) == []
    assert User.objects.exclude(pk__in=[PAST]).filter(pk=ada.pk).exists()


def test_a_relation_compared_with_ids_past_the_databases_integers_finds_the_others():
    ada = f.user("ada@crmail.test")
    assert ada.role_id is not None
    assert list(User.objects.filter(role__in=[PAST, ada.role_id], pk=ada.pk)) == [ada]
    assert list(User.objects.filter(role_id__in=[PAST])) == []
