"""The dropbox's pages: the refusals for administrators only, a pattern refused in words."""

from __future__ import annotations

import pytest

from crmail.dropbox import receive
from crmail.dropbox.models import DropboxSetting, Stage
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_administrators_see_what_the_receiver_refused_and_others_do_not(client, org, settings):
    settings.CRMAIL_DROPBOX_DOMAIN = "dropbox.example.com"
    receive.refuse(
        Stage.DATA,
        "550 5.7.1 The From header must be one of the dropbox owner's own addresses",
        envelope_from="rep@crmail.test",
        header_from="ceo@acme.test",
        user=org.rep,
    )
    client.force_login(org.rep)
    assert client.get("/settings/dropbox/").status_code == 403
    client.force_login(org.admin)
    page = client.get("/settings/dropbox/").content.decode()
    assert "From header: ceo@acme.test" in page
    assert "The From header must be one of the dropbox owner&#x27;s own addresses" in page
    assert "dropbox.example.com" in page


def test_a_pattern_that_is_no_regular_expression_is_refused_in_words(client, settings):
    settings.CRMAIL_DROPBOX_DOMAIN = "dropbox.example.com"
    rep = f.user("rep@crmail.test")
    client.force_login(rep)
    answer = client.post("/settings/mail/dropbox/pattern/", {"pattern": "(?P<a>x)(y)"})
    assert "name the one that holds the address" in answer.content.decode()
    assert not DropboxSetting.objects.exists()
    answer = client.post("/settings/mail/dropbox/pattern/", {"pattern": r"Sender: (\S+)"})
    assert answer.status_code == 302
    assert DropboxSetting.objects.get().forward_pattern == r"Sender: (\S+)"
