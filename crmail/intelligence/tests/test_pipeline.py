"""The pipeline on real mail, through the outbox: computed after linking as a job of its
own, for received and sent mail but not BCC Dropbox mail, nothing while switched off, a
body that waits done when it comes, idempotent, computed again by ``rerun``."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest
from django.db import transaction

from crmail.config import cli
from crmail.dropbox import addresses
from crmail.dropbox.receive import accept
from crmail.events import dispatch
from crmail.events.models import ConsumerState
from crmail.intelligence import pipeline, switch
from crmail.intelligence.models import Result
from crmail.mail.ingest import parse_stored
from crmail.mail.models import WaitingBody
from crmail.mail.store import store_raw
from crmail.mailboxes.models import SentMessage, Source

from . import world as w

pytestmark = pytest.mark.django_db


def test_received_mail_is_analysed_after_linking(org, analyser, flow):
    world = w.build_world(org)
    with flow():
        message = w.receive(world, w.COMPLAINT)
    row = Result.objects.get(message=message)
    assert (row.sentiment, row.intent) == ("negative", "complaint")
    assert row.signature["phones"] == ["+44 20 7946 0958"]
    assert row.version == pipeline.engine_version("default") != ""
    assert "unacceptable" in row.reply_text and "Head of Purchasing" not in row.reply_text
    # The job ran after linking: the message is on Jane's page.
    assert message.links.filter(module="contacts", record_id=world.jane.pk).exists()


def test_the_job_is_idempotent_and_events_handed_out_again_change_nothing(org, substitute, flow):
    world = w.build_world(org)
    with flow():
        message = w.receive(world, w.QUESTION)
    first = Result.objects.get(message=message)
    calls = substitute.calls
    assert pipeline.analyse_messages([message.pk, message.pk]) == 0  # same version: left
    ConsumerState.objects.filter(name="intelligence").update(position=0)
    with flow():
        dispatch.dispatch("intelligence")
    assert substitute.calls == calls
    assert pipeline.analyse_messages([message.pk], force=True) == 1
    assert Result.objects.count() == 1
    again = Result.objects.get(message=message)
    assert (again.sentiment, again.intent, again.summary) == (
        first.sentiment,
        first.intent,
        first.summary,
    )


def test_switched_off_nothing_is_computed(org, substitute, flow):
    world = w.build_world(org)
    switch.set_state(org.admin, enabled=False)
    with flow():
        w.receive(world, w.COMPLAINT)
    assert not Result.objects.exists()
    assert substitute.calls == 0
    with pytest.raises(switch.NotAllowed):
        switch.set_state(org.rep, enabled=True)


def test_bcc_dropbox_mail_gets_no_intelligence(org, analyser, flow):
    w.build_world(org)
    body = w.COMPLAINT.replace("Hello Rex", "Hello Jane")
    data = w.raw(body, sender="Rex <rep@crmail.test>", to=w.JANE)
    with flow():
        [delivery] = accept(data, "rep@crmail.test", [addresses.current(org.rep)], "127.0.0.1")
    message = delivery.sent.message
    assert delivery.sent.source == Source.DROPBOX
    assert message.links.filter(module="deals").exists()  # filed on a deal of Jane's
    assert not Result.objects.filter(message=message).exists()
    assert pipeline.analyse_messages([message.pk], force=True) == 0
    assert message.pk not in pipeline.stale_ids()


def test_mail_sent_from_crmail_is_analysed(org, analyser, flow):
    world = w.build_world(org)
    with flow():
        with transaction.atomic():
            message = store_raw(w.raw("Thanks, great talking to you!", sender=org.rep.email))
            SentMessage.objects.create(message=message, sender=org.rep, from_address=org.rep.email)
        parse_stored([message])
    assert Result.objects.get(message=message).sentiment == "positive"
    del world


def test_a_body_that_waits_is_done_when_it_comes(org, analyser, flow):
    world = w.build_world(org)
    with flow():
        message = w.receive(world, w.COMPLAINT)
    Result.objects.all().delete()
    WaitingBody.objects.create(message=message, headers=b"From: x\r\n")
    assert pipeline.analyse_messages([message.pk]) == 0
    WaitingBody.objects.filter(message=message).delete()
    with flow():
        parse_stored([message])  # the body came: parsed again, message.parsed again
    assert Result.objects.filter(message=message).exists()


def test_rerun_computes_other_versions_again(org, analyser, flow):
    world = w.build_world(org)
    with flow():
        old = w.receive(world, w.COMPLAINT)
        w.receive(world, w.QUESTION)
    Result.objects.update(version="an-older-model", sentiment="positive")
    assert pipeline.outdated_count() == 2
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["intelligence", "rerun", "--since", "2020-01-01"]) == 0
    assert "Computed 2 messages" in out.getvalue()
    current = pipeline.engine_version("default")
    assert set(Result.objects.values_list("version", flat=True)) == {current}
    assert Result.objects.get(message=old).sentiment == "negative"
    with redirect_stdout(out):
        assert cli.main(["intelligence", "rerun"]) == 0
    assert "Computed 0 messages" in out.getvalue()  # nothing left to do
    assert pipeline.outdated_count() == 0
    assert cli.main(["intelligence", "rerun", "--since", "yesterday"]) == 2


def test_a_long_thread_gets_its_summary(org, analyser, flow):
    world = w.build_world(org)
    messages = []
    points = (
        "The delivery of the 40 chairs is late by two weeks.",
        "We need the chairs before the opening on Friday.",
        "Your driver says the truck broke down near Leeds.",
        "Please send a new delivery date by tomorrow.",
    )
    with flow():
        for point in points:
            previous = messages[-1] if messages else None
            body = f"Hello Rex,\n\n{point} Thank you.\n\nJane\n"
            messages.append(w.receive(world, body, subject="Chairs", answers=previous))
    assert len({m.thread_id for m in messages}) == 1
    results = {r.message_id: r for r in Result.objects.filter(message__in=messages)}
    assert results[messages[-2].pk].summary == ""  # three messages: not long yet
    last = results[messages[-1].pk]
    assert last.summary and any(p.split()[1] in last.summary for p in points)
    assert sorted(last.summary_of) == sorted(m.pk for m in messages)
    # Analysed again together in one batch, each message still gets the thread as of
    # itself, not as of the newest message of the batch.
    assert pipeline.analyse_messages([m.pk for m in messages], force=True) == len(messages)
    again = {r.message_id: r for r in Result.objects.filter(message__in=messages)}
    assert again[messages[-2].pk].summary == "" and again[messages[-2].pk].summary_of == []
    assert again[messages[-1].pk].summary == last.summary
    assert sorted(again[messages[-1].pk].summary_of) == sorted(m.pk for m in messages)


def test_a_message_the_analysis_fails_on_holds_up_no_other(org, analyser, flow, monkeypatch):
    world = w.build_world(org)
    real = pipeline.analysis.analyse

    def fussy(items, tier="default"):  # type: ignore[no-untyped-def]
        if any("poison" in i.text for i in items):
            raise ValueError("cannot read this one")
        return real(items, tier)

    monkeypatch.setattr(pipeline.analysis, "analyse", fussy)
    with flow():
        good = w.receive(world, w.QUESTION)
        bad = w.receive(world, "poison pill")
    assert Result.objects.filter(message=good).exists()
    assert not Result.objects.filter(message=bad).exists()
    assert pipeline.analyse_messages([good.pk, bad.pk], force=True) == 1


def test_rerun_says_so_when_switched_off(org, analyser, capsys):
    switch.set_state(org.admin, enabled=False)
    assert cli.main(["intelligence", "rerun"]) == 1
    assert "Email intelligence is off" in capsys.readouterr().err


def test_storing_and_parsing_mail_analyses_nothing_its_own_job_does(
    org, substitute, django_capture_on_commit_callbacks
):
    """The sync's steps (store, parse, their commit) never wait for the analysis: it is
    the ``intelligence`` consumer's job, run from the queue after linking."""
    from crmail.events.registry import CONSUMERS

    world = w.build_world(org)
    dispatch.start_all()
    message = w.receive(world, w.COMPLAINT)  # committed; no consumer has run
    assert substitute.calls == 0 and not Result.objects.exists()
    assert (CONSUMERS["intelligence"].eager, CONSUMERS["intelligence"].after) == (
        False,
        "linking",
    )
    dispatch.dispatch("linking")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        dispatch.dispatch("intelligence")  # queues the job once its position commits
    assert substitute.calls == 0 and len(queued) == 1
    queued[0]()  # the job (the tests' queue runs it at once)
    assert Result.objects.filter(message=message).exists()
