"""Linking messages to records: by address, past mail, accounts, deals, sent mail, reasons."""

from __future__ import annotations

import pytest

from crmail.crm import actions
from crmail.crm.models import Contact
from crmail.linking import links, queries
from crmail.linking.models import JobState, Link, LinkJob, Reason
from crmail.linking.tests.mail import ingest, raw_mail
from crmail.mail.models import Message
from tests import factories as f

pytestmark = pytest.mark.django_db


def on(module: str, record_id: int) -> set[int]:
    return set(queries.messages_for_record(module, record_id).values_list("pk", flat=True))


def ids(messages: list[Message]) -> set[int]:
    return {m.pk for m in messages}


def new_contact(user, email: str, *, secondary: str = "", **data):
    return actions.create_record(
        user,
        "contacts",
        {"last_name": data.pop("last_name", "Doe"), "email": email, "secondary_emails": secondary}
        | data,
    )


# --- Matching -------------------------------------------------------------------------


def test_from_to_and_cc_link_case_insensitively_but_bcc_reply_to_and_sender_do_not(org):
    jane = f.contact(org.rep, "jane@acme.test")
    lead = f.lead(org.rep, "lee@prospect.test")
    from_jane, to_jane, cc_lead = ingest(
        raw_mail("Jane <JANE@Acme.TEST>", ["me@crmail.test"]),
        raw_mail("me@crmail.test", ["Jane Doe <jane@ACME.test>"]),
        raw_mail("me@crmail.test", ["other@x.test"], cc=["LEE@prospect.test"]),
    )
    bcc, reply_to, sender = ingest(
        raw_mail("me@crmail.test", ["other@x.test"], bcc=["jane@acme.test"]),
        raw_mail("list@x.test", ["me@crmail.test"], reply_to="jane@acme.test"),
        raw_mail("boss@x.test", ["me@crmail.test"], sender_header="lee@prospect.test"),
    )
    assert on("contacts", jane.pk) == ids([from_jane, to_jane])
    assert on("leads", lead.pk) == ids([cc_lead])
    assert not Link.objects.filter(message__in=[bcc, reply_to, sender]).exists()
    link = Link.objects.get(message=from_jane)
    assert (link.module, link.reason, link.address) == ("contacts", "address", "jane@acme.test")
    assert link.date == from_jane.date


def test_secondary_addresses_link_like_the_primary(org):
    jane = f.contact(org.rep, "jane@acme.test", secondary=("Jane.Doe@Home.test",))
    (message,) = ingest(raw_mail("jane.doe@home.test", ["me@crmail.test"]))
    assert on("contacts", jane.pk) == {message.pk}


def test_one_message_links_to_every_matching_lead_and_contact(org):
    jane = f.contact(org.rep, "jane@acme.test")
    also_jane = f.contact(org.peer, "jane@acme.test")  # two records may share an address
    lead = f.lead(org.rep, "lee@prospect.test")
    (message,) = ingest(raw_mail("jane@acme.test", ["lee@prospect.test", "x@y.test"]))
    pairs = set(Link.objects.filter(message=message).values_list("module", "record_id"))
    assert pairs == {("contacts", jane.pk), ("contacts", also_jane.pk), ("leads", lead.pk)}


def test_mail_with_no_matching_record_stays_off_records(org):
    f.contact(org.rep, "jane@acme.test")
    (message,) = ingest(raw_mail("news@shop.test", ["me@crmail.test"]))
    assert not Link.objects.filter(message=message).exists()


def test_linking_twice_and_an_address_in_two_headers_make_one_link(org):
    jane = f.contact(org.rep, "jane@acme.test")
    (message,) = ingest(raw_mail("jane@acme.test", ["jane@acme.test"], cc=["Jane@acme.test"]))
    links.link_messages([message.pk, message.pk])
    assert Link.objects.filter(message=message).count() == 1
    assert queries.messages_for_record("contacts", jane.pk).count() == 1


def test_linking_a_batch_is_one_statement_and_its_events_one_more(org, django_assert_num_queries):
    from crmail.events.models import Event

    jane = f.contact(org.rep, "jane@acme.test")
    messages = ingest(
        *[raw_mail("jane@acme.test", ["me@crmail.test"]) for _ in range(20)], link=False
    )
    with django_assert_num_queries(2):
        assert links.link_messages([m.pk for m in messages]) == 20
    linked = Event.objects.filter(kind="message.linked")
    assert sorted(e.data["message_id"] for e in linked) == sorted(m.pk for m in messages)
    assert {(e.data["module"], e.data["record_id"]) for e in linked} == {("contacts", jane.pk)}
    assert links.link_messages([m.pk for m in messages]) == 0  # nothing new
    assert linked.count() == 20


