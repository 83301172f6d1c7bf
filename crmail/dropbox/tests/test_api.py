"""``/api/v1/dropbox``: your address, a new one, your pattern; refusals in words."""

from __future__ import annotations

import pytest

from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def rep_api(client):
    rep = f.user("rep@crmail.test")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {f.token(rep)}"}

    def call(method: str, path: str, body: dict | None = None):
        kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
        return getattr(client, method)(f"/api/v1/dropbox{path}", **kwargs, **headers)

    return call


def test_the_address_stays_until_a_new_one_replaces_it(rep_api, settings):
    settings.CRMAIL_DROPBOX_DOMAIN = "dropbox.example.com"
    first = rep_api("get", "").json()
    assert first["configured"] is True
    assert first["address"].endswith("@dropbox.example.com")
    assert (first["pattern"], first["recent"]) == ("", [])
    assert rep_api("get", "").json()["address"] == first["address"]
    new = rep_api("post", "/regenerate").json()
    assert new["address"] not in (None, first["address"])


def test_without_a_domain_there_is_no_address_and_no_new_one(rep_api, settings):
    settings.CRMAIL_DROPBOX_DOMAIN = ""
    assert rep_api("get", "").json() == {
        "configured": False,
        "address": None,
        "pattern": "",
        "recent": [],
    }
    refused = rep_api("post", "/regenerate")
    assert refused.status_code == 409
    assert "not set up" in refused.json()["detail"]


def test_a_pattern_is_saved_or_refused_naming_the_field(rep_api, settings):
    settings.CRMAIL_DROPBOX_DOMAIN = "dropbox.example.com"
    saved = rep_api("put", "/pattern", {"pattern": r"(?m)^Sender: (?P<address>\S+)"})
    assert saved.json()["pattern"] == r"(?m)^Sender: (?P<address>\S+)"
    refused = rep_api("put", "/pattern", {"pattern": "(unclosed"})
    assert refused.status_code == 422
    assert "pattern" in refused.content.decode()
    assert "not a regular expression crmail can read" in refused.content.decode()
