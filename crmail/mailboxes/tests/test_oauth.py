"""OAuth 2 for mailboxes against a real local authorization server and a real Dovecot.

The authorization server (``standins/oauth.py``) is small but strict: it checks the PKCE
verifier against the S256 challenge, answers ``invalid_grant`` for revoked refresh tokens,
and serves the token introspection Dovecot's oauth2 passdb asks when a client logs in with
XOAUTH2.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from crmail.jobs import leases
from crmail.jobs.models import Lease
from crmail.mailboxes import oauth
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.drivers.base import AuthFailed, ConnectFailed
from crmail.mailboxes.models import AuthMethod, Location, Mailbox, SyncState
from crmail.mailboxes.oauth import providers, refresh, signin
from crmail.mailboxes.sync import sync_mailbox
from crmail.mailboxes.tests.standins import oauth as standin
from crmail.mailboxes.tests.standins.oauth import HOST, REDIRECT_URI, AuthServer
from tests import factories as f

# The authorization server and a Dovecot that asks it, as fixtures (other tests use them
# from here too).
auth_server = standin.auth_server
oauth_dovecot = standin.oauth_dovecot


def sign_in(user, redirect_uri: str = REDIRECT_URI) -> tuple[str, dict[str, str]]:
    """Start the sign-in and follow the browser to the provider: (state, callback query)."""
    url, state = oauth.start_authorization("testidp", user, redirect_uri)
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = urllib.parse.urlsplit(answer.headers["Location"])
    assert location.geturl().startswith(redirect_uri)
    return state, dict(urllib.parse.parse_qsl(location.query))


def new_mailbox(owner, login: str, server=None) -> Mailbox:
    return Mailbox.objects.create(
        owner=owner,
        email=f"{login}@crmail.test",
        provider="testidp",
        protocol="imap",
        host=HOST,
        port=server.imap_port if server else 1,
        security="none",
        auth_method=AuthMethod.OAUTH2,
        login=login,
    )


def connected_mailbox(auth: AuthServer, login: str, server=None) -> Mailbox:
    """A mailbox whose owner went through the whole sign-in."""
    owner = f.user()
    auth.user = login
    _, params = sign_in(owner)
    tokens = oauth.complete_authorization(owner, params)
    mailbox = new_mailbox(owner, login, server)
    oauth.store_tokens(mailbox, tokens)
    return mailbox


def sync(mailbox: Mailbox):
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def mail(n: int) -> bytes:
    return (
        f"From: Client {n} <client{n}@example.com>\r\nTo: rep@crmail.test\r\n"
        f"Subject: Message {n}\r\nMessage-ID: <oauth{n}@example.com>\r\n"
        f"Date: Mon, 02 Nov 2026 10:{n:02d}:00 +0000\r\n\r\nBody {n}\r\n"
    ).encode()


def all_tokens(auth: AuthServer) -> list[str]:
    return [*auth.access, *auth.refresh, *(t for t, _ in auth.introspected)]


# -- signing in ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_in_with_pkce_then_sync_over_xoauth2(auth_server, oauth_dovecot):
    login, _password = oauth_dovecot.new_user()
    for n in range(3):
        oauth_dovecot.deliver(login, mail(n))

    mailbox = connected_mailbox(auth_server, login, oauth_dovecot)

    [(challenge, method)] = auth_server.challenges
    assert method == "S256" and len(challenge) == 43  # base64url of a SHA-256, unpadded
    assert auth_server.grants == [("authorization_code", "ok")]
    mailbox.refresh_from_db()
    assert mailbox.auth_method == AuthMethod.OAUTH2
    assert mailbox.secret in auth_server.refresh  # the refresh token, stored encrypted
    assert mailbox.access_token in auth_server.access
    assert mailbox.access_token_expires_at > timezone.now() + timedelta(minutes=55)

    report = sync(mailbox)
    assert report.fetched == 3
    assert Location.objects.filter(mailbox=mailbox).count() == 3
    assert (mailbox.access_token, True) in auth_server.introspected  # a real XOAUTH2 login
    assert auth_server.refresh_grants() == []  # the fresh token needed no refresh


@pytest.mark.django_db
def test_a_wrong_verifier_is_refused_so_pkce_is_really_sent(auth_server):
    owner = f.user()
    state, params = sign_in(owner)
    pending = oauth.pending_authorization(state, owner)
    assert pending.provider == "testidp" and pending.verifier not in repr(pending)

    with pytest.raises(oauth.AuthorizationFailed, match="did not accept the sign-in"):
        oauth.finish_authorization("testidp", params, state, "x" * 64, pending.redirect_uri)
    assert auth_server.grants == [("authorization_code", "invalid_grant")]

    state, params = sign_in(owner)  # the right verifier, kept on the server, works
    tokens = oauth.complete_authorization(owner, params)
    assert auth_server.grants[-1] == ("authorization_code", "ok")
    assert tokens.provider == "testidp" and tokens.refresh_token
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)


@pytest.mark.django_db
def test_a_started_sign_in_is_single_use_and_bound_to_its_user(auth_server):
    owner, other = f.user(), f.user()
    state, params = sign_in(owner)
    with pytest.raises(oauth.AuthorizationFailed, match="started by someone else"):
        oauth.complete_authorization(other, params)
    with pytest.raises(oauth.AuthorizationFailed, match="expired or was already used"):
        oauth.complete_authorization(owner, params)  # taken by the attempt above

    state, params = sign_in(owner)
    forged = {**params, "state": "not-the-state-we-sent"}
    pending = oauth.pending_authorization(state, owner)
    with pytest.raises(oauth.AuthorizationFailed, match="does not belong to this sign-in"):
        oauth.finish_authorization("testidp", forged, state, pending.verifier, pending.redirect_uri)
    with pytest.raises(oauth.AuthorizationFailed, match="Access was not granted"):
        oauth.finish_authorization(
            "testidp", {"state": state, "error": "access_denied"}, state, "v", REDIRECT_URI
        )
    assert auth_server.grants == []  # none of these reached the token endpoint


@pytest.mark.django_db
def test_an_expired_sign_in_is_refused(auth_server, monkeypatch):
    owner = f.user()
    monkeypatch.setattr(signin, "PENDING_SECONDS", -1)
    _, params = sign_in(owner)
    with pytest.raises(oauth.AuthorizationFailed, match="expired"):
        oauth.complete_authorization(owner, params)


def test_providers_from_the_environment(monkeypatch):
    monkeypatch.setenv("CRMAIL_OAUTH_GOOGLE_CLIENT_ID", "g-id")
    monkeypatch.setenv("CRMAIL_OAUTH_GOOGLE_CLIENT_SECRET", "g-secret")
    monkeypatch.setenv("CRMAIL_OAUTH_MICROSOFT_CLIENT_ID", "m-id")
    monkeypatch.setenv("CRMAIL_OAUTH_MICROSOFT_CLIENT_SECRET", "m-secret")
    monkeypatch.setenv("CRMAIL_OAUTH_MICROSOFT_TENANT", "contoso.onmicrosoft.com")
    monkeypatch.setenv("CRMAIL_OAUTH_ACME_TOKEN_URL", "https://id.acme.test/token")

    google = oauth.provider("gmail")
    assert (google.key, google.authorize_url, google.token_url) == (
        "google",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
    )
    assert google.scopes == ("https://mail.google.com/",)
    assert google.authorize_params == {"access_type": "offline", "prompt": "consent"}
    assert "g-secret" not in repr(google)

    microsoft = oauth.provider("outlook")
    assert microsoft.authorize_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    )
    assert microsoft.token_url.endswith("/contoso.onmicrosoft.com/oauth2/v2.0/token")
    assert "https://outlook.office.com/IMAP.AccessAsUser.All" in microsoft.scopes
    assert "offline_access" in microsoft.scopes

    with pytest.raises(oauth.OAuthNotConfigured, match="CRMAIL_OAUTH_ACME_AUTHORIZE_URL"):
        oauth.provider("acme")
    with pytest.raises(oauth.OAuthNotConfigured, match="no OAuth provider called 'nobody'"):
        oauth.provider("nobody")
    assert [p.key for p in oauth.configured_providers()] == ["google", "microsoft"]

    url, _ = providers.client(google).create_authorization_url(
        google.authorize_url,
        state="s",
        code_verifier="v" * 43,
        redirect_uri=REDIRECT_URI,
        **google.authorize_params,
    )
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["code_challenge_method"] == "S256" and query["access_type"] == "offline"
    assert query["prompt"] == "consent" and query["scope"] == "https://mail.google.com/"


# -- access tokens ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_token_near_expiry_is_refreshed_before_use(auth_server, oauth_dovecot):
    login, _ = oauth_dovecot.new_user()
    oauth_dovecot.deliver(login, mail(1))
    auth_server.expires_in = 120  # less than the five minutes crmail wants left
    mailbox = connected_mailbox(auth_server, login, oauth_dovecot)
    first = mailbox.access_token
    auth_server.expires_in = 3600

    report = sync(mailbox)  # open_driver asks for a token first

    assert report.fetched == 1
    assert auth_server.refresh_grants() == ["ok"]
    mailbox.refresh_from_db()
    assert mailbox.access_token != first
    assert mailbox.access_token_expires_at > timezone.now() + timedelta(minutes=55)
    assert (mailbox.access_token, True) in auth_server.introspected  # Dovecot took the new one
    assert oauth.access_token(mailbox) == mailbox.access_token  # no second refresh
    assert auth_server.refresh_grants() == ["ok"]


@pytest.mark.django_db
def test_an_expired_token_is_refused_by_dovecot_and_renewed_by_crmail(auth_server, oauth_dovecot):
    login, _ = oauth_dovecot.new_user()
    mailbox = connected_mailbox(auth_server, login, oauth_dovecot)
    stale = mailbox.access_token
    auth_server.expire(stale)
    # crmail believes the token still good; Dovecot refuses it, and crmail renews it once.
    sync(mailbox)
    assert (stale, False) in auth_server.introspected
    assert auth_server.refresh_grants() == ["ok"]
    mailbox.refresh_from_db()
    assert mailbox.access_token != stale
    assert (mailbox.access_token, True) in auth_server.introspected


@pytest.mark.django_db
def test_a_rotated_refresh_token_is_stored(auth_server):
    auth_server.rotate_refresh = True
    mailbox = connected_mailbox(auth_server, "alice")
    old_refresh = mailbox.secret
    Mailbox.objects.filter(pk=mailbox.pk).update(access_token_expires_at=timezone.now())
    mailbox.refresh_from_db()

    token = oauth.access_token(mailbox)

    mailbox.refresh_from_db()
    assert mailbox.access_token == token
    assert mailbox.secret != old_refresh and mailbox.secret in auth_server.refresh
    assert old_refresh not in auth_server.refresh


@pytest.mark.django_db
def test_a_revoked_refresh_token_asks_the_owner_to_sign_in_again(auth_server, caplog):
    caplog.set_level(logging.DEBUG)
    mailbox = connected_mailbox(auth_server, "alice")
    auth_server.revoke(mailbox.secret)
    Mailbox.objects.filter(pk=mailbox.pk).update(
        access_token_expires_at=timezone.now() + timedelta(minutes=4)
    )
    mailbox.refresh_from_db()
    tokens = [mailbox.secret, mailbox.access_token]

    with pytest.raises(AuthFailed) as failed:
        open_driver(mailbox)

    message = "Access to this mailbox was withdrawn or has expired: sign in to Test Identity again."
    assert failed.value.kind == "oauth_revoked" and str(failed.value) == message
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.NEEDS_REAUTH
    assert mailbox.last_error == message and mailbox.last_error_kind == "oauth_revoked"
    assert mailbox.access_token == ""
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("needs its owner to sign in again" in r.getMessage() for r in warnings)
    seen = "\n".join(
        [caplog.text, str(failed.value), repr(failed.value), mailbox.last_error]
        + [r.getMessage() for r in caplog.records]
    )
    for token in [*tokens, *all_tokens(auth_server)]:
        assert token not in seen

    # Asked again, it does not bother the provider: the owner must sign in first.
    grants = len(auth_server.grants)
    with pytest.raises(AuthFailed, match="sign in to Test Identity again"):
        oauth.access_token(mailbox)
    assert len(auth_server.grants) == grants

    # Signing in again brings the mailbox back.
    _, params = sign_in(mailbox.owner)
    oauth.store_tokens(mailbox, oauth.complete_authorization(mailbox.owner, params))
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.NEW and mailbox.last_error == ""
    assert oauth.access_token(mailbox) in auth_server.access


@pytest.mark.django_db
def test_an_unreachable_provider_is_a_connection_failure_in_words(auth_server, monkeypatch):
    mailbox = connected_mailbox(auth_server, "alice")
    Mailbox.objects.filter(pk=mailbox.pk).update(access_token_expires_at=timezone.now())
    mailbox.refresh_from_db()
    with socket_closed_port() as port:
        monkeypatch.setenv("CRMAIL_OAUTH_TESTIDP_TOKEN_URL", f"http://{HOST}:{port}/token")
        with pytest.raises(ConnectFailed, match="Cannot reach Test Identity's sign-in server") as e:
            oauth.access_token(mailbox)
    assert e.value.kind == "unreachable"
    assert mailbox.secret not in str(e.value)
    mailbox.refresh_from_db()
    assert mailbox.state != SyncState.NEEDS_REAUTH  # a network failure withdraws nothing

    monkeypatch.setenv("CRMAIL_OAUTH_TESTIDP_TOKEN_URL", f"{auth_server.url}/token")
    assert not Lease.objects.filter(name=refresh.refresh_lease(mailbox.pk)).exists()
    started = time.monotonic()
    assert oauth.access_token(mailbox) in auth_server.access  # nothing left claimed
    assert time.monotonic() - started < 5


def stale_token(mailbox: Mailbox) -> Mailbox:
    """``mailbox`` with its access token due for renewal, as stored and in memory."""
    Mailbox.objects.filter(pk=mailbox.pk).update(access_token_expires_at=timezone.now())
    mailbox.refresh_from_db()
    return mailbox


@pytest.mark.django_db
def test_a_crashed_refreshers_claim_lapses_and_the_next_worker_refreshes(auth_server, monkeypatch):
    """A worker on another machine claimed the refresh and died: the others wait only
    until its claim (a lease of one token request's time) runs out, then one refreshes."""
    mailbox = stale_token(connected_mailbox(auth_server, "alice"))
    lease = refresh.refresh_lease(mailbox.pk)
    assert leases.acquire(lease, "another-machine:4242#1", refresh.CLAIM_TTL)
    waits: list[int] = []

    def time_passes() -> None:
        waits.append(1)
        if len(waits) == 3:  # the dead worker's claim runs out
            past = timezone.now() - timedelta(seconds=1)
            Lease.objects.filter(name=lease).update(expires_at=past)

    monkeypatch.setattr(refresh, "_wait", time_passes)
    token = oauth.access_token(mailbox)

    assert len(waits) == 3  # it waited while the claim held
    assert auth_server.refresh_grants() == ["ok"]
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert stored.access_token == token
    assert stored.access_token_expires_at > timezone.now() + timedelta(minutes=55)
    assert not Lease.objects.filter(name=lease).exists()  # given back once stored


@pytest.mark.django_db
def test_a_claim_whose_process_on_this_machine_is_gone_is_taken_at_once(auth_server, monkeypatch):
    mailbox = stale_token(connected_mailbox(auth_server, "alice"))
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = f"{socket.gethostname()}:{gone.pid}#1"
    assert leases.acquire(refresh.refresh_lease(mailbox.pk), dead, timedelta(hours=1))
    monkeypatch.setattr(refresh, "_wait", lambda: pytest.fail("waited for a dead process"))

    assert oauth.access_token(mailbox) in auth_server.access
    assert auth_server.refresh_grants() == ["ok"]


class socket_closed_port:
    """A local port nothing listens on."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind((HOST, 0))
            return s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.mark.django_db
def test_a_password_mailbox_has_no_access_token():
    mailbox = Mailbox(auth_method=AuthMethod.PASSWORD)
    with pytest.raises(ValueError, match="OAuth 2"):
        oauth.access_token(mailbox)


# -- two workers at once -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("guard", ["process_lock", "lease"])
def test_two_workers_refreshing_at_once_store_one_token(auth_server, monkeypatch, guard):
    """Two workers find the token near expiry together. Refresh tokens are single-use
    here (rotated), so a second refresh with the old one would be refused: the guard must
    leave one consistent stored token, the one both workers use, and no false alarm.

    ``lease`` switches the in-process lock off, as for two worker processes: then the
    claim through ``jobs.leases`` alone must hold."""
    from django.db import connection

    if guard == "lease":
        if connection.vendor == "sqlite":
            pytest.skip(
                "SQLite's in-memory test database (shared cache) refuses concurrent writers "
                "with 'table is locked'; two processes on a database file are tested below"
            )
        monkeypatch.setattr(refresh, "_process_lock", lambda pk: contextlib.nullcontext())
    run_two_workers(auth_server)


def run_two_workers(auth_server: AuthServer) -> None:
    from django.db import connections

    auth_server.rotate_refresh = True
    auth_server.refresh_delay = 0.3
    mailbox = stale_token(connected_mailbox(auth_server, "alice"))

    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            mine = Mailbox.objects.get(pk=mailbox.pk)
            barrier.wait()
            results.append(oauth.access_token(mine))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert errors == []
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert stored.state != SyncState.NEEDS_REAUTH
    assert results == [stored.access_token, stored.access_token]
    assert stored.secret in auth_server.refresh  # the live refresh token is the stored one
    # The second worker waited for the first one's token instead of refreshing too.
    assert auth_server.refresh_grants() == ["ok"]


# Run by each of two processes: wait for the word "go", then ask for the mailbox's token.
REFRESHER = """
import sys
import django
django.setup()
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.oauth import access_token
mailbox = Mailbox.objects.get(pk=int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
print(access_token(mailbox), flush=True)
"""


@pytest.mark.django_db(transaction=True)
def test_two_processes_refreshing_at_once_make_one_token_request(auth_server, tmp_path):
    """Two worker processes, no lock shared in memory: on SQLite (a database file, as
    crmail runs it) and on PostgreSQL, the claim lets one of them ask the provider."""
    from django.db import connection

    auth_server.rotate_refresh = True  # a second request with the same token would fail
    auth_server.refresh_delay = 0.5
    mailbox = stale_token(connected_mailbox(auth_server, "alice"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crmail.config.settings"}
    if connection.vendor == "sqlite":
        path = tmp_path / "crmail.sqlite3"
        connection.ensure_connection()
        with sqlite3.connect(path) as copy:
            connection.connection.backup(copy)  # the test database, committed rows and all
            # In WAL mode, as `crmail init` leaves a database: two processes both turning a
            # fresh copy to WAL at once had one of them find it locked.
            copy.execute("PRAGMA journal_mode=WAL")
        env["CRMAIL_DATABASE_URL"] = f"sqlite:///{path}"
    else:
        base = os.environ["CRMAIL_DATABASE_URL"].rpartition("/")[0]
        env["CRMAIL_DATABASE_URL"] = f"{base}/{connection.settings_dict['NAME']}"
    refreshers = [
        subprocess.Popen(
            [sys.executable, "-c", REFRESHER, str(mailbox.pk)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for process in refreshers:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.communicate()[1]
        for process in refreshers:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        answers = [process.communicate(timeout=60) for process in refreshers]
    finally:
        for process in refreshers:
            if process.poll() is None:
                process.kill()
    assert [p.returncode for p in refreshers] == [0, 0], [err for _, err in answers]
    tokens = {out.strip() for out, _ in answers}
    assert len(tokens) == 1 and tokens <= set(auth_server.access)
    assert auth_server.refresh_grants() == ["ok"]


@pytest.mark.django_db
def test_a_worker_waits_for_the_token_another_worker_claimed_to_refresh(auth_server, monkeypatch):
    """The claim, step by step: another worker holds it; this one waits and takes the
    token the other stores, without asking the provider itself."""
    mailbox = stale_token(connected_mailbox(auth_server, "alice"))
    lease = refresh.refresh_lease(mailbox.pk)
    assert leases.acquire(lease, "another-machine:4242#1", refresh.CLAIM_TTL)
    theirs = auth_server.issue("alice", refresh=False)["access_token"]
    waits: list[int] = []

    def other_worker_stores_its_token() -> None:
        waits.append(1)
        if len(waits) == 2:
            Mailbox.objects.filter(pk=mailbox.pk).update(
                access_token=theirs, access_token_expires_at=timezone.now() + timedelta(hours=1)
            )
            leases.release(lease, "another-machine:4242#1")

    monkeypatch.setattr(refresh, "_wait", other_worker_stores_its_token)
    assert oauth.access_token(mailbox) == theirs
    assert len(waits) == 2 and auth_server.refresh_grants() == []
    assert mailbox.access_token == theirs


# -- Google's and Microsoft's endpoints (the stand-in) ----------------------------------------


def provider_mailbox(owner, provider: str, tokens: oauth.TokenSet) -> Mailbox:
    mailbox = Mailbox.objects.create(
        owner=owner, email="rep@crmail.test", provider=provider, protocol="imap", host=HOST
    )
    oauth.store_tokens(mailbox, tokens)
    return mailbox


def sign_in_at(oauth_server: AuthServer, provider: str):
    owner = f.user()
    url, _ = oauth.start_authorization(provider, owner, REDIRECT_URI, login_hint="rep@x.test")
    return owner, oauth.complete_authorization(owner, standin.follow(url))


@pytest.mark.django_db
def test_google_signs_in_refreshes_without_a_new_refresh_token_and_revokes(oauth_server):
    owner, tokens = sign_in_at(oauth_server, "gmail")
    assert tokens.provider == "google" and tokens.access_token.startswith("ya29.")
    assert oauth_server.unexpected == []  # crmail sends only what Google documents
    [query] = oauth_server.authorize_requests
    assert query["access_type"] == "offline" and query["login_hint"] == "rep@x.test"
    mailbox = stale_token(provider_mailbox(owner, "gmail", tokens))
    refresh_token = mailbox.secret

    fresh = oauth.access_token(mailbox)

    assert oauth_server.valid(fresh) is not None
    mailbox.refresh_from_db()
    assert mailbox.secret == refresh_token  # Google keeps the refresh token it gave
    assert oauth_server.unexpected == []

    oauth_server.revoke(refresh_token)
    stale_token(mailbox)
    with pytest.raises(AuthFailed, match="sign in to Google again"):
        oauth.access_token(mailbox)


@pytest.mark.django_db
def test_microsoft_gives_a_token_per_resource_and_a_new_refresh_token_each_time(oauth_server):
    owner, tokens = sign_in_at(oauth_server, "outlook")
    issued = oauth_server.valid(tokens.access_token)
    assert issued is not None and issued.resource == standin.OUTLOOK_RESOURCE
    assert "offline_access" in tokens.scope.split()
    assert oauth_server.unexpected == []
    mailbox = stale_token(provider_mailbox(owner, "outlook", tokens))
    first_refresh = mailbox.secret

    oauth.access_token(mailbox)

    mailbox.refresh_from_db()
    assert mailbox.secret != first_refresh and mailbox.secret in oauth_server.refresh
    # A resource the user did not consent to is Microsoft's AADSTS65001.
    answer = requests.post(
        oauth_server.microsoft_urls()["TOKEN_URL"],
        data={
            "client_id": standin.CLIENT_ID,
            "client_secret": standin.CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": mailbox.secret,
            "scope": "https://graph.microsoft.com/Mail.ReadWrite offline_access",
        },
        timeout=10,
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_grant" and body["error_codes"] == [65001]
    assert body["error_description"].startswith("AADSTS65001: ")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)


def test_the_token_endpoints_answer_mistakes_as_the_providers_do(oauth_server):
    google, microsoft = oauth_server.google_urls(), oauth_server.microsoft_urls()
    assert requests.get(google["TOKEN_URL"], timeout=10).status_code == 405
    answer = requests.get(microsoft["TOKEN_URL"], timeout=10)
    assert answer.status_code == 400 and answer.json()["error_codes"] == [900561]

    client = {"client_id": standin.CLIENT_ID, "client_secret": standin.CLIENT_SECRET}
    answer = requests.post(google["TOKEN_URL"], data=client, timeout=10)
    assert answer.json() == {
        "error": "invalid_request",
        "error_description": "Missing required parameter: grant_type",
    }
    revoked = {**client, "grant_type": "refresh_token", "refresh_token": "1//0gone"}
    answer = requests.post(google["TOKEN_URL"], data=revoked, timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    answer = requests.post(microsoft["TOKEN_URL"], data={**revoked, "scope": "x"}, timeout=10)
    assert answer.json()["error_codes"] == [50173]
    wrong = {**client, "client_secret": "nope", "grant_type": "refresh_token"}
    answer = requests.post(google["TOKEN_URL"], data=wrong, timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")

    oauth_server.fail_next(429, retry_after=7)
    answer = requests.post(google["TOKEN_URL"], data=revoked, timeout=10)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"

    # Google's authorization endpoint refuses a parameter it does not know.
    query = {
        "client_id": standin.CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "https://mail.google.com/",
        "resource": "x",
    }
    answer = requests.get(google["AUTHORIZE_URL"], params=query, allow_redirects=False, timeout=10)
    assert answer.status_code == 400 and "Parameter not allowed" in answer.text
    oauth_server.deny = True
    del query["resource"]
    assert standin.follow(f"{google['AUTHORIZE_URL']}?{urllib.parse.urlencode(query)}") == {
        "error": "access_denied"
    }
