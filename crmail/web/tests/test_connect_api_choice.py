"""The connect page's choice between IMAP and the provider's API, and signing in with
Microsoft for Graph, against the local authorization server and the Graph stand-in."""

from __future__ import annotations

import urllib.parse

import pytest
from django.urls import reverse

from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.tests.standins import oauth as standin
from crmail.mailboxes.tests.standins.oauth import GRAPH_RESOURCE
from crmail.mailboxes.tests.test_api_sign_in import GRAPH_SCOPES
from crmail.mailboxes.tests.test_api_sign_in import graph as graph_fixture
from tests import factories as f

pytestmark = pytest.mark.django_db
graph = graph_fixture


# -- the connect page ---------------------------------------------------------------------


def connect_form(preset: str, protocol: str, email: str, **extra: str) -> dict[str, str]:
    return {
        "preset": preset,
        "protocol": protocol,
        "email": email,
        "security": "tls",
        "smtp_security": "tls",
        "store_sent_on_server": "on",
        **extra,
    }


def test_the_connect_page_offers_the_api_in_words(oauth_server, client_for):
    client = client_for(f.user())
    html = client.get(reverse("web:mailbox_connect"), {"preset": "gmail"}).content.decode()
    assert "Gmail API: nothing of your mail is stored in crmail" in html
    assert "IMAP: crmail keeps a copy of your mail for search, reports" in html
    assert "Keep a copy of my mail in crmail" in html and "Sign in with Google" in html
    html = client.get(reverse("web:mailbox_connect"), {"preset": "outlook"}).content.decode()
    assert "Microsoft Graph: nothing of your mail is stored" in html
    html = client.get(reverse("web:mailbox_connect"), {"preset": "yahoo"}).content.decode()
    assert "Gmail API" not in html and "Keep a copy of my mail" not in html

    # The API needs the sign-in: a password form says so.
    response = client.post(
        reverse("web:mailbox_connect"), connect_form("gmail", "gmail", "rep@gmail.test")
    )
    assert "Gmail API needs no password: use “Sign in with Google”" in response.content.decode()
    # An API is offered only by its provider.
    response = client.post(
        reverse("web:mailbox_connect"), connect_form("yahoo", "gmail", "rep@yahoo.test")
    )
    assert "Select a valid choice" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_signing_in_with_microsoft_for_graph_connects_the_api(oauth_server, graph, client_for):
    rep = f.user(graph.address)
    client = client_for(rep)
    data = connect_form("outlook", "graph", graph.address, oauth="outlook")
    start = client.post(reverse("web:mailbox_oauth_start"), data, headers={"HX-Request": "true"})
    assert start.status_code == 204, start.content.decode()
    url = start["HX-Redirect"]
    asked = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert asked["scope"].split() == GRAPH_SCOPES

    back = client.get(reverse("web:mailbox_oauth_callback"), standin.follow(url))

    assert back.status_code == 302, back.content.decode()
    mailbox = Mailbox.objects.get(owner=rep)
    assert (mailbox.protocol, mailbox.keeps_copy, mailbox.host, mailbox.smtp_host) == (
        "graph",
        False,
        "",
        "",
    )
    assert mailbox.access_token_resource == "api"
    assert oauth_server.valid(mailbox.access_token, resource=GRAPH_RESOURCE) is not None
