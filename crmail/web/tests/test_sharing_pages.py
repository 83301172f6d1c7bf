"""The mail sharing pages (SPEC F5): the administrators' overview and edit page, and each
user's own page, which an administrator can lock."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from crmail.people.models import Group, ModuleDefault
from crmail.sharing import actions
from crmail.sharing.models import SharingSetting
from crmail.sharing.queries import summary
from crmail.sharing.tests.build import message
from crmail.sharing.visibility import visible_messages
from tests import factories as f

pytestmark = pytest.mark.django_db

CUSTOMER = "jane@customer.test"


def form_data(**changes):  # type: ignore[no-untyped-def]
    """A complete post of the sharing form: public to everyone, crmail.test excluded."""
    data = {
        "mode": "public",
        "audience": "everyone",
        "share_users": [],
        "share_groups": [],
        "excluded_domains": "crmail.test",
    }
    data.update(changes)
    return data


def test_admin_sees_every_user_setting_with_excluded_domain_counts(org, client_for):
    actions.set_sharing(None, org.peer, mode="private")
    actions.set_sharing(
        None, org.rep, excluded_domains=["crmail.test", "partner.example", "other.example"]
    )
    actions.set_sharing(None, org.manager, share_with=[org.rep])
    actions.set_locked(None, org.manager, True)
    org.outsider_manager.is_active = False
    org.outsider_manager.save()

    response = client_for(org.admin).get(reverse("web:sharing_list"))
    assert response.status_code == 200
    page = response.content.decode()
    assert ">Email sharing</a>" in page  # in the administration nav
    rows = {row["user"].pk: row["summary"] for row in response.context["rows"]}
    assert rows[org.rep.pk].excluded == ["crmail.test", "other.example", "partner.example"]
    assert rows[org.peer.pk].mode == "private"
    # The count, with the domains on hover and beneath.
    assert 'title="crmail.test, other.example, partner.example">3</span>' in page
    assert "Deactivated" in page
    assert "rep@crmail.test" in page  # the manager shares with the rep, in words
    assert "badge-locked" in page
    assert reverse("web:sharing_edit", args=[org.rep.pk]) in page
    # Active users first, the deactivated one last.
    assert [row["user"] for row in response.context["rows"]][-1] == org.outsider_manager


def test_admin_changes_a_user_setting_and_it_takes_effect(org, client_for):
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    jane = f.contact(org.rep, CUSTOMER)
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    assert visible_messages(org.peer, "contacts", jane.pk).filter(pk=msg.pk).exists()

    group = Group.objects.create(name="Support")
    response = client_for(org.admin).post(
        reverse("web:sharing_edit", args=[org.rep.pk]),
        form_data(
            audience="chosen",
            share_users=[org.outsider_manager.pk],
            share_groups=[group.pk],
            excluded_domains="crmail.test,\n partner.example ; other.example",
        ),
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("web:sharing_list")
    row = summary(org.rep)
    assert (row.mode, row.audience) == ("public", "chosen")
    assert row.shared_with == "east@crmail.test, group Support"
    assert row.excluded == ["crmail.test", "other.example", "partner.example"]
    assert SharingSetting.objects.get(user=org.rep).updated_by == org.admin
    # Now only the chosen one (and the rep's managers) see the rep's mail.
    assert not visible_messages(org.peer, "contacts", jane.pk).filter(pk=msg.pk).exists()
    assert visible_messages(org.outsider_manager, "contacts", jane.pk).filter(pk=msg.pk).exists()
    assert visible_messages(org.manager, "contacts", jane.pk).filter(pk=msg.pk).exists()


def test_edit_page_shows_the_current_setting(org, client_for):
    actions.set_sharing(None, org.rep, share_with=[org.peer], excluded_domains=["a.example"])
    response = client_for(org.admin).get(reverse("web:sharing_edit", args=[org.rep.pk]))
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["audience"] == "chosen"
    assert form.initial["share_users"] == [org.peer.pk]
    assert form.initial["excluded_domains"] == "a.example"
    # The owner is not offered as a person to share with; deactivated users neither.
    choices = set(form.fields["share_users"].queryset)
    assert org.rep not in choices and org.peer in choices
    page = response.content.decode()
    assert "crmail.test" in page and "Add their domain" in page  # own domain missing
    assert ">Lock</button>" in page


def test_admin_locks_and_unlocks_a_user_setting(org, client_for):
    admin = client_for(org.admin)
    response = admin.post(reverse("web:sharing_lock", args=[org.rep.pk]), {"locked": "1"})
    assert response["Location"] == reverse("web:sharing_edit", args=[org.rep.pk])
    assert summary(org.rep).locked
    assert ">Unlock</button>" in admin.get(response["Location"]).content.decode()
    # Administrators still change a locked setting.
    assert (
        admin.post(
            reverse("web:sharing_edit", args=[org.rep.pk]), form_data(mode="custom")
        ).status_code
        == 302
    )
    assert summary(org.rep).mode == "custom"
    admin.post(reverse("web:sharing_lock", args=[org.rep.pk]), {"locked": "0"})
    assert not summary(org.rep).locked


def test_non_admins_get_403_on_the_admin_pages(org, client_for):
    client = client_for(org.manager)
    assert client.get(reverse("web:sharing_list")).status_code == 403
    assert client.get(reverse("web:sharing_edit", args=[org.rep.pk])).status_code == 403
    post = client.post(reverse("web:sharing_edit", args=[org.rep.pk]), form_data(mode="private"))
    assert post.status_code == 403
    lock = client.post(reverse("web:sharing_lock", args=[org.rep.pk]), {"locked": "1"})
    assert lock.status_code == 403
    row = summary(org.rep)
    assert row.mode == "public" and not row.locked
    assert ">Email sharing</a>" not in client.get(reverse("web:home")).content.decode()


def test_a_user_changes_their_own_setting(org, client_for):
    client = client_for(org.rep)
    page = client.get(reverse("web:my_sharing"))
    assert page.status_code == 200
    assert "My mail sharing" in page.content.decode()
    assert reverse("web:my_sharing") in client.get(reverse("web:mailboxes")).content.decode()
    response = client.post(
        reverse("web:my_sharing"),
        form_data(audience="chosen", share_users=[org.peer.pk], excluded_domains=""),
    )
    assert response["Location"] == reverse("web:my_sharing")
    row = summary(org.rep)
    assert (row.audience, row.shared_with, row.excluded) == ("chosen", "peer@crmail.test", [])
    # Their own domain is suggested again, and the button adds it without saving.
    again = client.get(reverse("web:my_sharing")).content.decode()
    assert "Add my domain" in again
    added = client.post(
        reverse("web:my_sharing"),
        form_data(excluded_domains="", add_suggested="1", mode="private"),
    )
    assert added.status_code == 200
    assert added.context["form"]["excluded_domains"].value() == "crmail.test"
    assert summary(org.rep).mode == "public"  # not saved


def test_a_locked_user_cannot_change_their_setting(org, client_for):
    actions.set_locked(org.admin, org.rep, True)
    client = client_for(org.rep)
    page = client.get(reverse("web:my_sharing")).content.decode()
    assert "An administrator locked your mail sharing setting" in page
    assert ">Save</button>" not in page
    assert re.search(r'<input type="radio" name="mode"[^>]* disabled', page)
    assert re.search(r'<textarea name="excluded_domains"[^>]* disabled', page)
    response = client.post(
        reverse("web:my_sharing"), form_data(mode="private", excluded_domains="")
    )
    assert response.status_code == 403
    assert "ask them to change it" in response.content.decode()
    row = summary(org.rep)
    assert (row.mode, row.excluded, row.locked) == ("public", ["crmail.test"], True)


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (
            form_data(excluded_domains="not a domain!, exa mple"),
            "excluded_domains",
            "is not a domain",
        ),
        (form_data(excluded_domains="-bad-.com"), "excluded_domains", "is not a domain"),
        (form_data(excluded_domains="a\x00b.com"), "excluded_domains", "Null characters"),
        (form_data(audience="chosen"), "share_users", "Choose at least one user or group"),
        (form_data(mode="secret"), "mode", "Choose Private, Public or Custom"),
        (form_data(mode=""), "mode", "Choose Private, Public or Custom"),
        (form_data(audience="nobody"), "audience", "Choose everyone"),
        (form_data(share_users=["999999"]), "share_users", "not an active user"),
        (form_data(share_users=["abc"]), "share_users", "is not a user"),
        (form_data(share_groups=["999999"]), "share_groups", "is not a group"),
        (form_data(excluded_domains="a.example\n" * 300), "excluded_domains", "at most 200"),
    ],
)
def test_bad_input_gives_messages_beside_the_fields(org, client_for, data, field, words):
    before = summary(org.rep)
    for client, url in (
        (client_for(org.admin), reverse("web:sharing_edit", args=[org.rep.pk])),
        (client_for(org.rep), reverse("web:my_sharing")),
    ):
        response = client.post(url, data)
        assert response.status_code == 200
        errors = response.context["form"].errors
        assert field in errors, errors
        assert words in " ".join(errors[field])
        assert words in response.content.decode().replace("&#x27;", "'")
    assert summary(org.rep) == before


def test_a_deactivated_user_is_not_offered_and_unknown_users_404(org, client_for):
    org.peer.is_active = False
    org.peer.save()
    admin = client_for(org.admin)
    form = admin.get(reverse("web:sharing_edit", args=[org.rep.pk])).context["form"]
    assert org.peer not in set(form.fields["share_users"].queryset)
    assert admin.get(reverse("web:sharing_edit", args=[999999])).status_code == 404
    assert (
        admin.post(reverse("web:sharing_lock", args=[999999]), {"locked": "1"}).status_code == 404
    )
    # A deactivated user's own setting can still be reviewed by an administrator.
    assert admin.get(reverse("web:sharing_edit", args=[org.peer.pk])).status_code == 200


def test_sign_in_is_required_for_the_own_page(client):
    response = client.get(reverse("web:my_sharing"))
    assert response.status_code == 302
    assert reverse("web:login") in response["Location"]
