"""Signing in with Google and Microsoft for their mail APIs (Gmail API, Microsoft Graph):
the scopes asked, one token per resource, a refresh token brought from elsewhere (CLI,
API), the connect page's choice and ``crmail check``, against the local authorization
server (``standins/oauth.py``) and the Graph stand-in."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest
from django.db import connection

from crmail.api.tests.conftest import ApiClient
from crmail.config.cli import main
from crmail.mailboxes import oauth
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.drivers.base import AuthFailed
from crmail.mailboxes.models import AuthMethod, Mailbox
from crmail.mailboxes.tests.standins import oauth as standin
from crmail.mailboxes.tests.standins.graph import GraphState, serve
from crmail.mailboxes.tests.standins.oauth import GRAPH_RESOURCE, OUTLOOK_RESOURCE, AuthServer
from tests import factories as f

pytestmark = pytest.mark.django_db

GMAIL_SCOPES = [
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.labels",
]
GRAPH_SCOPES = [
    "https://graph.microsoft.com/Mail.ReadWrite",
    "https://graph.microsoft.com/Mail.Send",
    "offline_access",
]


@pytest.fixture
def graph(oauth_server: AuthServer, settings) -> Iterator[GraphState]:
    """Microsoft Graph, taking the Graph tokens the authorization server hands out."""
    with serve() as state:
        settings.CRMAIL_GRAPH_API_URL = state.base_url
        oauth_server.user = state.address

        def accept(issued: standin.Issued) -> None:
            if issued.resource == GRAPH_RESOURCE:
                state.add_token(issued.token)

        oauth_server.on_issue.append(accept)
        yield state


def sign_in(provider: str, protocol: str) -> tuple[dict[str, str], oauth.TokenSet]:
    owner = f.user()
    url, _ = oauth.start_authorization(
        provider, owner, standin.REDIRECT_URI, resource=oauth.resource_for(protocol)
    )
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    return query, oauth.complete_authorization(owner, standin.follow(url))


def test_google_is_asked_for_the_gmail_api_scopes(oauth_server):
    query, tokens = sign_in("gmail", "gmail")
    assert query["scope"].split() == GMAIL_SCOPES
    assert tokens.resource == oauth.API_RESOURCE and tokens.refresh_token
    assert oauth_server.unexpected == []

    query, tokens = sign_in("gmail", "imap")  # IMAP keeps Google's IMAP scope
    assert query["scope"].split() == ["https://mail.google.com/"]


def test_microsoft_gives_a_graph_token_for_graph_and_an_outlook_token_for_imap(oauth_server):
    query, tokens = sign_in("outlook", "graph")
    assert query["scope"].split() == GRAPH_SCOPES
    issued = oauth_server.valid(tokens.access_token)
    assert issued is not None and issued.resource == GRAPH_RESOURCE

    _, tokens = sign_in("outlook", "imap")
    issued = oauth_server.valid(tokens.access_token)
    assert issued is not None and issued.resource == OUTLOOK_RESOURCE
    assert oauth_server.unexpected == []


def test_a_graph_mailbox_renews_its_graph_token_and_never_uses_another_resources(
    oauth_server, graph
):
    _, tokens = sign_in("outlook", "graph")
    mailbox = Mailbox.objects.create(
        owner=f.user(), email=graph.address, provider="outlook", protocol="graph"
    )
    oauth.store_tokens(mailbox, tokens)
    mailbox.refresh_from_db()
    assert mailbox.access_token_resource == "api"

    # A token for IMAP (outlook.office.com) stored on it is not handed to Graph: renewed.
    _, imap_tokens = sign_in("outlook", "imap")
    Mailbox.objects.filter(pk=mailbox.pk).update(
        access_token=imap_tokens.access_token, access_token_resource="mail"
    )
    mailbox.refresh_from_db()
    token = oauth.access_token(mailbox)
    assert token != imap_tokens.access_token
    assert oauth_server.valid(token, resource=GRAPH_RESOURCE) is not None
    refresh = [r for r in oauth_server.token_requests if r["grant_type"] == "refresh_token"]
    assert refresh[-1]["scope"].split() == GRAPH_SCOPES  # Microsoft wants the scopes again

    driver = open_driver(mailbox)  # Graph takes it
    try:
        assert any(folder.name == "Inbox" for folder in driver.list_folders())
    finally:
        driver.close()


def test_a_refresh_token_from_elsewhere_is_proven_by_one_refresh(oauth_server):
    good = oauth_server.grant_refresh_token("rep@gmail.test", "google", tuple(GMAIL_SCOPES))
    tokens = oauth.redeem_refresh_token("gmail", good, oauth.API_RESOURCE)
    assert tokens.refresh_token == good  # Google keeps it; kept as given
    assert oauth_server.valid(tokens.access_token) is not None
    assert oauth_server.refresh_grants() == ["ok"]

    with pytest.raises(AuthFailed, match=r"Google refused this refresh token \(invalid_grant\)"):
        oauth.redeem_refresh_token("gmail", "1//0not-a-token", oauth.API_RESOURCE)


# -- the command line ---------------------------------------------------------------------


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_connects_an_outlook_mailbox_through_graph_with_a_refresh_token(
    capsys, monkeypatch, oauth_server, graph
):
    owner = f.user(graph.address)
    f.user("admin@crmail.test", admin=True)
    token = oauth_server.grant_refresh_token(graph.address, "microsoft", tuple(GRAPH_SCOPES))
    monkeypatch.setenv("MOVED_TOKEN", token)
    argv = ["mailbox", "add", "--user", owner.email, "--protocol", "graph"]

    status, out, err = run(capsys, *argv, "--oauth-refresh-token-env", "MOVED_TOKEN")

    assert status == 0, err
    mailbox = Mailbox.objects.get(pk=int(out.strip().splitlines()[-1]))
    assert (mailbox.protocol, mailbox.provider, mailbox.auth_method) == (
        "graph",
        "outlook",
        AuthMethod.OAUTH2,
    )
    assert not mailbox.keeps_copy and mailbox.email == graph.address
    assert "nothing of the mail is stored" in out + err
    assert mailbox.secret in oauth_server.refresh  # Microsoft's new refresh token, kept
    assert token not in out + err and mailbox.access_token not in out + err
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, access_token FROM mailboxes_mailbox WHERE id = %s", [mailbox.pk]
        )
        raw = " ".join(cursor.fetchone())
    assert mailbox.secret not in raw and mailbox.access_token not in raw  # encrypted at rest

    Mailbox.objects.all().delete()
    status, out, err = run(capsys, *argv, "--oauth-refresh-token-env", "MOVED_TOKEN", "--keep-copy")
    assert status == 0, err
    assert Mailbox.objects.get().keeps_copy


def test_cli_says_what_is_wrong_in_words(capsys, monkeypatch, oauth_server):
    owner = f.user("rep@gmail.test")
    argv = ["mailbox", "add", "--user", owner.email, "--protocol", "gmail"]

    status, _, err = run(capsys, *argv, "--oauth-refresh-token-env", "NOT_SET_ANYWHERE")
    assert status != 0 and "NOT_SET_ANYWHERE is not set or is empty" in err

    monkeypatch.setenv("OLD_TOKEN", "1//0revoked")
    status, _, err = run(capsys, *argv, "--oauth-refresh-token-env", "OLD_TOKEN")
    assert status != 0
    assert "Google refused this refresh token (invalid_grant)" in err and "1//0revoked" not in err

    status, _, err = run(
        capsys, "mailbox", "add", "--user", "nobody@crmail.test", "--protocol", "gmail",
        "--oauth-refresh-token-env", "OLD_TOKEN",
    )  # fmt: skip
    assert status != 0 and "there is no user with the email 'nobody@crmail.test'" in err

    status, _, err = run(capsys, *argv)
    assert status != 0 and "--protocol gmail needs --oauth-refresh-token-env VAR" in err
    status, _, err = run(capsys, *argv, "--oauth-refresh-token-env", "OLD_TOKEN", "--host", "x")
    assert status != 0 and "leave out --host" in err
    status, _, err = run(
        capsys, "mailbox", "add", "--user", owner.email, "--protocol", "imap", "--keep-copy"
    )
    assert status != 0 and "--protocol imap needs --host, --port" in err
    assert not Mailbox.objects.exists()


def test_check_reports_moved_endpoints(capsys, org, settings, monkeypatch):
    _, out, _ = run(capsys, "check")
    assert "sign-in endpoints and mail APIs are their own" in out

    settings.CRMAIL_GRAPH_API_URL = "https://graph.microsoft.us/v1.0"
    settings.CRMAIL_OAUTH_MICROSOFT_TOKEN_URL = (
        "https://login.microsoftonline.us/common/oauth2/v2.0/token"
    )
    settings.CRMAIL_GMAIL_API_URL = "http://gmail-proxy.example.net"
    monkeypatch.setenv("CRMAIL_OAUTH_MICROSOFT_CLIENT_ID", "id")
    monkeypatch.setenv("CRMAIL_OAUTH_MICROSOFT_CLIENT_SECRET", "secret")
    _, out, err = run(capsys, "check")
    text = " ".join((out + err).split())
    assert "CRMAIL_GRAPH_API_URL is set: crmail uses https://graph.microsoft.us/v1.0" in text
    assert "CRMAIL_OAUTH_MICROSOFT_TOKEN_URL is set" in text
    assert "Mailboxes can sign in with Microsoft." in text
    assert "CRMAIL_GMAIL_API_URL is plain http:// to gmail-proxy.example.net" in text
    assert oauth.provider("outlook").token_url.startswith("https://login.microsoftonline.us/")


def test_an_endpoint_that_is_not_a_url_is_a_configuration_error(monkeypatch):
    from crmail.config import env

    monkeypatch.setenv("CRMAIL_GRAPH_API_URL", "graph.microsoft.us")
    with pytest.raises(env.ConfigError, match="CRMAIL_GRAPH_API_URL must be an http"):
        env.endpoint_url("CRMAIL_GRAPH_API_URL")
    monkeypatch.setenv("CRMAIL_GRAPH_API_URL", "https://graph.microsoft.us/v1.0/")
    assert env.endpoint_url("CRMAIL_GRAPH_API_URL") == "https://graph.microsoft.us/v1.0"


# -- the API ------------------------------------------------------------------------------


def test_the_api_connects_graph_with_a_refresh_token_and_shows_the_choice(oauth_server, graph):
    owner = f.user(graph.address)
    token = oauth_server.grant_refresh_token(graph.address, "microsoft", tuple(GRAPH_SCOPES))
    body = {"email": graph.address, "protocol": "graph", "oauth_refresh_token": token}

    response = ApiClient(owner).post("/mailboxes", body)

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["protocol"], data["keeps_copy"], data["provider"]) == ("graph", False, "outlook")
    assert token not in response.content.decode()
    assert ApiClient(owner).get(f"/mailboxes/{data['id']}").json()["keeps_copy"] is False

    missing = ApiClient(owner).post("/mailboxes", {"email": graph.address, "protocol": "graph"})
    assert missing.status_code == 422 and "give oauth_refresh_token" in missing.content.decode()
    refused = ApiClient(owner).post(
        "/mailboxes", {**body, "oauth_refresh_token": "0.Arevoked", "keeps_copy": True}
    )
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["field"] == "oauth_refresh_token" and "invalid_grant" in error["message"]
    assert Mailbox.objects.count() == 1
