"""X-Forwarded-* believed from trusted proxies only (``CRMAIL_TRUSTED_PROXIES``)."""

from __future__ import annotations

from typing import Any

import pytest

from crmail.config import env
from crmail.config.proxy import TrustedProxies

pytestmark = pytest.mark.database_independent  # no database: one pass runs it


def seen_by_app(networks: str, peer: str, **headers: str) -> dict[str, Any]:
    """The WSGI environ Django would get for a request from ``peer`` with ``headers``."""
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    environ = {
        "REMOTE_ADDR": peer,
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "127.0.0.1:8000",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    TrustedProxies(app, env.trusted_proxies(networks))(environ, lambda *a: None)
    return seen


FORWARDED = {
    "x_forwarded_for": "198.51.100.7",
    "x_forwarded_proto": "https",
    "x_forwarded_host": "crm.example.com",
}


def test_a_trusted_proxy_gives_the_client_scheme_and_host():
    seen = seen_by_app("10.0.0.0/8", "10.1.2.3", **FORWARDED)
    assert seen["REMOTE_ADDR"] == "198.51.100.7"
    assert seen["wsgi.url_scheme"] == "https"
    assert seen["HTTP_HOST"] == "crm.example.com"


def test_anyone_else_s_forwarded_headers_are_removed():
    for networks in ("", "10.0.0.0/8", "127.0.0.2"):
        seen = seen_by_app(networks, "127.0.0.1", forwarded="for=1.2.3.4", **FORWARDED)
        assert seen["REMOTE_ADDR"] == "127.0.0.1"
        assert seen["wsgi.url_scheme"] == "http"
        assert seen["HTTP_HOST"] == "127.0.0.1:8000"
        assert not [k for k in seen if "FORWARDED" in k]


def test_the_client_is_the_address_the_trusted_proxy_added_not_a_forged_one():
    seen = seen_by_app("10.0.0.5", "10.0.0.5", x_forwarded_for="203.0.113.1, 198.51.100.7")
    assert seen["REMOTE_ADDR"] == "198.51.100.7"


def test_a_chain_of_trusted_proxies_is_skipped_from_the_right():
    seen = seen_by_app(
        "10.0.0.0/8, 192.168.1.1",
        "10.0.0.5",
        x_forwarded_for="203.0.113.1, 198.51.100.7, 192.168.1.1, 10.9.9.9",
    )
    assert seen["REMOTE_ADDR"] == "198.51.100.7"


def test_ipv6_and_mapped_ipv4_peers_match_their_networks():
    assert seen_by_app("fd00::/8", "fd00::1", **FORWARDED)["REMOTE_ADDR"] == "198.51.100.7"
    mapped = seen_by_app("10.0.0.0/8", "::ffff:10.0.0.9", x_forwarded_for="2001:db8::7")
    assert mapped["REMOTE_ADDR"] == "2001:db8::7"


def test_a_malformed_header_from_a_trusted_proxy_is_a_400_not_an_error():
    answers: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise AssertionError("not reached")

    environ = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_PROTO": "gopher", "HTTP_HOST": "x"}
    environ.update({"wsgi.url_scheme": "http", "SERVER_NAME": "x", "SERVER_PORT": "80"})
    body = b"".join(
        TrustedProxies(app, env.trusted_proxies("10.0.0.5"))(
            environ, lambda status, headers, *a: answers.append(status)
        )
    )
    assert answers[0].startswith("400")
    assert b"X-Forwarded-Proto" in body


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("proxy.internal", "'proxy.internal' is not an IP address or network"),
        ("*", "'*' is not an IP address or network"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or network"),
    ],
)
def test_trusted_proxies_must_be_addresses_or_networks(raw, message):
    with pytest.raises(env.ConfigError, match=message):
        env.trusted_proxies(raw)


def test_trusted_proxies_parse_addresses_and_networks():
    parsed = env.trusted_proxies(" 10.0.0.5, 192.168.0.0/16,, ::1 ")
    assert [str(n) for n in parsed] == ["10.0.0.5/32", "192.168.0.0/16", "::1/128"]
