"""The outbox: events exist exactly when what they tell of committed; every consumer gets
each of its events at least once and its effects in crmail's database happen once; a
failing handler is retried, parked, listed and handled again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from crmail.events import dispatch, outbox
from crmail.events.kinds import RecordCreated, SyncFinished
from crmail.events.models import ConsumerState, Event, Failure
from crmail.events.registry import CONSUMERS, Consumer, preparing_consumer
from crmail.jobs.models import Lease

pytestmark = pytest.mark.django_db


class Crash(BaseException):
    """A worker killed in the middle of a batch: nothing the dispatcher catches."""


class Recorder:
    """A test consumer of ``sync.finished``: each handled event leaves a row (its effect,
    in the handler's transaction) and a note of the attempt (outside any transaction)."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.fail_on: set[int] = set()  # mailbox ids whose event raises
        self.crash_after: int | None = None

    def __call__(self, batch) -> None:  # type: ignore[no-untyped-def]
        for item in batch:
            self.seen.append(item.event.pk)
            if item.data.mailbox_id in self.fail_on:
                raise RuntimeError(f"mailbox {item.data.mailbox_id} is broken")
            Lease.objects.create(
                name=f"effect:{item.data.mailbox_id}", holder="t", expires_at=timezone.now()
            )
            if self.crash_after is not None and len(self.seen) >= self.crash_after:
                self.crash_after = None
                raise Crash


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setitem(
        CONSUMERS,
        "test",
        Consumer(name="test", kinds=frozenset({"sync.finished"}), handler=rec, batch=3),
    )
    return rec


def finished(n: int) -> SyncFinished:
    return SyncFinished(mailbox_id=n, owner_id=1, state="completed")


def effects() -> list[int]:
    return sorted(int(n.split(":")[1]) for n in Lease.objects.values_list("name", flat=True))


def test_an_event_of_a_rolled_back_transaction_does_not_exist(recorder):
    dispatch.start_all()
    with transaction.atomic():
        outbox.record(finished(1))
        transaction.set_rollback(True)
    with transaction.atomic():
        outbox.record(finished(2))
    dispatch.dispatch("test")
    assert effects() == [2]
    assert Event.objects.get().data == {
        "mailbox_id": 2,
        "owner_id": 1,
        "state": "completed",
        "fetched": 0,
        "error": "",
    }


def test_positions_follow_commits_without_gaps_and_each_event_is_handled_once(recorder):
    dispatch.start_all()
    for n in range(1, 8):
        outbox.record(finished(n))
    assert dispatch.dispatch("test") == 7
    assert sorted(Event.objects.values_list("position", flat=True)) == list(range(1, 8))
    assert effects() == list(range(1, 8))
    assert dispatch.dispatch("test") == 0
    assert ConsumerState.objects.get(name="test").position == 7


def test_a_crash_in_the_middle_of_a_batch_hands_the_batch_out_again_and_effects_happen_once(
    recorder,
):
    dispatch.start_all()
    for n in range(1, 6):
        outbox.record(finished(n))
    recorder.crash_after = 2
    with pytest.raises(Crash):
        dispatch.dispatch("test")
    assert effects() == []  # rolled back with the position
    dispatch.dispatch("test")
    assert effects() == [1, 2, 3, 4, 5]
    assert len(recorder.seen) == 7  # the first two twice: at least once


def test_a_consumer_after_another_reads_only_what_that_one_has_passed(recorder, monkeypatch):
    seen: list[int] = []

    def follower(batch) -> None:  # type: ignore[no-untyped-def]
        seen.extend(item.data.mailbox_id for item in batch)

    monkeypatch.setitem(
        CONSUMERS,
        "follower",
        Consumer(
            name="follower",
            kinds=frozenset({"sync.finished"}),
            handler=follower,
            batch=10,
            after="test",
        ),
    )
    dispatch.start_all()
    for n in range(1, 6):
        outbox.record(finished(n))
    assert dispatch.dispatch("follower") == 0  # "test" has handled nothing yet
    recorder.crash_after = 4  # "test" gets through its first batch of 3 only
    with pytest.raises(Crash):
        dispatch.dispatch("test")
    assert ConsumerState.objects.get(name="test").position == 3
    assert dispatch.dispatch("follower") == 3
    dispatch.dispatch("test")
    assert dispatch.dispatch("follower") == 2
    assert seen == [1, 2, 3, 4, 5]
    assert not Failure.objects.exists()


def test_a_failing_event_is_retried_with_backoff_then_parked_while_others_go_on(recorder):
    dispatch.start_all()
    recorder.fail_on = {2}
    for n in (1, 2, 3):
        outbox.record(finished(n))
    dispatch.dispatch("test")
    assert effects() == [1, 3]
    failure = Failure.objects.get()
    assert (failure.consumer, failure.attempts, failure.parked) == ("test", 1, False)
    assert "mailbox 2 is broken" in failure.error
    start = timezone.now()
    assert dispatch.retry_due("test", now=start) == 0  # not due yet
    moment = start
    for delay in dispatch.RETRY_DELAYS:
        moment += delay + timedelta(seconds=1)
        assert dispatch.retry_due("test", now=moment) == 0
    failure.refresh_from_db()
    assert failure.parked and failure.next_try_at is None
    assert failure.attempts == len(dispatch.RETRY_DELAYS) + 1
    assert dispatch.retry_due("test", now=moment + timedelta(days=1)) == 0  # parked: left

    recorder.fail_on = set()
    result = dispatch.retry()
    assert (result.handled, result.failed) == (1, 0)
    assert effects() == [1, 2, 3]
    assert not Failure.objects.exists()


def test_a_parked_event_that_fails_again_is_parked_again(recorder):
    dispatch.start_all()
    recorder.fail_on = {9}
    outbox.record(finished(9))
    dispatch.dispatch("test")
    Failure.objects.update(parked=True, next_try_at=None, attempts=6)
    result = dispatch.retry()
    assert (result.handled, result.failed) == (0, 1)
    failure = Failure.objects.get()
    assert failure.parked and failure.attempts == 7


def test_a_consumer_new_to_an_installation_starts_at_the_end(recorder, monkeypatch):
    dispatch.start_all()
    outbox.record(finished(1))
    dispatch.dispatch("test")
    late = Recorder()
    monkeypatch.setitem(
        CONSUMERS, "late", Consumer(name="late", kinds=frozenset({"sync.finished"}), handler=late)
    )
    outbox.record(finished(2))
    dispatch.dispatch("late")
    assert [Event.objects.get(pk=pk).data["mailbox_id"] for pk in late.seen] == [2]


def test_a_commit_runs_only_the_consumers_of_the_kinds_it_recorded(
    recorder, monkeypatch, django_capture_on_commit_callbacks
):
    batches: list[list[int]] = []
    monkeypatch.setitem(
        CONSUMERS,
        "records",
        Consumer(
            name="records",
            kinds=frozenset({"record.created"}),
            handler=lambda batch: batches.append([item.data.record_id for item in batch]),
            eager=True,
        ),
    )
    dispatch.start_all()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox.record(finished(1))
    assert effects() == [1]  # the job of the consumer of sync.finished ran
    assert batches == []  # a consumer of other kinds was left alone: nothing new for it
    assert ConsumerState.objects.get(name="records").position == 0
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox.record(RecordCreated(module="contacts", record_id=7))
    assert batches == [[7]]  # run at once (eager), past the event it does not want
    assert ConsumerState.objects.get(name="records").position == 2


def test_a_writer_of_many_commits_hands_them_over_together_and_all_by_its_end(
    monkeypatch, django_capture_on_commit_callbacks
):
    batches: list[list[int]] = []
    monkeypatch.setitem(
        CONSUMERS,
        "records",
        Consumer(
            name="records",
            kinds=frozenset({"record.created"}),
            handler=lambda batch: batches.append([item.data.record_id for item in batch]),
            eager=True,
        ),
    )
    clock = [100.0]
    monkeypatch.setattr(outbox.time, "monotonic", lambda: clock[0])
    dispatch.start_all()

    def commit(n: int) -> None:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            outbox.record(RecordCreated(module="contacts", record_id=n))

    with outbox.gathered():
        commit(1)
        commit(2)
        assert batches == []  # gathered, not handed over commit by commit
        clock[0] += outbox.GATHER_SECONDS
        commit(3)
        assert batches == [[1, 2, 3]]  # a second on: everything so far, in one batch
        commit(4)
        with outbox.gathered():  # an inner block leaves the gathering to the outer one
            commit(5)
        assert batches == [[1, 2, 3]]
    assert batches == [[1, 2, 3], [4, 5]]  # the block's end hands the rest over

    with pytest.raises(RuntimeError), outbox.gathered():
        commit(6)
        raise RuntimeError("the server went away")
    assert batches[-1] == [6]  # what committed before a failure is handed over too
    commit(7)
    assert batches[-1] == [7]  # outside a block, at once


def record_among_others() -> None:
    """Seven events of the test consumer's kind (positions 6, 12, ... 42), each after
    five of a kind it does not want."""
    for n in range(1, 8):
        outbox.record_many(
            [RecordCreated(module="contacts", record_id=n * 10 + i) for i in range(5)]
        )
        outbox.record(finished(n))


def test_a_batch_is_of_the_consumers_own_kinds_however_many_others_lie_between(
    recorder, monkeypatch
):
    dispatch.start_all()
    record_among_others()
    batches: list[int] = []

    def counted(batch):  # type: ignore[no-untyped-def]
        batches.append(len(batch))
        recorder(batch)

    monkeypatch.setitem(CONSUMERS, "test", replace(CONSUMERS["test"], handler=counted))
    assert dispatch.dispatch("test") == 7
    assert batches == [3, 3, 1]
    assert effects() == list(range(1, 8))
    assert ConsumerState.objects.get(name="test").position == dispatch.high_water() == 42


def test_an_idle_consumer_passes_its_events_unread_until_it_has_work_again(recorder, monkeypatch):
    dispatch.start_all()
    record_among_others()
    subscribed = {"now": False}
    batches: list[int] = []

    def counted(batch):  # type: ignore[no-untyped-def]
        batches.append(len(batch))
        recorder(batch)

    asked: list[bool] = []

    def nothing_subscribed() -> bool:
        asked.append(not subscribed["now"])
        return asked[-1]

    idle = replace(CONSUMERS["test"], handler=counted, idle=nothing_subscribed)
    monkeypatch.setitem(CONSUMERS, "test", idle)
    assert dispatch.dispatch("test") == 7
    assert batches == [] and effects() == []
    assert asked == [True]  # all of them in one step, none of them read
    state = ConsumerState.objects.get(name="test")
    assert (state.position, state.handled) == (dispatch.high_water(), 7) == (42, 7)

    subscribed["now"] = True
    outbox.record(finished(8))
    assert dispatch.dispatch("test") == 1
    assert batches == [1] and effects() == [8]


def test_an_idle_consumer_passes_a_long_way_in_bounded_steps(recorder, monkeypatch):
    dispatch.start_all()
    record_among_others()
    monkeypatch.setattr(dispatch, "IDLE_STEP", 10)
    idle = replace(CONSUMERS["test"], handler=recorder, idle=lambda: True)
    monkeypatch.setitem(CONSUMERS, "test", idle)
    dispatch.prepare()
    places: list[int] = []
    while dispatch._run_batch(idle) is not None:
        state = ConsumerState.objects.get(name="test")
        places.append(state.position)
    # One or two of the test's events in each step of ten positions.
    assert places == [10, 20, 30, 40, 42]
    assert (state.handled, effects()) == (7, [])


class Preparing:
    """A test preparing consumer of ``sync.finished``: what it prepared (each batch's
    mailbox ids, and whether a transaction was open) and what it wrote."""

    def __init__(self) -> None:
        self.prepared: list[tuple[list[int], bool]] = []
        self.upcoming: list[list[int]] = []
        self.written: list[list[int]] = []
        self.while_preparing: Callable[[], None] | None = None
        self.fail_on: set[int] = set()

    def __call__(self, batch, upcoming):  # type: ignore[no-untyped-def]
        ids = [item.data.mailbox_id for item in batch]
        self.upcoming.append([item.data.mailbox_id for item in upcoming])
        if self.fail_on & set(ids):
            raise RuntimeError("cannot read what the batch needs")
        self.prepared.append((ids, connection.in_atomic_block))
        if self.while_preparing is not None:
            meanwhile, self.while_preparing = self.while_preparing, None
            meanwhile()

        def write() -> None:
            self.written.append(ids)
            for n in ids:
                Lease.objects.create(name=f"effect:{n}", holder="t", expires_at=timezone.now())

        return write


@pytest.fixture
def preparing(monkeypatch):
    prep = Preparing()
    monkeypatch.delitem(CONSUMERS, "test", raising=False)
    preparing_consumer("test", ("sync.finished",), batch=3)(prep)
    yield prep
    CONSUMERS.pop("test", None)


@pytest.mark.django_db(transaction=True)
def test_a_preparing_consumer_reads_before_its_batchs_transaction_and_writes_in_it(preparing):
    """On SQLite a transaction holds the one write lock from its start: a sync writing
    beside the consumer waits for its writes, not for what it reads and computes."""
    dispatch.start_all()
    written_in: list[bool] = []
    original = Lease.objects.create

    def create(**fields):  # type: ignore[no-untyped-def]
        written_in.append(connection.in_atomic_block)
        return original(**fields)

    Lease.objects.create = create  # type: ignore[method-assign]
    try:
        outbox.record_many([finished(n) for n in range(1, 5)])  # handed over on commit
        dispatch.dispatch("test")
    finally:
        del Lease.objects.create
    assert preparing.prepared == [([1, 2, 3], False), ([4], False)]
    assert written_in == [True] * 4
    assert effects() == [1, 2, 3, 4]
    assert preparing.upcoming == [[], []]  # registered without ``ahead``: shown nothing


@pytest.mark.django_db(transaction=True)
def test_a_preparing_consumer_with_ahead_is_shown_the_events_after_its_batch(monkeypatch):
    """What comes after a batch is shown to the preparer (up to ``ahead`` events) and then
    handled as a batch of its own, once, whatever the preparer started on it."""
    prep = Preparing()
    monkeypatch.delitem(CONSUMERS, "test", raising=False)
    preparing_consumer("test", ("sync.finished",), batch=3, ahead=2)(prep)
    try:
        dispatch.start_all()
        outbox.record_many([finished(n) for n in range(1, 8)])
        dispatch.dispatch("test")
    finally:
        CONSUMERS.pop("test", None)
    assert [ids for ids, _ in prep.prepared] == [[1, 2, 3], [4, 5, 6], [7]]
    assert prep.upcoming == [[4, 5], [7], []]
    assert prep.written == [[1, 2, 3], [4, 5, 6], [7]]
    assert effects() == [1, 2, 3, 4, 5, 6, 7]


def test_a_batch_another_dispatcher_handled_while_it_was_prepared_is_not_written_again(
    preparing,
):
    dispatch.start_all()
    for n in range(1, 6):
        outbox.record(finished(n))
    # Another process takes the same first batch while this one prepares it.
    preparing.while_preparing = lambda: dispatch._hand_batch(CONSUMERS["test"], None)
    assert dispatch.dispatch("test") == 2
    assert preparing.written == [[1, 2, 3], [4, 5]]
    assert effects() == [1, 2, 3, 4, 5]


def test_events_that_come_while_a_batch_is_prepared_wait_for_the_next_batch(preparing):
    dispatch.start_all()
    outbox.record(finished(1))
    outbox.record(finished(2))

    def more() -> None:
        outbox.record(finished(3))
        outbox.record(finished(4))
        dispatch.sequence()

    preparing.while_preparing = more
    assert dispatch.dispatch("test") == 4
    assert preparing.written == [[1, 2], [3, 4]]
    assert effects() == [1, 2, 3, 4]
    assert ConsumerState.objects.get(name="test").position == 4


def test_a_batch_that_cannot_be_prepared_is_handled_one_by_one_and_its_failure_kept(
    preparing,
):
    dispatch.start_all()
    for n in range(1, 4):
        outbox.record(finished(n))
    preparing.fail_on = {2}
    assert dispatch.dispatch("test") == 3
    assert effects() == [1, 3]
    failure = Failure.objects.get()
    assert failure.event.data["mailbox_id"] == 2 and not failure.parked
    assert "cannot read what the batch needs" in failure.error


def test_old_events_every_consumer_passed_are_pruned_and_failed_ones_kept(recorder):
    dispatch.start_all()
    recorder.fail_on = {2}
    for n in (1, 2, 3):
        outbox.record(finished(n))
    dispatch.sequence()
    for name in CONSUMERS:
        dispatch.run(name)
    Event.objects.update(created_at=timezone.now() - timedelta(days=31))
    outbox.record(finished(4))  # new: kept
    assert dispatch.prune() == 2
    kept = sorted(e.data["mailbox_id"] for e in Event.objects.all())
    assert kept == [2, 4]


def test_kinds_load_what_older_and_newer_releases_wrote():
    from crmail.events.kinds import load

    old = load("record.created", {"module": "contacts", "record_id": 3})
    assert old == RecordCreated(module="contacts", record_id=3)
    newer = load("record.created", {"module": "leads", "record_id": 4, "colour": "red"})
    assert newer == RecordCreated(module="leads", record_id=4)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(1, 4), st.booleans(), st.integers(0, 3)),
        st.tuples(st.just("dispatch"), st.one_of(st.none(), st.integers(1, 6))),
    ),
    max_size=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_any_interleaving_of_writes_and_crashes_handles_every_event_and_its_effect_once(
    monkeypatch, ops
):
    rec = Recorder()
    monkeypatch.setitem(
        CONSUMERS,
        "prop",
        Consumer(name="prop", kinds=frozenset({"sync.finished"}), handler=rec, batch=3),
    )
    with transaction.atomic():  # each example starts from nothing
        Event.objects.all().delete()
        ConsumerState.objects.all().delete()
        Lease.objects.all().delete()
        from crmail.events.models import Sequencer

        Sequencer.objects.all().delete()
        dispatch.start_all()
        committed: list[int] = []
        n = 0
        for op in ops:
            if op[0] == "write":
                _, size, commit, others = op
                with transaction.atomic():
                    mine = list(range(n + 1, n + size + 1))
                    n += size
                    # Events of a kind the consumer does not want lie between its own.
                    outbox.record_many(
                        [RecordCreated(module="leads", record_id=i) for i in range(others)]
                    )
                    outbox.record_many([finished(i) for i in mine])
                    if commit:
                        committed += mine
                    else:
                        transaction.set_rollback(True)
            else:
                rec.crash_after = None if op[1] is None else len(rec.seen) + op[1]
                try:
                    with transaction.atomic():
                        dispatch.dispatch("prop")
                except Crash:
                    pass
        rec.crash_after = None
        dispatch.dispatch("prop")
        assert effects() == sorted(committed)
        handled = {
            Event.objects.get(pk=pk).data["mailbox_id"]
            for pk in rec.seen
            if Event.objects.filter(pk=pk).exists()
        }
        assert handled == set(committed)
        transaction.set_rollback(True)


