"""A user's own account: name and signature, password, API tokens; on the page and the API."""

from __future__ import annotations

import re

import pytest

from crmail.api.tests.conftest import ApiClient
from crmail.people import actions
from crmail.people.actions import Invalid, NotAllowed
from crmail.people.models import ApiToken
from tests import factories as f

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "violet tractor 1987 harbour"


def fields(exc: Invalid) -> set[str]:
    return {e["field"] for e in exc.errors}


def test_name_and_signature_are_checked_then_saved(org):
    with pytest.raises(Invalid) as caught:
        actions.update_account(org.rep, name="  ", signature="x" * 5001)
    assert fields(caught.value) == {"name", "signature"}
    actions.update_account(org.rep, name=" Rex R. ", signature="Rex\r\nSales, Acme\r\n")
    org.rep.refresh_from_db()
    assert (org.rep.name, org.rep.signature) == ("Rex R.", "Rex\nSales, Acme")


def test_the_password_changes_only_with_the_current_one(org):
    with pytest.raises(Invalid) as caught:
        actions.change_password(org.rep, current="wrong", new="short", again="short")
    assert fields(caught.value) == {"current", "new"}
    with pytest.raises(Invalid) as caught:
        actions.change_password(
            org.rep, current=f.PASSWORD, new=NEW_PASSWORD, again=NEW_PASSWORD + "!"
        )
    assert fields(caught.value) == {"again"}
    actions.change_password(org.rep, current=f.PASSWORD, new=NEW_PASSWORD, again=NEW_PASSWORD)
    org.rep.refresh_from_db()
    assert org.rep.check_password(NEW_PASSWORD) and not org.rep.check_password(f.PASSWORD)


def test_tokens_are_made_and_revoked_by_their_owner_or_an_administrator(org):
    row, secret = actions.create_token(org.rep, name="laptop", by=org.rep)
    assert ApiToken.authenticate(secret) == org.rep
    with pytest.raises(NotAllowed):
        actions.revoke_token(row, by=org.peer)
    with pytest.raises(NotAllowed):
        actions.create_token(org.rep, by=org.peer)
    assert actions.revoke_token(row, by=org.admin) is True
    assert actions.revoke_token(row, by=org.rep) is False
    assert ApiToken.authenticate(secret) is None
    with pytest.raises(Invalid):
        actions.create_token(org.rep, name="n" * 101)


def test_the_account_page_saves_the_signature_the_composer_uses(client, org):
    client.force_login(org.rep)
    page = client.get("/account/")
    assert page.status_code == 200 and "Your account" in page.content.decode()
    answer = client.post("/account/", {"name": "Rex Rep", "signature": "Rex\nAcme sales"})
    assert answer.status_code == 302
    org.rep.refresh_from_db()
    assert org.rep.signature == "Rex\nAcme sales"
    bad = client.post("/account/", {"name": "", "signature": ""})
    assert bad.status_code == 200 and "This field is required." in bad.content.decode()


def test_a_wrong_current_password_is_said_and_a_good_change_keeps_the_session(client, org):
    client.force_login(org.rep)
    refused = client.post(
        "/account/password/", {"current": "nope", "new": NEW_PASSWORD, "again": NEW_PASSWORD}
    )
    assert refused.status_code == 200
    assert "The current password is not right." in refused.content.decode()
    done = client.post(
        "/account/password/",
        {"current": f.PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD},
        follow=True,
    )
    assert "Your password was changed." in done.content.decode()
    assert client.get("/account/").status_code == 200  # still signed in


def test_a_new_token_is_shown_once_then_only_its_hint(client, org):
    client.force_login(org.rep)
    first = client.post("/account/tokens/", {"token-name": "CI"}, follow=True).content.decode()
    secret = re.search(r'<code class="secret"[^>]*>(crm_[^<]+)</code>', first).group(1)
    assert ApiToken.authenticate(secret) == org.rep
    assert secret not in str(dict(client.session))  # shown, never stored
    again = client.get("/account/").content.decode()
    assert secret not in again and secret[:10] + "…" in again
    row = ApiToken.objects.get(user=org.rep)
    other = ApiToken.issue(org.peer)[0]
    assert client.post(f"/account/tokens/{other.pk}/revoke/").status_code == 404
    revoked = client.post(f"/account/tokens/{row.pk}/revoke/", follow=True).content.decode()
    assert "The API token “CI” is revoked" in revoked
    assert ApiToken.authenticate(secret) is None


def test_tokens_through_the_api(org):
    api = ApiClient(org.rep)
    made = api.post("/tokens", {"name": "script"})
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["token"].startswith("crm_") and body["hint"] == body["token"][:10]
    listed = api.get("/tokens").json()
    assert [t["name"] for t in listed] == ["script", ""] and all("token" not in t for t in listed)
    other = ApiToken.issue(org.peer)[0]
    assert api.send("DELETE", f"/tokens/{other.pk}").status_code == 404
    gone = api.send("DELETE", f"/tokens/{body['id']}")
    assert gone.status_code == 200 and gone.json()["revoked_at"]
    assert ApiClient(token=body["token"]).get("/tokens").status_code == 401
    too_long = api.post("/tokens", {"name": "n" * 101})
    assert too_long.status_code == 422


def test_the_composer_starts_with_the_signature(client, org):
    from crmail.mailboxes.models import Mailbox

    Mailbox.objects.create(
        owner=org.rep,
        email=org.rep.email,
        protocol="imap",
        host="127.0.0.1",
        port=1,
        security="none",
        login=org.rep.email,
        secret="s3cret-pass",
        smtp_host="127.0.0.1",
        smtp_port=1,
        smtp_security="none",
        is_active=True,
    )
    client.force_login(org.rep)
    assert "-- " not in client.get("/compose/").content.decode()
    actions.update_account(org.rep, name="Rex Rep", signature="Rex Rep\nAcme <sales>")
    page = client.get("/compose/").content.decode()
    body = re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert body == "\n\n\n-- \nRex Rep\nAcme &lt;sales&gt;\n"


def test_guessing_the_current_password_meets_the_sign_in_limit(org, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        with pytest.raises(Invalid, match="not right"):
            actions.change_password(
                org.rep, current="guess", new=NEW_PASSWORD, again=NEW_PASSWORD, client="10.0.0.9"
            )
    with pytest.raises(Invalid) as caught:  # the right one too, while locked
        actions.change_password(
            org.rep, current=f.PASSWORD, new=NEW_PASSWORD, again=NEW_PASSWORD, client="10.0.0.9"
        )
    assert "minute" in caught.value.errors[0]["message"]
    org.rep.refresh_from_db()
    assert org.rep.check_password(f.PASSWORD)
