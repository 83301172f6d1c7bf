"""Email insights in the pages: the administrators' switch, the composer's note, "Don't
track", the template remembered, send later and at the best time, the scheduled list
with Cancel, a message's opens and clicks, the record's Emails list, templates' rates
and a contact's best-time card."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crmail.emailtemplates import actions as template_actions
from crmail.insights.models import InsightsSetting, MessageInsight, Open, ScheduledSend
from crmail.mailboxes.models import SentMessage
from crmail.web.tests.test_compose import compose_url, form, sending_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db
PUBLIC = "https://crm.example.com"


@pytest.fixture
def tracking(settings):
    settings.CRMAIL_PUBLIC_URL = PUBLIC
    InsightsSetting.objects.update_or_create(pk=1, defaults={"tracking": True})


@pytest.fixture
def grace(org, smtp_sink):
    sending_mailbox(org.rep, smtp_sink.port)
    return f.contact(org.rep, "grace@client.example", first_name="Grace", last_name="Hopper")


def test_only_administrators_switch_tracking_and_the_page_says_what_is_missing(
    org, client_for, settings
):
    settings.CRMAIL_PUBLIC_URL = ""
    url = reverse("web:insights_settings")
    assert client_for(org.rep).get(url).status_code == 403
    admin = client_for(org.admin)
    assert "Email insights" in admin.get("/").text  # in the Administration menu
    assert admin.post(url, {"tracking": "on"}).status_code == 302
    assert InsightsSetting.objects.get().tracking
    page = admin.get(url).text
    assert "no public address (CRMAIL_PUBLIC_URL)" in page
    admin.post(url, {})
    assert not InsightsSetting.objects.get().tracking


def test_the_composer_says_tracking_is_on_and_dont_track_sends_untracked(
    org, client_for, grace, smtp_sink, tracking
):
    client = client_for(org.rep)
    page = client.get(compose_url(grace)).text
    assert "Email tracking is on" in page and "Don&#x27;t track this message" in page
    assert client.post(compose_url(grace), form(to=grace.primary_email)).status_code == 302
    assert client.post(compose_url(grace), form(no_track="on")).status_code == 302
    first, second = smtp_sink.wait_for(2, 5)
    assert b"/t/o/" in first.data and b"/t/o/" not in second.data
    assert [i.tracked for i in MessageInsight.objects.order_by("pk")] == [True]


def test_with_tracking_off_the_composer_says_nothing_of_it(org, client_for, grace):
    page = client_for(org.rep).get(compose_url(grace)).text
    assert "Email tracking" not in page and "track this message" not in page


def test_a_message_filled_from_a_template_counts_in_its_rates(
    org, client_for, grace, smtp_sink, tracking
):
    template = template_actions.do_create_template(
        org.rep, name="Intro", subject="Hello {{Contact.first_name}}", body="Hi", shared=False
    )
    client = client_for(org.rep)
    filled = client.post(
        compose_url(grace), form(template=str(template.pk), use_template="1", subject="")
    )
    assert f'name="template_id" value="{template.pk}"' in filled.text
    client.post(compose_url(grace), form(subject="Hello Grace", template_id=str(template.pk)))
    smtp_sink.wait_for(1, 5)
    sent = SentMessage.objects.get()
    assert sent.insight.template == template
    Open.objects.create(sent=sent, at=timezone.now(), client="desktop")
    Open.objects.create(sent=sent, at=timezone.now(), client="automated", scanner=True)
    listed = client.get(reverse("web:templates")).text
    assert '<th scope="col" title="Emails written from it that you may see">Sent</th>' in listed
    row = listed.split("Intro", 1)[1].split("</tr>", 1)[0]
    assert '<td data-label="Sent" class="num">1</td>' in row
    assert '<td data-label="Opened" class="num">100%</td>' in row
    assert '<td data-label="Clicked" class="num">0%</td>' in row
    # A template id the writer may not use is refused, nothing sent.
    other = template_actions.do_create_template(org.peer, name="Mine", subject="x", body="y")
    refused = client.post(compose_url(grace), form(template_id=str(other.pk)))
    assert refused.status_code == 200 and "not one you may use" in refused.text


def test_send_later_keeps_the_message_until_cancelled(org, client_for, grace, smtp_sink):
    client = client_for(org.rep)
    missing = client.post(compose_url(grace), form(send_later="1"))
    assert "Choose when to send it" in html.unescape(missing.text)
    when = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    done = client.post(compose_url(grace), form(send_later="1", send_at=when))
    assert done.status_code == 302
    row = ScheduledSend.objects.get()
    assert (row.user, row.record_module, row.record_id) == (org.rep, "contacts", grace.pk)
    assert not smtp_sink.wait_for(0, 0)
    listed = client.get(reverse("web:scheduled")).text
    assert "Your quote" in listed and "Cancel" in listed
    assert (
        client_for(org.peer).post(reverse("web:scheduled_cancel", args=[row.pk])).status_code == 404
    )
    client.post(reverse("web:scheduled_cancel", args=[row.pk]))
    row.refresh_from_db()
    assert row.state == "cancelled"
    assert "Cancel</button>" not in client.get(reverse("web:scheduled")).text


def test_send_at_the_best_time_says_when_none_is_known_and_otherwise_schedules_it(
    org, client_for, grace, smtp_sink, tracking
):
    client = client_for(org.rep)
    page = client.get(compose_url(grace)).text
    assert "Best time for Grace Hopper: crmail knows no best time yet" in page
    refused = client.post(compose_url(grace), form(to=grace.primary_email, send_best="1"))
    assert "crmail knows no best time yet" in html.unescape(refused.text)
    assert not ScheduledSend.objects.exists()
    # Three opens on Wednesdays at 15:00 (the organisation's zone: UTC here).
    client.post(compose_url(grace), form(to=grace.primary_email))
    smtp_sink.wait_for(1, 5)
    sent = SentMessage.objects.get()
    for day in (4, 11, 18):
        Open.objects.create(
            sent=sent, at=datetime(2026, 3, day, 15, 20, tzinfo=UTC), client="desktop"
        )
    client.post(compose_url(grace), form(to=grace.primary_email, send_best="1"))
    row = ScheduledSend.objects.get()
    local = row.send_at.astimezone(UTC)
    assert (local.weekday(), local.hour, local.minute) == (2, 15, 0)
    assert row.best_time_of == "Grace Hopper" and row.send_at > timezone.now()


def test_a_sent_messages_opens_and_clicks_show_to_those_who_may_see_it(
    org, client_for, grace, smtp_sink, tracking
):
    client = client_for(org.rep)
    client.post(compose_url(grace), form(to=grace.primary_email))
    smtp_sink.wait_for(1, 5)
    sent = SentMessage.objects.get()
    Open.objects.create(sent=sent, at=timezone.now(), client="gmail")
    Open.objects.create(
        sent=sent,
        at=timezone.now(),
        client="automated",
        scanner=True,
        scanner_reason="a mail-security scanner (Barracuda)",
    )
    page = client.get(reverse("web:message", args=[sent.message_id])).text
    assert "Opens and clicks" in page and "Opened 1 time" in page
    assert "Opened (probably by a scanner)" in page and "Barracuda" in page
    record = client.get(reverse("web:record_detail", args=["contacts", grace.pk])).text
    assert "Opened once" in record
    # Whoever may not see the message sees none of it.
    stranger = client_for(org.outsider_manager)
    assert stranger.get(reverse("web:message", args=[sent.message_id])).status_code == 404


def test_the_contact_page_draws_the_best_time(org, client_for, grace):
    page = client_for(org.rep).get(reverse("web:record_detail", args=["contacts", grace.pk])).text
    assert "Best time to contact" in page and 'class="heatmap"' in page
    assert page.count('class="heat-0') == 7 * 24 + 1  # every cell, and the legend's
    deal = f.deal(org.rep, "Renewal", contact=grace)
    assert (
        "Best time to contact"
        not in client_for(org.rep).get(reverse("web:record_detail", args=["deals", deal.pk])).text
    )
