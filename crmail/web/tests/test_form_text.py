"""Web forms answer text that cannot be stored (a lone surrogate, NUL) with a form error.

A form posted as multipart in another charset (``charset=utf-7`` here) can carry a lone
surrogate, which is not a character: no database stores it. The page shows the form again with the
field in error, never a 500, and nothing is written.
"""

from __future__ import annotations

import pytest

from crmail.crm.models import Contact
from crmail.people.models import Role, User
from crmail.text import NOT_TEXT

pytestmark = pytest.mark.django_db

SURROGATE = "Ada\ud800Lovelace"  # a letter after: UTF-7 then ends the shift with "-"
NUL = "Ada\x00Lovelace"


BOUNDARY = "crmailboundary"


def post_utf7(client, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    """Post ``data`` as multipart/form-data in UTF-7 (the test client encodes the body in
    the charset given), which Django decodes back to the same text, surrogates included."""
    body = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in data.items()
    )
    return client.post(
        url,
        body + f"--{BOUNDARY}--\r\n",
        content_type=f"multipart/form-data; boundary={BOUNDARY}; charset=utf-7",
    )


FORMS = [
    ("/contacts/new/", "last_name", {"first_name": "Grace"}, Contact),
    ("/settings/users/new/", "name", {"email": "new@crmail.test"}, User),
    ("/settings/roles/new/", "name", {}, Role),
]


@pytest.mark.parametrize(("bad", "message"), [(SURROGATE, NOT_TEXT), (NUL, None)])
@pytest.mark.parametrize(("url", "field", "others", "model"), FORMS)
def test_a_form_shows_unstorable_text_as_an_error_on_its_field(
    org, client_for, url, field, others, model, bad, message
):
    if url.startswith("/settings/roles"):
        others = {**others, "parent": str(Role.objects.get(name="CEO").pk)}
    before = model.objects.count()
    response = post_utf7(client_for(org.admin), url, {**others, field: bad})
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors
    if message:
        assert form.errors[field] == [message]
        assert message in response.content.decode()
    assert model.objects.count() == before


def test_a_surrogate_in_another_field_than_text_is_an_error_too(org, client_for):
    response = post_utf7(
        client_for(org.admin), "/contacts/new/", {"last_name": "Ok", "owner": "1\udcff2"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["owner"] == [NOT_TEXT]
    assert not Contact.objects.exists()


def test_sign_in_with_a_surrogate_is_refused_in_words(db, client):
    response = post_utf7(client, "/sign-in/", {"username": "a\ud800@b.example", "password": "x"})
    assert response.status_code == 200
    assert response.context["form"].errors


@pytest.mark.parametrize("path", ["/contacts/", "/deals/", "/settings/users/", "/"])
@pytest.mark.parametrize(
    ("query", "charset"),
    [("q=%2B2AA-x&page=%2B2AA-x&sort=%2B2AA-x", "utf-7"), ("q=a%00b", "utf-8")],
    ids=["surrogate", "nul"],
)
def test_a_query_string_that_is_not_text_answers_400(org, client_for, path, query, charset):
    response = client_for(org.admin).get(
        f"{path}?{query}", CONTENT_TYPE=f"text/plain; charset={charset}"
    )
    assert response.status_code == 400
    assert "Something in the request was not right" in response.content.decode()


@pytest.mark.parametrize("path", ["/contacts/", "/leads/", "/accounts/", "/settings/users/"])
def test_a_nul_in_a_list_search_answers_400(org, client_for, path):
    # PostgreSQL refuses NUL in a query: the search must not reach it.
    response = client_for(org.admin).get(path, {"q": "a\x00b", "sort": "name"})
    assert response.status_code == 400


def test_every_form_crmail_shows_checks_its_text():
    """A form added later inherits the check or this fails: the pages' forms are all here."""
    import importlib
    import pkgutil

    from django import forms

    import crmail
    from crmail.text_forms import CheckedTextForm

    for info in pkgutil.walk_packages(crmail.__path__, "crmail."):
        if ".tests" not in info.name and ".migrations" not in info.name and "wsgi" not in info.name:
            importlib.import_module(info.name)
    unchecked, todo = [], [forms.BaseForm]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            ours = sub.__module__.startswith("crmail.") and ".tests" not in sub.__module__
            if ours and not issubclass(sub, CheckedTextForm):
                unchecked.append(f"{sub.__module__}.{sub.__qualname__}")
    assert not unchecked
