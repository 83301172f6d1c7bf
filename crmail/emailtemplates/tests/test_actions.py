"""Who reads and who changes a template, and what a saved template must be."""

from __future__ import annotations

import pytest

from crmail.emailtemplates import actions
from crmail.emailtemplates.actions import Invalid, NotAllowed

pytestmark = pytest.mark.django_db


def test_personal_templates_are_their_owners_and_shared_ones_everyones(org):
    personal = actions.do_create_template(org.rep, name="Mine", subject="Hi")
    shared = actions.do_create_template(org.rep, name="Ours", subject="Hi", shared=True)
    assert set(actions.readable(org.rep)) == {personal, shared}
    for other in (org.peer, org.manager, org.admin):
        assert list(actions.readable(other)) == [shared]


def test_only_the_owner_or_an_administrator_changes_a_template(org):
    shared = actions.do_create_template(org.rep, name="Ours", body="Hello", shared=True)
    with pytest.raises(NotAllowed):
        actions.do_update_template(org.peer, shared, {"body": "Changed"})
    with pytest.raises(NotAllowed):
        actions.do_delete_template(org.manager, shared)
    actions.do_update_template(org.rep, shared, {"body": "By owner"})
    actions.do_update_template(org.admin, shared, {"name": "By admin"})
    shared.refresh_from_db()
    assert (shared.name, shared.body) == ("By admin", "By owner")
    actions.do_delete_template(org.admin, shared)
    assert not actions.readable(org.rep).exists()


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"name": " "}, "name", "name"),
        ({"subject": "Hi\r\nBcc: x@y.example"}, "subject", "line break"),
        ({"subject": "Hi\nthere"}, "subject", "line break"),
        ({"subject": "Hi {{Contact.owner.password}}"}, "subject", "{{Contact.owner.password}}"),
        ({"body": "Dear {{Contact.nickname}}"}, "body", "{{Contact.nickname}}"),
    ],
)
def test_an_invalid_template_is_not_saved_and_the_field_is_named(org, values, field, words):
    with pytest.raises(Invalid) as caught:
        actions.do_create_template(org.rep, **{"name": "T", **values})
    [error] = caught.value.errors
    assert error["field"] == field and words in error["message"]
    assert not actions.readable(org.rep).exists()
    saved = actions.do_create_template(org.rep, name="Fine", body="Hi {{Contact.first_name}}")
    with pytest.raises(Invalid):
        actions.do_update_template(org.rep, saved, values)
    saved.refresh_from_db()
    assert saved.body == "Hi {{Contact.first_name}}"


def test_a_body_from_a_browser_is_kept_with_plain_line_ends(org):
    saved = actions.do_create_template(org.rep, name="T", body="Hi,\r\n\r\nBye\rNow")
    assert saved.body == "Hi,\n\nBye\nNow"
    actions.do_update_template(org.rep, saved, {"body": "A\r\nB"})
    saved.refresh_from_db()
    assert saved.body == "A\nB"
