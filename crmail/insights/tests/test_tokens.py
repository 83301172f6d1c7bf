"""Signed tokens: crmail's are read back, forged and altered ones are not, and the click
address redirects only to the URL signed into its token (a property over URLs)."""

from __future__ import annotations

import base64
import string

import pytest
from django.test import Client, override_settings
from django.utils.encoding import iri_to_uri
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmail.insights import tokens


def test_a_token_crmail_made_reads_back():
    key = tokens.new_key()
    assert tokens.read(tokens.make("o", key)) == tokens.Token("o", key)
    url = "https://acme.example/pricing?plan=pro&x=1#top"
    assert tokens.read(tokens.make("c", key, link=3, url=url)) == tokens.Token("c", key, 3, url)


def test_every_altered_character_makes_a_token_unreadable():
    token = tokens.make("c", tokens.new_key(), link=1, url="https://acme.example/a")
    for i in range(len(token)):
        for other in ("A", "z", "0", "-"):
            if token[i] != other:
                assert tokens.read(token[:i] + other + token[i + 1 :]) is None


def test_forged_tokens_are_unreadable():
    key = tokens.new_key()
    raw = base64.urlsafe_b64decode(tokens.make("c", key, url="https://acme.example/") + "==")
    payload = raw[: -tokens.MAC_BYTES]
    # The same payload pointing elsewhere, with the old MAC or none.
    evil = payload.replace(b"acme.example", b"evil.example")
    for forged in (evil + raw[-tokens.MAC_BYTES :], evil, payload):
        assert tokens.read(base64.urlsafe_b64encode(forged).decode().rstrip("=")) is None
    # A token signed with another secret.
    with override_settings(SECRET_KEY="someone else's secret " * 3):
        theirs = tokens.make("o", key)
    assert tokens.read(theirs) is None
    for junk in ("", "a", "!!!!", "=" * 40, "A" * (tokens.MAX_TOKEN + 1), "é" * 30):
        assert tokens.read(junk) is None


def test_a_token_signed_before_the_secret_changed_reads_while_it_is_a_fallback():
    key = tokens.new_key()
    with override_settings(SECRET_KEY="the old secret " * 4):
        old = tokens.make("o", key)
    with override_settings(
        SECRET_KEY="the new secret " * 4, SECRET_KEY_FALLBACKS=["the old secret " * 4]
    ):
        assert tokens.read(old) == tokens.Token("o", key)


def test_only_absolute_http_addresses_are_signed():
    key = tokens.new_key()
    for bad in (
        "javascript:alert(1)",
        "//evil.example/",
        "/settings/",
        "data:text/html,x",
        "https://",
        "http://a b.example/",
        "https://x.example/\r\nSet-Cookie: a=b",
        "mailto:a@b.example",
        "https:\\\\evil.example",
    ):
        with pytest.raises(ValueError):
            tokens.make("c", key, url=bad)


urls = st.one_of(
    st.builds(
        lambda scheme, host, path, query: f"{scheme}://{host}/{path}{query}",
        st.sampled_from(["http", "https", "HTTPS", "javascript", "ftp", "data", "file"]),
        st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z]{2,6}){1,2}(:[0-9]{1,5})?", fullmatch=True),
        st.text(
            alphabet=string.ascii_letters + string.digits + "-._~%/é@:!$&'()*+,;=\\ \t", max_size=40
        ),
        st.sampled_from(["", "?a=1&b=2", "#frag", "?next=https://evil.example/"]),
    ),
    st.text(max_size=80),
)


@pytest.mark.django_db
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(url=urls)
def test_the_click_address_redirects_only_to_the_signed_url(url):
    """Any URL: a token is made only for a safe http(s) address, and the click address
    then redirects exactly there; anything else is never signed, and an address whose
    token was altered to point elsewhere gets a plain page, never a redirect."""
    key = tokens.new_key()
    client = Client()
    try:
        token = tokens.make("c", key, url=url)
    except ValueError:
        assert not tokens.safe_destination(url)
        return
    answer = client.get(f"/t/c/{token}")
    assert answer.status_code == 302
    assert answer["Location"] == iri_to_uri(url)
    scheme = url.split(":", 1)[0].lower()
    assert scheme in ("http", "https")
    # The same token with its URL swapped for another: no redirect at all.
    raw = base64.urlsafe_b64decode(token + "==")
    payload, mac = raw[: -tokens.MAC_BYTES], raw[-tokens.MAC_BYTES :]
    head = payload[: 2 + tokens.KEY_BYTES + 2]
    swapped = base64.urlsafe_b64encode(head + b"https://evil.example/" + mac).decode().rstrip("=")
    other = client.get(f"/t/c/{swapped}")
    assert other.status_code == 404 and "Location" not in other
