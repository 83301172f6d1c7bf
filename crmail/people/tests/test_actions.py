"""The shared writer of user changes: every problem named at once, nothing half-written."""

from __future__ import annotations

import pytest

from crmail.people import actions
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_changes_are_checked_together_and_nothing_is_written_on_a_problem():
    admin, rep, gone = f.user(admin=True), f.user(name="Rep"), f.user(is_active=False)
    with pytest.raises(actions.Invalid) as refused:
        actions.update_user(
            rep,
            {"name": " ", "email": admin.email.upper(), "manager": gone, "role": "Nope"},
            by=admin,
        )
    fields = {e["field"] for e in refused.value.errors}
    assert fields == {"name", "email", "manager", "role"}
    rep.refresh_from_db()
    assert rep.name == "Rep"


def test_deactivating_records_when_and_a_user_cannot_deactivate_themselves():
    admin, rep = f.user(admin=True), f.user()
    actions.update_user(rep, {"is_active": False}, by=admin)
    rep.refresh_from_db()
    assert not rep.is_active and rep.deactivated_at is not None
    actions.update_user(rep, {"is_active": True}, by=admin)
    rep.refresh_from_db()
    assert rep.is_active and rep.deactivated_at is None
    with pytest.raises(actions.Invalid, match="yourself"):
        actions.update_user(admin, {"is_active": False}, by=admin)
    with pytest.raises(actions.Invalid, match="themselves"):
        actions.update_user(rep, {"manager": rep}, by=admin)
    with pytest.raises(actions.NotAllowed):
        actions.update_user(admin, {"name": "Boss"}, by=rep)
    with pytest.raises(actions.Invalid, match="cannot be changed"):
        actions.update_user(rep, {"password": "x"}, by=admin)
