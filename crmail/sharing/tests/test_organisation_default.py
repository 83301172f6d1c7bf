"""The organisation's default mail sharing, and the choice made when a mailbox is connected."""

from __future__ import annotations

import re

import pytest

from crmail.config.cli import main
from crmail.mailboxes.models import Mailbox
from crmail.people.actions import Invalid, NotAllowed, create_user
from crmail.sharing import actions
from crmail.sharing.models import SharingSetting
from crmail.sharing.queries import connect_choice
from crmail.sharing.tests.build import mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db


def mode_of(user) -> str:  # type: ignore[no-untyped-def]
    return SharingSetting.objects.get(user=user).mode


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def fields_of_a_mailbox(owner) -> dict:  # type: ignore[no-untyped-def]
    return {
        "email": owner.email,
        "protocol": "imap",
        "host": "127.0.0.1",
        "port": 1,
        "security": "none",
        "login": owner.email,
        "secret": "s3cret-pass",
    }


def test_a_new_user_starts_private_until_an_administrator_changes_the_default(org):
    assert actions.organisation_default() == "private"
    first = create_user("first@crmail.test", name="First")
    assert mode_of(first) == "private"

    actions.set_organisation_default(org.admin, "public")
    second = create_user("second@crmail.test", name="Second")
    assert mode_of(second) == "public"
    assert mode_of(first) == "private", "existing users keep their setting"


def test_only_administrators_set_the_default_and_only_to_a_mode(org):
    with pytest.raises(NotAllowed):
        actions.set_organisation_default(org.rep, "public")
    with pytest.raises(Invalid) as caught:
        actions.set_organisation_default(org.admin, "everyone")
    assert "private, public, custom" in str(caught.value)
    assert actions.organisation_default() == "private"


def test_connecting_a_first_mailbox_offers_the_default_then_the_users_own(org):
    newcomer = f.user("new@crmail.test", sharing=None)
    actions.set_organisation_default(org.admin, "custom")
    assert connect_choice(newcomer, newcomer).mode == "custom"
    mailbox(newcomer, "new@crmail.test")
    assert connect_choice(newcomer, newcomer).mode == "private"


def test_the_choice_made_when_connecting_becomes_the_users_sharing(org):
    newcomer = f.user("new@crmail.test", sharing=None)
    saved = actions.connect_mailbox(
        newcomer, newcomer, fields_of_a_mailbox(newcomer), test=False, sharing="public"
    )
    assert saved.is_active and mode_of(newcomer) == "public"
    assert SharingSetting.objects.get(user=newcomer).updated_by == newcomer


def test_a_locked_setting_is_kept_and_a_different_choice_refused(org):
    actions.set_sharing(org.admin, org.rep, mode="private")
    actions.set_locked(org.admin, org.rep, True)
    choice = connect_choice(org.rep, org.rep)
    assert (choice.mode, choice.locked) == ("private", True)
    with pytest.raises(Invalid) as caught:
        actions.connect_mailbox(
            org.rep, org.rep, fields_of_a_mailbox(org.rep), test=False, sharing="public"
        )
    assert caught.value.errors[0]["field"] == "sharing"
    assert "locked" in caught.value.errors[0]["message"]
    assert not Mailbox.objects.filter(owner=org.rep).exists()
    actions.connect_mailbox(
        org.rep, org.rep, fields_of_a_mailbox(org.rep), test=False, sharing="private"
    )
    assert mode_of(org.rep) == "private"


def test_the_default_at_the_command_line(capsys, org):
    status, out, err = run(capsys, "sharing", "default")
    assert status == 0, err
    assert "Default mail sharing: private." in out
    status, out, err = run(capsys, "sharing", "default", "public")
    assert status == 0, err
    assert "starts public" in out
    assert actions.organisation_default() == "public"
    status, _, err = run(capsys, "sharing", "default", "open")
    assert status == 2 and "invalid choice: 'open'" in err


def test_mailbox_add_sets_the_sharing_chosen(capsys, org, monkeypatch):
    newcomer = f.user("new@crmail.test", sharing=None)
    monkeypatch.setenv("TEST_MAILBOX_PASSWORD", "s3cret-pass")
    common = [
        "mailbox", "add", "--user", newcomer.email, "--protocol", "imap", "--host", "127.0.0.1",
        "--port", "1", "--security", "none", "--login", newcomer.email,
        "--password-env", "TEST_MAILBOX_PASSWORD", "--no-test",
    ]  # fmt: skip
    status, out, err = run(capsys, *common, "--sharing", "custom")
    assert out.strip().isdigit()
    assert status == 0, err
    assert mode_of(newcomer) == "custom"
    assert "Mail sharing of new@crmail.test: custom" in err
    status, _, err = run(capsys, *common, "--sharing", "everyone")
    assert status == 2 and "invalid choice: 'everyone'" in err


def test_the_default_through_the_api(org):
    from crmail.api.tests.conftest import ApiClient

    assert ApiClient(org.rep).get("/sharing/default").json()["mode"] == "private"
    refused = ApiClient(org.rep).send("PUT", "/sharing/default", {"mode": "public"})
    assert refused.status_code == 403
    answer = ApiClient(org.admin).send("PUT", "/sharing/default", {"mode": "public"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["mode"] == "public" and "managers included" in answer.json()["meaning"]
    bad = ApiClient(org.admin).send("PUT", "/sharing/default", {"mode": "open"})
    assert bad.status_code == 422


def test_connecting_through_the_api_refuses_to_unlock_a_locked_choice(org):
    from crmail.api.tests.conftest import ApiClient

    actions.set_locked(org.admin, org.rep, True)
    body = {
        "email": org.rep.email,
        "host": "127.0.0.1",
        "port": 1,
        "security": "none",
        "password": "s3cret-pass",
        "sharing": "custom",
    }
    answer = ApiClient(org.rep).post("/mailboxes", body)
    assert answer.status_code == 422
    assert "locked" in answer.content.decode() and '"sharing"' in answer.content.decode()
    assert mode_of(org.rep) == "public" and not Mailbox.objects.exists()


def test_the_connect_page_shows_a_locked_choice_read_only(client, org):
    actions.set_locked(org.admin, org.rep, True)
    client.force_login(org.rep)
    page = client.get("/settings/mail/connect/").content.decode()
    radios = re.findall(r'<input type="radio" name="sharing"[^>]*>', page)
    assert len(radios) == 3 and all(" disabled" in radio for radio in radios)
    assert [r for r in radios if " checked" in r] == [
        '<input type="radio" name="sharing" value="public" id="id_sharing_1" disabled checked>'
    ]
    assert "An administrator set your mail sharing and locked it" in page


def test_connecting_through_the_api_sets_the_sharing_given_or_the_default(org, dovecot):
    from crmail.api.tests.conftest import ApiClient

    newcomer = f.user("new@crmail.test", sharing=None)
    login, password = dovecot.new_user()
    body = {
        "email": "new@crmail.test",
        "host": "127.0.0.1",
        "port": dovecot.imap_port,
        "security": "none",
        "login": login,
        "password": password,
    }
    actions.set_organisation_default(org.admin, "custom")
    answer = ApiClient(newcomer).post("/mailboxes", body)
    assert answer.status_code == 201, answer.content
    assert mode_of(newcomer) == "custom"  # the default, for a first mailbox
    answer = ApiClient(newcomer).post("/mailboxes", {**body, "sharing": "public"})
    assert answer.status_code == 201, answer.content
    assert mode_of(newcomer) == "public"
