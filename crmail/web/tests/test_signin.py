"""Signing in and out, and the sign-in rate limit."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from crmail.people.models import LoginFailure, User
from tests import factories as f

pytestmark = pytest.mark.django_db

SIGN_IN = reverse("web:login")


def sign_in(client, email: str, password: str = f.PASSWORD, **extra):
    return client.post(SIGN_IN, {"username": email, "password": password}, **extra)


def test_pages_ask_for_sign_in_first(client):
    response = client.get(reverse("web:record_list", args=["contacts"]))
    assert response.status_code == 302
    assert response["Location"].startswith(SIGN_IN)


def test_sign_in_page_shows_email_and_password(client):
    response = client.get(SIGN_IN)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'type="email"' in body and 'type="password"' in body
    assert "csrfmiddlewaretoken" in body


def test_signing_in_with_the_right_password_opens_the_home_page(client):
    f.user("ann@crmail.test", name="Ann Smith")
    response = sign_in(client, "ANN@crmail.test", follow=True)
    assert response.redirect_chain[-1][0] == reverse("web:home")
    assert "Hello, Ann Smith" in response.content.decode()


def test_a_wrong_password_is_refused_with_a_message(client):
    f.user("ann@crmail.test")
    response = sign_in(client, "ann@crmail.test", "wrong password")
    assert response.status_code == 200
    assert "The email address or the password is not right." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_deactivated_user_cannot_sign_in(client):
    f.user("gone@crmail.test", is_active=False)
    response = sign_in(client, "gone@crmail.test")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "not right" in response.content.decode()


def test_next_leads_back_to_the_page_asked_for(client):
    f.user("ann@crmail.test")
    target = reverse("web:record_list", args=["deals"])
    response = client.post(
        f"{SIGN_IN}?next={target}", {"username": "ann@crmail.test", "password": f.PASSWORD}
    )
    assert response["Location"] == target


def test_sign_out_is_a_post_and_ends_the_session(client):
    f.user("ann@crmail.test")
    sign_in(client, "ann@crmail.test")
    assert client.get(reverse("web:logout")).status_code == 405
    response = client.post(reverse("web:logout"))
    assert response["Location"] == SIGN_IN
    assert client.get(reverse("web:home")).status_code == 302


def test_too_many_failures_lock_the_address_without_checking_the_password(client, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 3
    settings.CRMAIL_LOGIN_WINDOW_SECONDS = 600
    f.user("ann@crmail.test")
    for _ in range(3):
        assert "not right" in sign_in(client, "ann@crmail.test", "nope").content.decode()
    response = sign_in(client, "ann@crmail.test")  # the right password, but locked
    body = response.content.decode()
    assert "Too many failed sign-ins from your network address; try again in 10 minutes." in body
    assert "_auth_user_id" not in client.session
    # Refused attempts are not counted, and the address is stored only hashed.
    assert LoginFailure.objects.count() == 3
    assert not LoginFailure.objects.filter(account_key__icontains="ann").exists()


def test_the_lock_lifts_when_the_window_has_passed(client, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 2
    settings.CRMAIL_LOGIN_WINDOW_SECONDS = 60
    f.user("ann@crmail.test")
    for _ in range(2):
        sign_in(client, "ann@crmail.test", "nope")
    assert "try again in 1 minute." in sign_in(client, "ann@crmail.test").content.decode()
    LoginFailure.objects.update(at=LoginFailure.objects.first().at.replace(year=2000))
    response = sign_in(client, "ann@crmail.test")
    assert response.status_code == 302
    assert response["Location"] == reverse("web:home")


def test_one_client_trying_many_addresses_is_locked(client, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 3
    f.user("ann@crmail.test")
    for n in range(3):
        sign_in(client, f"guess{n}@crmail.test", "nope")
    response = sign_in(client, "ann@crmail.test")
    assert "Too many failed sign-ins from your network address" in response.content.decode()
    # Another client may still sign in to that address.
    other = sign_in(client.__class__(), "ann@crmail.test", REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 302


def test_an_attacker_locked_out_does_not_lock_the_account_for_others(client, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 3
    settings.CRMAIL_LOGIN_MAX_ACCOUNT_FAILURES = 10
    f.user("ann@crmail.test")
    for _ in range(6):
        sign_in(client, "ann@crmail.test", "nope", REMOTE_ADDR="198.51.100.7")
    locked = sign_in(client, "ann@crmail.test", REMOTE_ADDR="198.51.100.7")
    assert "from your network address" in locked.content.decode()
    assert LoginFailure.objects.count() == 3  # only three passwords were checked
    assert sign_in(Client(), "ann@crmail.test", REMOTE_ADDR="192.0.2.1").status_code == 302


def test_many_addresses_attacking_one_account_are_stopped_by_the_account_limit(settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 3
    settings.CRMAIL_LOGIN_MAX_ACCOUNT_FAILURES = 4
    settings.CRMAIL_LOGIN_WINDOW_SECONDS = 300
    f.user("ann@crmail.test")
    answers = [
        sign_in(Client(), "ann@crmail.test", "nope", REMOTE_ADDR=f"203.0.113.{n}")
        for n in range(1, 9)
    ]
    checked = [a for a in answers if "not right" in a.content.decode()]
    assert len(checked) == 4
    # Even the right password, from an address never seen, waits for the window.
    response = sign_in(Client(), "ann@crmail.test", REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 200
    assert (
        "Too many failed sign-ins to this account; try again in 5 minutes."
        in response.content.decode()
    )
    # An address that failed once may still try another account.
    f.user("bob@crmail.test")
    bob = sign_in(Client(), "bob@crmail.test", REMOTE_ADDR="203.0.113.1")
    assert bob.status_code == 302


def test_ipv6_clients_are_counted_by_their_64_network(settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 2
    f.user("ann@crmail.test")
    sign_in(Client(), "ann@crmail.test", "nope", REMOTE_ADDR="2001:db8:1:2::10")
    sign_in(Client(), "ann@crmail.test", "nope", REMOTE_ADDR="2001:db8:1:2:ffff::99")
    same_network = sign_in(Client(), "ann@crmail.test", REMOTE_ADDR="2001:db8:1:2::abcd")
    assert "Too many failed sign-ins" in same_network.content.decode()
    other_network = sign_in(Client(), "ann@crmail.test", REMOTE_ADDR="2001:db8:1:3::10")
    assert other_network.status_code == 302


def test_the_back_office_login_sends_to_the_sign_in_page_keeping_next(client):
    response = client.get("/admin/login/?next=/admin/people/user/")
    assert response.status_code == 302
    assert response["Location"] == f"{SIGN_IN}?next=/admin/people/user/"
    assert client.get("/admin/login/")["Location"] == f"{SIGN_IN}?next=/admin/"
    # A form posted to it checks no password: it is sent to the sign-in page too.
    posted = client.post("/admin/login/", {"username": "root@crmail.test", "password": "x"})
    assert posted.status_code == 302 and posted["Location"].startswith(SIGN_IN)


def test_the_back_office_is_reached_by_signing_in_with_next(client):
    User.objects.create_superuser("root@crmail.test", f.PASSWORD, name="Root")
    start = client.get("/admin/", follow=True)
    assert start.redirect_chain[-1][0] == f"{SIGN_IN}?next=/admin/"
    response = client.post(
        f"{SIGN_IN}?next=/admin/", {"username": "root@crmail.test", "password": f.PASSWORD}
    )
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_locked_client_cannot_sign_in_at_the_back_office_either(client, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 3
    User.objects.create_superuser("root@crmail.test", f.PASSWORD, name="Root")
    for _ in range(3):
        sign_in(client, "root@crmail.test", "nope")
    for _ in range(25):
        client.post(
            "/admin/login/?next=/admin/",
            {"username": "root@crmail.test", "password": "guess", "next": "/admin/"},
        )
    assert LoginFailure.objects.count() == 3
    client.post(
        "/admin/login/?next=/admin/",
        {"username": "root@crmail.test", "password": f.PASSWORD, "next": "/admin/"},
    )
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_a_signed_in_user_without_back_office_access_is_told_so(org, client_for):
    response = client_for(org.rep).get("/admin/login/?next=/admin/")
    assert response.status_code == 403
    assert "no access to the back office" in response.content.decode()


def test_the_back_office_password_change_is_rate_limited(client_for, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 3
    root = User.objects.create_superuser("root@crmail.test", f.PASSWORD, name="Root")
    client = client_for(root)
    url = reverse("admin:password_change")

    def change(old: str):  # type: ignore[no-untyped-def]
        new = "a brand new passphrase 42"
        return client.post(url, {"old_password": old, "new_password1": new, "new_password2": new})

    for _ in range(3):
        assert "incorrect" in change("guess").content.decode()
    locked = change(f.PASSWORD)
    assert locked.status_code == 200
    assert "Too many failed sign-ins from your network address" in locked.content.decode()
    root.refresh_from_db()
    assert root.check_password(f.PASSWORD)
    assert LoginFailure.objects.count() == 3
    # The failures count for signing in too: the guesses cannot be spread over both doors.
    assert "Too many failed sign-ins" in sign_in(Client(), "root@crmail.test").content.decode()


def test_a_success_clears_the_failures_of_that_address(client, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 3
    f.user("ann@crmail.test")
    sign_in(client, "ann@crmail.test", "nope")
    sign_in(client, "ann@crmail.test", "nope")
    assert sign_in(client, "ann@crmail.test").status_code == 302
    assert LoginFailure.objects.count() == 0


def test_an_empty_password_neither_counts_nor_clears(client, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 2
    f.user("ann@crmail.test")
    sign_in(client, "ann@crmail.test", "nope")
    sign_in(client, "ann@crmail.test", "")
    assert LoginFailure.objects.count() == 1
