"""Custom mail sharing in the web pages (SPEC F5): a user shares their synced mail on a
record from its Emails card, and "My mail sharing" (or an administrator's page of the
user) lists the records shared, each with "Stop sharing"."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from crmail.people.models import ModuleDefault
from crmail.sharing import actions
from crmail.sharing.emails import record_emails
from crmail.sharing.models import SharedRecord
from crmail.sharing.tests.build import message
from tests import factories as f

pytestmark = pytest.mark.django_db

CUSTOMER = "jane@customer.test"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "mail-sharing"}


@pytest.fixture
def scene(org):  # type: ignore[no-untyped-def]
    """Contacts readable by everyone; the rep (custom mode) has synced mail with Jane."""
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    actions.set_sharing(None, org.rep, mode="custom")
    jane = f.contact(org.rep, CUSTOMER, first_name="Jane", last_name="Doe")
    synced = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    return org, jane, synced


def detail_url(record) -> str:  # type: ignore[no-untyped-def]
    return reverse("web:record_detail", args=[type(record).MODULE, record.pk])


def switch_url(record) -> str:  # type: ignore[no-untyped-def]
    return reverse("web:record_mail_sharing", args=[type(record).MODULE, record.pk])


def peer_sees(org, jane, msg) -> bool:  # type: ignore[no-untyped-def]
    return record_emails(org.peer, "contacts", jane.pk).filter(pk=msg.pk).exists()


def test_a_custom_user_shares_a_contact_from_its_page_and_stops(scene, client_for):
    org, jane, synced = scene
    rep = client_for(org.rep)
    page = rep.get(detail_url(jane)).content.decode()
    assert "Your synced mail on this contact:" in page
    assert ">Not shared</strong>" in page and ">Share</button>" in page
    assert f'action="{switch_url(jane)}"' in page
    assert not peer_sees(org, jane, synced)
    # The peer's page shows the peer's own choice only (the peer is public: nothing).
    assert (
        "Your synced mail on this"
        not in client_for(org.peer).get(detail_url(jane)).content.decode()
    )

    response = rep.post(switch_url(jane), {"shared": "1"})
    assert response.status_code == 302 and response["Location"] == detail_url(jane)
    assert peer_sees(org, jane, synced)
    after = rep.get(detail_url(jane)).content.decode()
    assert "is shared with everyone who can see it" in after  # the success message
    assert ">Shared</strong>" in after and ">Stop sharing</button>" in after
    # The colleague's page of the contact now lists the rep's synced mail.
    peer_page = client_for(org.peer).get(detail_url(jane)).content.decode()
    assert f'href="/messages/{synced.pk}/?on=contacts/{jane.pk}"' in peer_page

    rep.post(switch_url(jane), {"shared": "0"})
    assert not peer_sees(org, jane, synced)
    assert "is no longer shared" in rep.get(detail_url(jane)).content.decode()


def test_htmx_swaps_the_switch_in_place(scene, client_for):
    org, jane, synced = scene
    response = client_for(org.rep).post(switch_url(jane), {"shared": "1"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith('<div id="mail-sharing"')
    assert ">Shared</strong>" in html and 'role="status"' in html
    assert "is shared with everyone who can see it" in html
    assert peer_sees(org, jane, synced)


def test_every_module_has_the_switch(org, client_for):
    actions.set_sharing(None, org.rep, mode="custom")
    client = client_for(org.rep)
    for record in (
        f.lead(org.rep),
        f.contact(org.rep),
        f.account(org.rep),
        f.deal(org.rep),
    ):
        assert ">Share</button>" in client.get(detail_url(record)).content.decode()
        assert client.post(switch_url(record), {"shared": "1"}).status_code == 302
        assert SharedRecord.objects.filter(
            setting__user=org.rep, module=type(record).MODULE, record_id=record.pk
        ).exists()


def test_outside_custom_mode_only_a_kept_choice_shows(scene, client_for):
    org, jane, _ = scene
    actions.set_sharing(None, org.rep, mode="public")
    client = client_for(org.rep)
    assert 'id="mail-sharing"' not in client.get(detail_url(jane)).content.decode()
    actions.share_record(None, org.rep, "contacts", jane.pk)
    page = client.get(detail_url(jane)).content.decode()
    assert "kept for when your sharing is Custom" in page
    assert ">Share</button>" not in page and ">Stop sharing</button>" not in page


def test_a_locked_setting_shows_the_switch_read_only_and_refuses_changes(scene, client_for):
    org, jane, synced = scene
    actions.set_locked(None, org.rep, True)
    client = client_for(org.rep)
    page = client.get(detail_url(jane)).content.decode()
    assert ">Not shared</strong>" in page
    assert "Locked by an administrator: you cannot change it." in page
    assert ">Share</button>" not in page
    response = client.post(switch_url(jane), {"shared": "1"})
    assert response.status_code == 403
    assert "locked" in response.content.decode()
    htmx = client.post(switch_url(jane), {"shared": "1"}, **HTMX)
    assert htmx.status_code == 403 and htmx["HX-Refresh"] == "true"
    assert not peer_sees(org, jane, synced)


def test_a_record_the_user_cannot_see_answers_404(scene, client_for):
    org, _, _ = scene
    hidden = f.lead(org.manager)  # leads stay private: the rep cannot see the manager's
    response = client_for(org.rep).post(switch_url(hidden), {"shared": "1"})
    assert response.status_code == 404
    assert client_for(org.rep).get(switch_url(hidden)).status_code == 405
    assert not SharedRecord.objects.exists()


def test_my_mail_sharing_lists_the_shared_records_and_stops_one(scene, client_for):
    org, jane, synced = scene
    acme = f.account(org.rep, "Acme")
    gone = f.lead(org.manager)  # shared while the rep could see it
    actions.share_record(None, org.rep, "contacts", jane.pk)
    actions.share_record(None, org.rep, "accounts", acme.pk)
    SharedRecord.objects.create(setting_id=org.rep.pk, module="leads", record_id=gone.pk)
    client = client_for(org.rep)
    page = client.get(reverse("web:my_sharing")).content.decode()
    assert "Records you share" in page
    names = re.findall(r'<td data-label="Record"><a href="([^"]+)">([^<]+)</a>', page)
    assert names == [(detail_url(jane), "Jane Doe"), (detail_url(acme), "Acme")]
    assert "1 other shared record you cannot see." in page
    assert page.count(">Stop sharing</button>") == 2

    response = client.post(
        reverse("web:my_sharing_stop"), {"module": "contacts", "record_id": str(jane.pk)}
    )
    assert response["Location"] == reverse("web:my_sharing")
    assert not peer_sees(org, jane, synced)
    after = client.get(reverse("web:my_sharing")).content.decode()
    assert "Jane Doe no longer shows your synced mail." in after
    assert "Jane Doe</a>" not in after and "Acme</a>" in after
    # A record the user cannot see cannot be named to stop it.
    hidden = client.post(
        reverse("web:my_sharing_stop"), {"module": "leads", "record_id": str(gone.pk)}
    )
    assert hidden.status_code == 404
    bogus = client.post(reverse("web:my_sharing_stop"), {"module": "x", "record_id": "1"})
    assert bogus.status_code == 404


def test_the_list_shows_only_in_custom_mode(scene, client_for):
    org, jane, _ = scene
    actions.share_record(None, org.rep, "contacts", jane.pk)
    actions.set_sharing(None, org.rep, mode="public")
    page = client_for(org.rep).get(reverse("web:my_sharing")).content.decode()
    assert "Records you share" not in page
    assert "1 record shared (kept for when the mode is custom again)" in page


def test_an_admin_sees_and_stops_a_users_shared_records(scene, client_for):
    org, jane, synced = scene
    actions.share_record(None, org.rep, "contacts", jane.pk)
    admin = client_for(org.admin)
    page = admin.get(reverse("web:sharing_edit", args=[org.rep.pk])).content.decode()
    assert "Records shared" in page and "Jane Doe</a>" in page
    stop = reverse("web:sharing_stop", args=[org.rep.pk])
    assert f'action="{stop}"' in page
    response = admin.post(stop, {"module": "contacts", "record_id": str(jane.pk)})
    assert response["Location"] == reverse("web:sharing_edit", args=[org.rep.pk])
    assert not peer_sees(org, jane, synced)
    # Others may not stop a colleague's sharing.
    actions.share_record(None, org.rep, "contacts", jane.pk)
    refused = client_for(org.peer).post(stop, {"module": "contacts", "record_id": str(jane.pk)})
    assert refused.status_code == 403
    assert peer_sees(org, jane, synced)


def test_a_locked_user_sees_the_list_without_stop_buttons(scene, client_for):
    org, jane, _ = scene
    actions.share_record(None, org.rep, "contacts", jane.pk)
    actions.set_locked(None, org.rep, True)
    client = client_for(org.rep)
    page = client.get(reverse("web:my_sharing")).content.decode()
    assert "Jane Doe</a>" in page and ">Stop sharing</button>" not in page
    response = client.post(
        reverse("web:my_sharing_stop"), {"module": "contacts", "record_id": str(jane.pk)}
    )
    assert response.status_code == 403
    assert SharedRecord.objects.filter(record_id=jane.pk).exists()


def test_enter_in_the_form_saves_rather_than_adding_the_domain(org, client_for):
    """Implicit submission clicks the form's first submit button: it must be Save."""
    actions.set_sharing(None, org.rep, excluded_domains=[])
    page = client_for(org.rep).get(reverse("web:my_sharing")).content.decode()
    form = page[page.index('<form method="post" class="card form sharing-form"') :]
    first = re.search(r"<button[^>]*>[^<]*</button>", form)
    assert first is not None
    assert 'type="submit"' in first.group(0) and "name=" not in first.group(0)
    assert first.group(0).endswith(">Save</button>")
    assert "Add my domain" in form  # still offered, after it