def test_docs_list_every_kind_with_its_fields():
    import dataclasses
    from pathlib import Path

    from crmail.events.kinds import REGISTRY

    doc = (Path(__file__).resolve().parents[3] / "docs" / "events.md").read_text()
    sections = {part.split("`", 1)[0]: part for part in doc.split("\n## `")[1:]}
    assert set(sections) == set(REGISTRY)
    for name, cls in REGISTRY.items():
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in sections[name], (name, f.name)


@pytest.fixture
def giving_way(monkeypatch):
    """A preparing consumer ``test`` that gives way to a consumer ``first``."""
    prep = Preparing()
    monkeypatch.delitem(CONSUMERS, "test", raising=False)
    preparing_consumer("test", ("sync.finished",), batch=3, gives_way_to="first")(prep)
    yield prep
    CONSUMERS.pop("test", None)


def _mark_running(name: str, change: int) -> None:
    with dispatch._running_changed:
        dispatch._running[name] = dispatch._running.get(name, 0) + change
        dispatch._running_changed.notify_all()


def test_a_consumer_that_gives_way_waits_while_the_other_runs_in_this_process(
    giving_way, monkeypatch
):
    """The search index gives way to the bodies: its batches start once the bodies' run
    here is over."""
    import threading

    monkeypatch.setattr(dispatch, "GIVE_WAY", timedelta(seconds=60))
    dispatch.start_all()
    outbox.record_many([finished(n) for n in range(1, 5)])
    dispatch.prepare()
    order: list[str] = []
    _mark_running("first", 1)

    def first_ends() -> None:
        order.append("first ended")
        _mark_running("first", -1)

    threading.Timer(0.3, first_ends).start()
    dispatch.run("test")
    order.append("test ran")
    assert order == ["first ended", "test ran"]
    assert giving_way.written == [[1, 2, 3], [4]]


