"""Writing sharing settings: validation naming fields, who may change what, the audit."""

from __future__ import annotations

import pytest

from crmail.people.actions import Invalid, NotAllowed
from crmail.people.models import Group
from crmail.sharing import actions
from crmail.sharing.models import MessageOpen, SharedRecord, SharingSetting
from crmail.sharing.tests.build import mailbox, message
from tests import factories as f

pytestmark = pytest.mark.django_db


def fields(exc: Invalid) -> set[str]:
    return {e["field"] for e in exc.errors}


def test_suggested_domains_are_the_user_own_but_not_public_providers(org):
    mailbox(org.rep, "rex@Sales.Example.org")
    mailbox(org.rep, "rex@gmail.com", active=False)
    assert actions.suggested_excluded_domains(org.rep) == ["crmail.test", "sales.example.org"]
    gmail_user = f.user("someone@gmail.com")
    assert actions.suggested_excluded_domains(gmail_user) == []
    assert not SharingSetting.objects.get(user=gmail_user).excluded_domains.exists()


def test_a_user_changes_their_own_setting(org):
    setting = actions.set_sharing(
        org.rep,
        org.rep,
        mode="public",
        share_with=[org.peer, "manager@crmail.test"],
        excluded_domains=[" @Partner.Example ", "partner.example", "crmail.test"],
    )
    assert setting.audience == "chosen"
    assert {t.user for t in setting.targets.all()} == {org.peer, org.manager}
    assert list(setting.excluded_domains.values_list("domain", flat=True)) == [
        "crmail.test",
        "partner.example",
    ]
    actions.set_sharing(org.rep, org.rep, share_with=[])
    setting.refresh_from_db()
    assert setting.audience == "everyone" and not setting.targets.exists()


def test_every_problem_is_reported_with_its_field(org):
    with pytest.raises(Invalid) as caught:
        actions.set_sharing(
            None,
            org.rep,
            mode="secret",
            share_with=["nobody@crmail.test", "No such group", org.rep],
            excluded_domains=["not a domain", "a@b@c"],
        )
    assert fields(caught.value) == {"mode", "share_with", "excluded_domains"}
    assert len(caught.value.errors) == 6
    assert "nobody@crmail.test" in str(caught.value)


def test_chosen_audience_needs_someone(org):
    with pytest.raises(Invalid) as caught:
        actions.set_sharing(None, org.rep, mode="public", audience="chosen")
    assert fields(caught.value) == {"share_with"}


def test_groups_are_named_by_name(org):
    team = Group.objects.create(name="Key accounts")
    setting = actions.set_sharing(None, org.rep, share_with=["key ACCOUNTS"])
    assert [t.group for t in setting.targets.all()] == [team]


def test_only_admins_change_others_and_locked_settings(org):
    with pytest.raises(NotAllowed):
        actions.set_sharing(org.peer, org.rep, mode="private")
    with pytest.raises(NotAllowed):
        actions.set_locked(org.rep, org.rep, True)
    actions.set_locked(org.admin, org.rep, True)
    with pytest.raises(NotAllowed, match="locked"):
        actions.set_sharing(org.rep, org.rep, mode="private")
    with pytest.raises(NotAllowed, match="locked"):
        actions.share_record(org.rep, org.rep, "contacts", f.contact(org.rep).pk)
    setting = actions.set_sharing(org.admin, org.rep, mode="custom")
    assert (setting.mode, setting.locked) == ("custom", True)


def test_sharing_a_record_needs_a_record_the_user_sees(org):
    theirs = f.contact(org.outsider_manager)
    with pytest.raises(Invalid) as caught:
        actions.share_record(org.rep, org.rep, "contacts", theirs.pk)
    assert fields(caught.value) == {"record_id"}
    with pytest.raises(Invalid):
        actions.share_record(org.rep, org.rep, "widgets", 1)
    mine = f.contact(org.rep)
    assert actions.share_record(org.rep, org.rep, "contacts", mine.pk) is True
    assert actions.share_record(org.rep, org.rep, "contacts", mine.pk) is False
    assert actions.share_record(org.rep, org.rep, "contacts", mine.pk, shared=False) is True


def test_deleting_a_record_forgets_its_sharing_choices(org, django_capture_on_commit_callbacks):
    from crmail.crm import actions as crm_actions

    mine = f.contact(org.rep)
    actions.share_record(org.rep, org.rep, "contacts", mine.pk)
    with django_capture_on_commit_callbacks(execute=True):
        crm_actions.delete_record(org.rep, mine)
    assert not SharedRecord.objects.exists()


def test_opening_a_message_is_audited(org):
    msg = message("jane@customer.test", [org.rep.email], in_mailboxes=[org.rep])
    row = actions.record_open(org.rep, msg, module="contacts", record_id=7)
    assert (row.viewer, row.message, row.viewer_email) == (org.rep, msg, org.rep.email)
    assert MessageOpen.objects.filter(message=msg).count() == 1
    assert row.message_sha256 == msg.sha256