@pytest.mark.parametrize(
    "header",
    [
        "List-Id: Announcements <announce.acme.test>",
        "List-Unsubscribe: <mailto:leave@acme.test>",
        "Auto-Submitted: auto-replied",
        "Precedence: bulk",
    ],
)
def test_list_and_automated_mail_is_linked_and_marked(org, header):
    jane = f.contact(org.rep, "jane@acme.test")
    (message,) = ingest(raw_mail("jane@acme.test", ["me@crmail.test"], headers=[header]))
    assert on("contacts", jane.pk) == {message.pk}
    assert Message.objects.get(pk=message.pk).automated


# --- Past mail, changing and removing addresses ------------------------------------------


def test_a_contact_created_later_picks_up_its_past_mail(org, django_capture_on_commit_callbacks):
    old = ingest(
        raw_mail("jane@acme.test", ["me@crmail.test"]),
        raw_mail("me@crmail.test", ["JANE@acme.test"]),
        raw_mail("jane.doe@home.test", ["me@crmail.test"]),
    )
    with django_capture_on_commit_callbacks(execute=True):
        jane = new_contact(org.rep, "Jane@Acme.test", secondary="jane.doe@home.test")
    assert on("contacts", jane.pk) == ids(old)
    lead_mail = ingest(raw_mail("lee@prospect.test", ["me@crmail.test"]), link=False)
    with django_capture_on_commit_callbacks(execute=True):
        lead = actions.create_record(
            org.rep, "leads", {"last_name": "Lee", "email": "lee@prospect.test"}
        )
    assert on("leads", lead.pk) == ids(lead_mail)


def test_adding_an_address_links_its_mail_and_removing_one_unlinks_only_what_it_alone_linked(
    org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        jane = new_contact(org.rep, "jane@acme.test")
    work, home, both = ingest(
        raw_mail("jane@acme.test", ["me@crmail.test"]),
        raw_mail("jane@home.test", ["me@crmail.test"]),
        raw_mail("jane@home.test", ["me@crmail.test"], cc=["jane@acme.test"]),
    )
    assert on("contacts", jane.pk) == ids([work, both])
    with django_capture_on_commit_callbacks(execute=True):
        actions.update_record(org.rep, jane, {"secondary_emails": "jane@home.test"})
    assert on("contacts", jane.pk) == ids([work, home, both])

    links.link_to_record(org.rep, home, jane)  # a manual link survives address changes
    with django_capture_on_commit_callbacks(execute=True):
        actions.update_record(org.rep, jane, {"email": "jane@home.test", "secondary_emails": ""})
    assert on("contacts", jane.pk) == ids([home, both])
    with django_capture_on_commit_callbacks(execute=True):
        actions.update_record(org.rep, jane, {"email": "", "secondary_emails": ""})
    assert on("contacts", jane.pk) == ids([home])
    assert Link.objects.get(module="contacts", record_id=jane.pk).reason == Reason.MANUAL


def test_editing_other_fields_records_no_address_change(org, django_capture_on_commit_callbacks):
    from crmail.events.models import Event

    jane = new_contact(org.rep, "jane@acme.test")
    Event.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False):
        actions.update_record(org.rep, jane, {"title": "CTO"})
    (event,) = Event.objects.all()
    assert event.kind == "record.updated"
    assert event.data["fields"] == ["title"]
    assert event.data["addresses_added"] == event.data["addresses_removed"] == []
    with django_capture_on_commit_callbacks(execute=False):
        actions.update_record(org.rep, jane, {"title": "CTO"})
    assert Event.objects.count() == 1  # nothing changed, nothing recorded