def test_a_consumer_gives_way_for_a_while_at_most(giving_way, monkeypatch):
    """Whatever holds the other consumer up, the one that gives way is not held for good."""
    monkeypatch.setattr(dispatch, "GIVE_WAY", timedelta(seconds=0.05))
    dispatch.start_all()
    outbox.record_many([finished(n) for n in range(1, 5)])
    dispatch.prepare()
    _mark_running("first", 1)
    try:
        assert dispatch.run("test") == 4
    finally:
        _mark_running("first", -1)
    assert effects() == [1, 2, 3, 4]


def test_a_consumer_does_not_wait_for_one_that_does_not_run(giving_way, monkeypatch):
    """In a process where the other consumer does not run (one job after another, or it
    runs in another process), nothing is waited for."""
    import time

    monkeypatch.setattr(dispatch, "GIVE_WAY", timedelta(seconds=60))
    dispatch.start_all()
    outbox.record_many([finished(n) for n in range(1, 5)])
    dispatch.prepare()
    started = time.monotonic()
    assert dispatch.run("test") == 4
    assert time.monotonic() - started < 30  # it did not wait out GIVE_WAY


def test_a_run_counts_as_running_until_it_ends(recorder):
    """What a consumer that gives way watches: a consumer's run under way in this process."""
    during: list[int] = []
    original = recorder.__call__

    dispatch.start_all()
    outbox.record_many([finished(1)])
    dispatch.prepare()
    CONSUMERS["test"] = replace(
        CONSUMERS["test"],
        handler=lambda batch: (during.append(dispatch._running.get("test", 0)), original(batch)),
    )
    dispatch.run("test")
    assert during == [1]
    assert dispatch._running["test"] == 0
