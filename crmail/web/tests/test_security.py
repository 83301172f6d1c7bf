"""Headers, static files and error pages."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories as f

pytestmark = pytest.mark.django_db


def test_pages_carry_a_strict_content_security_policy(client):
    csp = client.get(reverse("web:login"))["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_error_pages_carry_the_policy_too(org, client_for):
    hidden = f.contact(org.peer)
    response = client_for(org.rep).get(reverse("web:record_detail", args=["contacts", hidden.pk]))
    assert response.status_code == 404
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_pages_have_no_inline_scripts_or_styles(org, client_for):
    f.contact(org.rep, "x@y.example")
    body = client_for(org.rep).get(reverse("web:record_list", args=["contacts"])).content.decode()
    assert "<script>" not in body and "<style" not in body and "style=" not in body
    assert "/static/crmail/htmx.min.js" in body


def test_user_input_is_escaped(org, client_for):
    contact = f.contact(org.rep, last_name="<script>alert(1)</script>")
    client = client_for(org.rep)
    for url in (
        reverse("web:record_detail", args=["contacts", contact.pk]),
        reverse("web:record_list", args=["contacts"]) + "?q=%3Cscript%3E",
    ):
        body = client.get(url).content.decode()
        assert "<script>alert" not in body
        assert "&lt;script&gt;" in body


def test_forms_need_the_csrf_token(org):
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.rep)
    response = client.post(reverse("web:record_create", args=["contacts"]), {"last_name": "X"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_static_files_are_served_without_debug(client, settings):
    assert settings.DEBUG is False
    response = client.get("/static/crmail/crmail.css")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/css; charset=utf-8"
    assert "max-age=" in response["Cache-Control"]
    assert b".topbar" in b"".join(response.streaming_content)
    again = client.get(
        "/static/crmail/crmail.css", HTTP_IF_MODIFIED_SINCE=response["Last-Modified"]
    )
    assert again.status_code == 304
    assert client.get("/static/crmail/htmx.min.js")["Content-Type"].startswith("text/javascript")
    assert client.get("/static/admin/css/base.css").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/static/crmail/missing.css", "/static/../settings.py", "/static/%2e%2e/web/urls.py"],
)
def test_static_files_stay_inside_the_static_dirs(client, path):
    assert client.get(path).status_code == 404


def test_unknown_pages_show_a_friendly_not_found(org, client_for):
    response = client_for(org.rep).get("/no/such/page/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_server_errors_show_a_friendly_page(org, client_for, monkeypatch):
    from crmail.web import modules

    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(modules, "counts", boom)
    client = client_for(org.rep)
    client.raise_request_exception = False
    response = client.get(reverse("web:home"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body and "kaput" not in body


def test_https_sends_strict_transport_security_everywhere(client, settings):
    settings.HTTPS = True
    for path in ("/sign-in/", "/admin/login/", "/api/v1/openapi.json", "/no-such-page/"):
        assert client.get(path)["Strict-Transport-Security"] == "max-age=31536000", path


def test_no_strict_transport_security_without_https(client, settings):
    settings.HTTPS = False
    assert "Strict-Transport-Security" not in client.get("/sign-in/")
