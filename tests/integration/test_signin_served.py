"""Signing in to a real ``crmail serve``, directly and through a reverse proxy.

One server for the module, on SQLite or, in the PostgreSQL pass, on a database of its own;
each test plays its clients from loopback addresses of their own (all of 127.0.0.0/8 is
this machine) and signs in to accounts of its own, so the tests do not meet in the limiter.
The proxy connects from 127.0.0.2, inside ``CRMAIL_TRUSTED_PROXIES``; every other address
is a client talking to crmail directly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.proxy import Client, Response, ReverseProxy
from tests.operator import crmail, operator_environment, start_serve
from tests.testenv import PG_URL, on_server

ADMIN = "owner@example.com"
PASSWORD = "violet tractor 1987 harbour"
PER_ADDRESS = 5
PER_ACCOUNT = 6
NOT_RIGHT = "The email address or the password is not right."
# Racing attempts refused together may be told a shorter wait than 15 minutes.
ADDRESS_LOCKED = "Too many failed sign-ins from your network address; try again in"
ACCOUNT_LOCKED = "Too many failed sign-ins to this account; try again in"


@dataclass
class Served:
    env: dict[str, str]
    port: int
    proxy_port: int

    def direct(self, source: str) -> Client:
        return Client(self.port, source=source)

    def via_proxy(self, source: str) -> Client:
        return Client(self.proxy_port, source=source, https=True)

    def add_user(self, email: str) -> None:
        name = email.partition("@")[0].title()
        added = crmail(
            self.env,
            *("user", "add", email, "--name", name, "--password-env", "NEW_PASSWORD"),
            NEW_PASSWORD=PASSWORD,
        )
        assert added.returncode == 0, added.stderr


@pytest.fixture(scope="module")
def database(tmp_path_factory, migrated_database) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """SQLite in the data dir, or a fresh PostgreSQL database in the PostgreSQL pass
    (either migrated already)."""
    env = operator_environment(tmp_path_factory.mktemp("served"))
    if not os.environ.get("CRMAIL_TEST_DB", "").startswith("postgres"):
        yield migrated_database.into(env)
        return
    name = f"crmail_signin_{uuid.uuid4().hex[:10]}"
    template = migrated_database.postgresql_name()
    on_server(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield {**env, "CRMAIL_DATABASE_URL": f"{PG_URL}/{name}"}
    finally:
        on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def served(database) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    env = {
        **database,
        "CRMAIL_HTTPS": "1",
        "CRMAIL_TRUSTED_PROXIES": "10.255.0.1, 127.0.0.2/31",
        "CRMAIL_LOGIN_MAX_FAILURES": str(PER_ADDRESS),
        "CRMAIL_LOGIN_MAX_ACCOUNT_FAILURES": str(PER_ACCOUNT),
    }
    init = crmail(env, "init", CRMAIL_ADMIN_EMAIL=ADMIN, CRMAIL_ADMIN_PASSWORD=PASSWORD)
    assert init.returncode == 0, init.stderr
    with start_serve(env, "--threads", "24", "--workers", "1", "--no-watch") as port:  # noqa: SIM117
        with ReverseProxy(port, source="127.0.0.2") as proxy:
            yield Served(env, port, proxy.port)


ALERT = re.compile(r'role="alert">(.*?)</div>', re.S)


def said(answer: Response) -> str:
    """What the sign-in page answered: where it sent the client, or its message."""
    if answer.status == 302:
        return f"-> {answer.headers['Location']}"
    for words in (NOT_RIGHT, ADDRESS_LOCKED, ACCOUNT_LOCKED):
        if answer.status == 200 and words in answer.text:
            return words  # the message, less how long to wait
    return f"{answer.status}: {ALERT.findall(answer.text) or answer.text[:500]}"


def post_sign_in(client: Client, token: str, email: str, password: str, **headers: str) -> str:
    data = {"csrfmiddlewaretoken": token, "username": email, "password": password}
    return said(client.post_form("/sign-in/", data, headers=headers))


def sign_in(client: Client, email: str, password: str, **headers: str) -> str:
    return post_sign_in(client, client.form_token("/sign-in/"), email, password, **headers)


def in_parallel(attempts: list[tuple[Client, str, str]]) -> list[str]:
    """Every attempt posted at the same moment (forms fetched first), the answers in order."""
    tokens = [client.form_token("/sign-in/") for client, _, _ in attempts]
    answers: list[str] = [""] * len(attempts)
    start = threading.Barrier(len(attempts))

    def attempt(n: int) -> None:
        client, email, password = attempts[n]
        start.wait()
        answers[n] = post_sign_in(client, tokens[n], email, password)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(len(attempts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def test_parallel_attempts_from_one_address_check_no_more_than_its_limit(served):
    served.add_user("carol@example.com")
    attacker = "127.0.0.30"
    answers = in_parallel(
        [(served.direct(attacker), "carol@example.com", f"guess {n}") for n in range(20)]
    )
    assert set(answers) <= {NOT_RIGHT, ADDRESS_LOCKED}, answers
    assert answers.count(NOT_RIGHT) <= PER_ADDRESS, answers
    # Attempts refused in the race are not counted; the attacker's later tries fill the rest.
    later = [sign_in(served.direct(attacker), "carol@example.com", "again") for _ in range(6)]
    assert (answers + later).count(NOT_RIGHT) == PER_ADDRESS, (answers, later)
    # The attacker's address is locked, even with the right password…
    assert sign_in(served.direct(attacker), "carol@example.com", PASSWORD) == ADDRESS_LOCKED
    # …but Carol, from her own address, signs in: the account is not locked for her.
    assert sign_in(served.direct("127.0.0.31"), "carol@example.com", PASSWORD) == "-> /"


def test_parallel_attempts_from_many_addresses_check_no_more_than_the_account_limit(served):
    served.add_user("dave@example.com")
    answers = in_parallel(
        [(served.direct(f"127.0.0.{40 + n}"), "dave@example.com", "guess") for n in range(20)]
    )
    assert set(answers) <= {NOT_RIGHT, ACCOUNT_LOCKED}, answers
    assert answers.count(NOT_RIGHT) <= PER_ACCOUNT, answers
    later = [
        sign_in(served.direct(f"127.0.0.{60 + n}"), "dave@example.com", "guess") for n in range(7)
    ]
    assert (answers + later).count(NOT_RIGHT) == PER_ACCOUNT, (answers, later)
    assert sign_in(served.direct("127.0.0.70"), "dave@example.com", PASSWORD) == ACCOUNT_LOCKED


def test_the_back_office_login_leads_to_the_sign_in_page(served):
    client = served.direct("127.0.0.80")
    answer = client.get("/admin/login/?next=/admin/people/user/")
    assert answer.status == 302
    assert answer.headers["Location"] == "/sign-in/?next=/admin/people/user/"


def seed_message(env: dict[str, str]) -> int:
    """A message in the admin's mailbox, written by crmail's own code into the served data."""
    script = (
        "import django\n"
        "django.setup()\n"
        "from crmail.people.models import User\n"
        "from crmail.web.tests.mail_samples import deliver\n"
        f"owner = User.objects.get(email={ADMIN!r})\n"
        "raw = (b'From: Pat <pat@example.net>\\r\\nTo: " + ADMIN + "\\r\\n'\n"
        "       b'Subject: Hello\\r\\nMessage-ID: <hello@example.net>\\r\\n'\n"
        "       b'Date: Mon, 1 Jun 2026 10:00:00 +0000\\r\\n\\r\\nHi\\r\\n')\n"
        "print(deliver(owner, raw).pk)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "DJANGO_SETTINGS_MODULE": "crmail.config.settings"},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def test_through_the_proxy_urls_are_https_and_hsts_is_sent(served):
    message = seed_message(served.env)
    token = crmail(served.env, "token", "create", ADMIN).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}

    proxied = served.via_proxy("127.0.0.90").get(f"/api/v1/messages/{message}", auth)
    assert proxied.status == 200, proxied.text
    assert f'"url": "https://127.0.0.1:{served.proxy_port}/messages/{message}/"' in proxied.text
    assert proxied.headers["Strict-Transport-Security"] == "max-age=31536000"

    # A client reaching crmail directly cannot claim https, another host or another address.
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    direct = served.direct("127.0.0.91").get(f"/api/v1/messages/{message}", {**auth, **forged})
    assert f'"url": "http://127.0.0.1:{served.port}/messages/{message}/"' in direct.text


def test_through_the_proxy_the_limiter_counts_each_client_s_own_address(served):
    served.add_user("erin@example.com")
    attacker = served.via_proxy("127.0.0.100")
    for n in range(PER_ADDRESS):
        # A client-sent X-Forwarded-For is kept by the proxy, but the address it appends wins.
        answer = sign_in(
            attacker, "erin@example.com", "guess", **{"X-Forwarded-For": f"10.1.1.{n}"}
        )
        assert answer == NOT_RIGHT
    assert sign_in(attacker, "erin@example.com", PASSWORD) == ADDRESS_LOCKED
    # Through the same proxy, another client is another address: Erin signs in.
    assert sign_in(served.via_proxy("127.0.0.101"), "erin@example.com", PASSWORD) == "-> /"


def test_a_client_forging_x_forwarded_for_directly_is_not_believed(served):
    served.add_user("finn@example.com")
    forger = served.direct("127.0.0.110")
    for n in range(PER_ADDRESS):
        forged = {"X-Forwarded-For": f"198.51.100.{n}"}
        assert sign_in(forger, "finn@example.com", "guess", **forged) == NOT_RIGHT
    fresh = {"X-Forwarded-For": "198.51.100.200"}
    assert sign_in(forger, "finn@example.com", PASSWORD, **fresh) == ADDRESS_LOCKED


def test_the_proxy_s_plain_http_requests_are_sent_to_https_and_direct_ones_are_served(served):
    # What a proxy says when someone typed http://: crmail answers with the https address.
    proxy = Client(served.port, source="127.0.0.2")
    answer = proxy.get(
        "/sign-in/?next=/contacts/",
        headers={"X-Forwarded-For": "127.0.0.60", "X-Forwarded-Proto": "http"},
    )
    assert answer.status == 301
    expected = f"https://127.0.0.1:{served.port}/sign-in/?next=/contacts/"
    assert answer.headers["Location"] == expected
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    # Through the proxy over https, and straight to crmail (no proxy to say how), served.
    assert served.via_proxy("127.0.0.61").get("/sign-in/").status == 200
    direct = served.direct("127.0.0.62").get("/sign-in/", headers={"X-Forwarded-Proto": "http"})
    assert direct.status == 200