def test_much_past_mail_is_linked_by_a_job_in_batches_with_progress(
    org, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(links, "INLINE_LIMIT", 5)
    monkeypatch.setattr(links, "PAST_BATCH", 4)
    old = ingest(
        *[raw_mail("jane@acme.test", ["me@crmail.test"]) for _ in range(9)],
        *[raw_mail("me@crmail.test", ["jane@home.test"]) for _ in range(3)],
        link=False,
    )
    with django_capture_on_commit_callbacks(execute=True):
        jane = new_contact(org.rep, "jane@acme.test", secondary="jane@home.test")
    job = links.link_progress("contacts", jane.pk)
    assert job is not None
    assert (job.state, job.total, job.done, job.percent) == (JobState.DONE, 12, 12, 100)
    assert on("contacts", jane.pk) == ids(old)
    assert links.run_link_job(job.pk).state == JobState.DONE  # a rerun changes nothing
    assert Link.objects.filter(module="contacts", record_id=jane.pk).count() == 12


def test_a_job_drops_an_address_removed_while_it_waits(org, monkeypatch):
    monkeypatch.setattr(links, "INLINE_LIMIT", 0)
    jane = f.contact(org.rep, "jane@acme.test", secondary=("jane@home.test",))
    work, _home = ingest(
        raw_mail("jane@acme.test", ["me@crmail.test"]),
        raw_mail("jane@home.test", ["me@crmail.test"]),
        link=False,
    )
    job = LinkJob.objects.create(
        module="contacts", record_id=jane.pk, addresses=["jane@acme.test", "jane@home.test"]
    )
    jane.emails.filter(address="jane@home.test").delete()
    links.run_link_job(job.pk)
    assert on("contacts", jane.pk) == {work.pk}
    jane.emails.all().delete()
    job = LinkJob.objects.create(module="contacts", record_id=jane.pk, addresses=["jane@acme.test"])
    assert links.run_link_job(job.pk).state == JobState.CANCELLED


def test_relink_repairs_addresses_changed_behind_the_actions_back(org):
    jane = f.contact(org.rep, "jane@acme.test")
    _work, home = ingest(
        raw_mail("jane@acme.test", ["me@crmail.test"]),
        raw_mail("jane@home.test", ["me@crmail.test"]),
    )
    jane.emails.all().delete()
    jane.emails.create(address="jane@home.test", is_primary=True)
    links.relink_record("contacts", jane.pk)
    assert on("contacts", jane.pk) == {home.pk}


def test_deleting_a_contact_deletes_its_links(org, django_capture_on_commit_callbacks):
    jane = f.contact(org.rep, "jane@acme.test")
    lee = f.lead(org.rep, "lee@prospect.test")
    (message,) = ingest(raw_mail("jane@acme.test", ["lee@prospect.test"]))
    jane_id = jane.pk
    with django_capture_on_commit_callbacks(execute=True):
        actions.delete_record(org.rep, jane)
    assert not Link.objects.filter(module="contacts", record_id=jane_id).exists()
    assert on("leads", lee.pk) == {message.pk}


# --- Accounts ---------------------------------------------------------------------------


def test_an_account_shows_its_contacts_mail_and_follows_a_contact_that_moves(
    org, django_capture_on_commit_callbacks
):
    acme, globex = f.account(org.rep, "Acme"), f.account(org.rep, "Globex")
    f.contact(org.rep, "jane@acme.test", account=acme, first_name="Jane", last_name="Doe")
    john = f.contact(org.rep, "john@acme.test", account=acme)
    f.contact(org.rep, "gary@globex.test", account=globex)
    to_both, from_john, from_gary = ingest(
        raw_mail("me@crmail.test", ["jane@acme.test", "john@acme.test"]),
        raw_mail("john@acme.test", ["me@crmail.test"]),
        raw_mail("gary@globex.test", ["me@crmail.test"]),
    )
    (direct,) = ingest(raw_mail("someone@else.test", ["me@crmail.test"]))
    links.link_to_record(org.rep, direct, acme)
    assert on("accounts", acme.pk) == ids([to_both, from_john, direct])
    assert queries.messages_for_record("accounts", acme.pk).count() == 3  # distinct
    assert on("accounts", globex.pk) == {from_gary.pk}

    with django_capture_on_commit_callbacks(execute=True) as events:
        actions.update_record(org.rep, john, {"account": globex.pk})
    assert len(events) == 1  # contact_account_changed; addresses unchanged
    assert on("accounts", acme.pk) == ids([to_both, direct])
    assert on("accounts", globex.pk) == ids([to_both, from_john, from_gary])
    reasons = queries.explanations(list(queries.record_links("accounts", acme.pk)), on="accounts")
    assert sorted(reasons) == sorted(
        ["Linked through the contact Jane Doe", f"Linked by Rex Rep on {direct_day(direct)}"]
    )


def direct_day(message: Message) -> str:
    from django.utils import timezone

    link = Link.objects.get(message=message, reason=Reason.MANUAL)
    return timezone.localtime(link.created_at).strftime("%-d %b %Y")  # "3 Dec 2026"


def test_a_record_list_is_one_query(org, django_assert_num_queries):
    acme = f.account(org.rep, "Acme")
    f.contact(org.rep, "jane@acme.test", account=acme)
    ingest(*[raw_mail("jane@acme.test", ["me@crmail.test"], day=d) for d in range(1, 6)])
    with django_assert_num_queries(1):
        dates = [m.date for m in queries.messages_for_record("accounts", acme.pk)[:3]]
    assert dates == sorted(dates, reverse=True) and len(dates) == 3


# --- Deals and sent mail ----------------------------------------------------------------


def test_synced_mail_reaches_a_deal_only_when_linked_and_the_link_can_move(org):
    f.contact(org.rep, "jane@acme.test")
    first, second = f.deal(org.rep, "First"), f.deal(org.rep, "Second")
    (message,) = ingest(raw_mail("jane@acme.test", ["me@crmail.test"]))
    assert on("deals", first.pk) == set()

    link = links.link_to_deal(org.rep, message, first)
    assert links.link_to_deal(org.rep, message, first) == link  # twice is once
    assert on("deals", first.pk) == {message.pk}
    assert queries.explain(link).startswith("Linked by Rex Rep on ")

    moved = links.move_deal_link(org.manager, message, first, second)
    assert on("deals", first.pk) == set() and on("deals", second.pk) == {message.pk}
    assert (moved.reason, moved.created_by) == (Reason.MANUAL, org.manager)
    with pytest.raises(links.LinkError, match="not linked to the deal First"):
        links.move_deal_link(org.rep, message, first, second)


def test_only_users_who_may_edit_the_deal_link_mail_to_it(org):
    deal = f.deal(org.rep, "Mine")
    (message,) = ingest(raw_mail("jane@acme.test", ["me@crmail.test"]))
    with pytest.raises(actions.NotAllowed, match="No such deal"):
        links.link_to_deal(org.outsider_manager, message, deal)
    other = f.deal(org.outsider_manager, "Theirs")
    links.link_to_deal(org.rep, message, deal)
    with pytest.raises(actions.NotAllowed):
        links.move_deal_link(org.rep, message, deal, other)
    assert on("deals", deal.pk) == {message.pk}


def test_mail_sent_from_a_record_is_linked_to_it_and_to_its_recipients(
    org, django_capture_on_commit_callbacks
):
    jane = f.contact(org.rep, "jane@acme.test")
    deal = f.deal(org.rep, "Big one", contact=jane)
    with django_capture_on_commit_callbacks(execute=True):  # parsed, then linked by address
        (message,) = ingest(raw_mail("me@crmail.test", ["jane@acme.test"]), link=False)
    links.link_sent(message, "deals", deal.pk, org.rep)
    links.link_sent(message, "deals", deal.pk, org.rep)  # twice is once
    assert on("deals", deal.pk) == {message.pk}
    assert on("contacts", jane.pk) == {message.pk}
    sent = Link.objects.get(module="deals", record_id=deal.pk)
    assert (sent.reason, sent.created_by) == (Reason.SENT_FROM_RECORD, org.rep)
    assert queries.explain(sent) == "Sent from this deal in crmail"

    other = f.deal(org.rep, "Other")
    with pytest.raises(links.LinkError, match="sent from the deal Big one"):
        links.move_deal_link(org.rep, message, deal, other)
    with pytest.raises(ValueError):
        links.link_sent(message, "tasks", 1, org.rep)


def test_explanations_say_why_in_words(org):
    jane = f.contact(org.rep, "jane@acme.test")
    (message,) = ingest(raw_mail("jane@acme.test", ["me@crmail.test"]))
    (link,) = queries.record_links("contacts", jane.pk)
    assert queries.explain(link) == "Linked through jane@acme.test, an address of this contact"
    dropbox = Link(
        message=message, module="deals", record_id=1, reason="bcc_dropbox", created_by=org.rep
    )
    assert queries.explain(dropbox) == "Sent to Rex Rep's BCC dropbox"


def test_unknown_modules_are_refused(org):
    with pytest.raises(ValueError):
        queries.record_links("tasks", 1)
    with pytest.raises(ValueError):
        links.link_past_mail("accounts", 1, ["a@b.test"])
    assert Contact.objects.count() == 0
