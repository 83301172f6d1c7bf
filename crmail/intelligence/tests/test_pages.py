"""Email intelligence on crmail's pages: the panel and badges with the message only (a
peer and a manager of another branch see neither), the filters of the Emails list, the
inbox and search (the ready-made "negative mail from open deals this week"), answers
from the panel, and the administrators' switch."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from django.test import Client
from django.urls import reverse

from crmail.api.tests.conftest import ApiClient
from crmail.crm.models import Contact
from crmail.intelligence import pipeline
from crmail.intelligence.models import IntelligenceSetting, Result
from crmail.sharing import actions

from . import world as w

pytestmark = pytest.mark.django_db


def client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def mail(org, analyser, flow):
    world = w.build_world(org)
    with flow():
        complaint = w.receive(world, w.COMPLAINT, deal=world.deal)
        question = w.receive(world, w.QUESTION, subject="Prices", deal=world.deal)
        old_deal = w.receive(world, w.COMPLAINT, subject="Pilot broken", deal=world.won)
    return world, complaint, question, old_deal


def test_the_panel_is_shown_with_the_message_only(org, mail):
    _, complaint, _, _ = mail
    url = reverse("web:message", args=[complaint.pk])
    for user in (org.rep, org.manager):
        page = client(user).get(url).content.decode()
        assert 'id="intelligence"' in page
        assert "sentiment-negative" in page and "Complaint" in page
        assert "+44 20 7946 0958" in page
    for user in (org.peer, org.outsider_manager):
        assert client(user).get(url).status_code == 404


def test_the_emails_list_filters_and_badges_go_through_visibility(org, mail):
    world, complaint, question, old_deal = mail
    url = reverse("web:record_detail", args=["contacts", world.jane.pk])
    rep = client(org.rep)
    page = rep.get(url).content.decode()
    assert page.count('class="badge intel-sentiment') == 3
    filtered = rep.get(url, {"preset": "negative-open-deals-week"}).content.decode()
    assert reverse("web:message", args=[complaint.pk]) in filtered
    assert reverse("web:message", args=[question.pk]) not in filtered  # not negative
    assert reverse("web:message", args=[old_deal.pk]) not in filtered  # its deal is won
    manager = client(org.manager).get(url, {"intent": "complaint", "deal": "open"}).content
    assert reverse("web:message", args=[complaint.pk]).encode() in manager
    for user in (org.peer, org.outsider_manager):
        page = client(user).get(url, {"sentiment": "negative"}).content.decode()
        assert "badge intel-sentiment" not in page
        assert reverse("web:message", args=[complaint.pk]) not in page
    bad = rep.get(url, {"sentiment": "furious"})
    assert bad.status_code == 200 and "Choose a sentiment among" in bad.content.decode()


def test_the_inbox_and_search_filter_by_intelligence(org, mail):
    _, complaint, question, old_deal = mail
    links = [reverse("web:message", args=[m.pk]) for m in (complaint, question, old_deal)]
    inbox = client(org.rep).get(reverse("web:inbox"), {"preset": "complaints-open-deals-week"})
    page = inbox.content.decode()
    assert links[0] in page and links[1] not in page and links[2] not in page
    for user, seen in ((org.rep, True), (org.manager, True), (org.peer, False)):
        got = client(user).get(reverse("web:search"), {"q": "sentiment:negative deal:open"})
        assert (links[0] in got.content.decode()) is seen
        assert links[2] not in got.content.decode()
        preset = client(user).get(reverse("web:search"), {"preset": "negative-open-deals-week"})
        assert (links[0] in preset.content.decode()) is seen
    bad = client(org.rep).get(reverse("web:search"), {"q": "intent:angry"})
    assert "intent: takes" in bad.content.decode()


def test_accepting_a_phone_number_on_the_page_applies_only_what_was_ticked(org, mail):
    world, complaint, _, _ = mail
    url = reverse("web:message_intel_signature", args=[complaint.pk])
    form = {"module": "contacts", "record_id": world.jane.pk, "answer": "accept"}
    assert client(org.peer).post(url, form | {"field": ["phone"]}).status_code == 404
    got = client(org.rep).post(url, form | {"field": ["phone"]}, follow=True)
    assert "Updated Jane Doe: phone." in got.content.decode()
    jane = Contact.objects.get(pk=world.jane.pk)
    assert (jane.phone, jane.title) == ("+44 20 7946 0958", "")
    again = client(org.rep).post(url, form | {"field": ["title"]}, follow=True)
    assert "answered already" in again.content.decode()
    assert Contact.objects.get(pk=world.jane.pk).title == ""


def test_the_switch_is_for_administrators_and_hides_everything(org, mail):
    _, complaint, _, _ = mail
    url = reverse("web:intelligence_settings")
    assert client(org.rep).get(url).status_code in (403, 404)
    admin = client(org.admin)
    assert "Email intelligence" in admin.get(url).content.decode()
    got = admin.post(url, {"tier": "default"}, follow=True)  # the box unticked: off
    assert "Email intelligence is off." in got.content.decode()
    assert IntelligenceSetting.objects.get().enabled is False
    page = client(org.rep).get(reverse("web:message", args=[complaint.pk])).content.decode()
    assert 'id="intelligence"' not in page
    search = client(org.rep).get(reverse("web:search"), {"q": "sentiment:negative"})
    assert reverse("web:message", args=[complaint.pk]) not in search.content.decode()


def test_who_may_open_the_message_but_not_change_the_contact_is_only_shown_the_details(org, mail):
    world, complaint, _, _ = mail
    actions.set_sharing(None, org.rep, mode="public", share_with=[org.manager, org.peer])
    page = client(org.peer).get(reverse("web:message", args=[complaint.pk])).content.decode()
    assert "+44 20 7946 0958" in page
    assert "You may not change this contact" in page and "Accept ticked" not in page
    form = {"module": "contacts", "record_id": world.jane.pk, "fields": ["phone"]}
    got = ApiClient(org.peer).post(f"/messages/{complaint.pk}/intelligence/signature/accept", form)
    assert got.status_code == 403
    assert Contact.objects.get(pk=world.jane.pk).phone == ""


def test_the_settings_page_says_how_many_results_an_earlier_analysis_computed(org, mail):
    """After an upgrade, administrators read on the page that results are outdated and what
    computes them again; none is said once they are current, nor while it is off."""
    url = reverse("web:intelligence_settings")
    admin = client(org.admin)
    assert 'id="intelligence-outdated"' not in admin.get(url).content.decode()
    Result.objects.filter(pk=Result.objects.order_by("pk").values("pk")[:1]).update(
        version="an-older-model"
    )
    page = admin.get(url).content.decode()
    assert "1 message has results from an earlier version" in page
    assert "crmail intelligence rerun" in page
    Result.objects.update(version="an-older-model")
    with patch.object(pipeline, "OUTDATED_LIMIT", 1):  # counting stops past the limit
        assert "More than 1 messages have results" in admin.get(url).content.decode()
    assert pipeline.outdated_count(limit=1) == 2
    admin.post(url, {"tier": "default"})  # off: nothing is computed, nothing to say
    assert 'id="intelligence-outdated"' not in admin.get(url).content.decode()
