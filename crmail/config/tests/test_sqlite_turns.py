"""The SQLite backend's writers of one process take turns, in the order they asked
(decision 082): a write outside a transaction waits for the transaction before it, then
goes; the next in line goes next; past the timeout the wait ends as SQLite's would."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db.utils import ConnectionHandler, OperationalError

from crmail.config.sqlite3.base import Turns, turns_of

pytestmark = pytest.mark.database_independent


def handler(path: Path, timeout: float = 30) -> ConnectionHandler:
    return ConnectionHandler(
        {
            "default": {
                "ENGINE": "crmail.config.sqlite3",
                "NAME": str(path),
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": timeout},
            }
        }
    )


@pytest.fixture
def database(tmp_path: Path, django_db_blocker: Any) -> Iterator[Path]:
    path = tmp_path / "turns.sqlite3"
    with django_db_blocker.unblock():
        connections = handler(path)
        connections["default"].cursor().execute("CREATE TABLE t (n INTEGER)")
        connections.close_all()
        yield path


def waiting(turns: Turns, count: int) -> None:
    """Wait until ``count`` writers wait for their turn (each thread is in line)."""
    for _ in range(2000):
        if len(turns._waiting) == count:
            return
        time.sleep(0.005)
    raise AssertionError(f"{len(turns._waiting)} waiting, not {count}")


def in_thread(work: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_writes_outside_a_transaction_go_after_it_in_the_order_they_asked(
    database, django_db_blocker
):
    turns = turns_of(str(database))
    errors: list[BaseException] = []
    with django_db_blocker.unblock():
        first = handler(database)["default"]
        first.ensure_connection()
        first._start_transaction_under_autocommit()  # what transaction.atomic() does
        first.cursor().execute("INSERT INTO t VALUES (1)")

        def write(n: int) -> Callable[[], None]:
            def work() -> None:
                connections = handler(database)
                connections["default"].cursor().execute("INSERT INTO t VALUES (%s)", [n])
                connections.close_all()

            return work

        second = in_thread(write(2), errors)
        waiting(turns, 1)
        third = in_thread(write(3), errors)
        waiting(turns, 2)
        first.cursor().execute("INSERT INTO t VALUES (10)")  # still the first's turn
        first.commit()
        second.join(10)
        third.join(10)
        order = [n for (n,) in first.cursor().execute("SELECT n FROM t ORDER BY rowid")]
        first.close()
    assert errors == []
    assert order == [1, 10, 2, 3]
    assert not turns._held and not turns._waiting


def test_a_writer_waits_at_most_the_timeout_then_fails_as_sqlite_would(database, django_db_blocker):
    turns = turns_of(str(database))
    errors: list[BaseException] = []
    with django_db_blocker.unblock():
        first = handler(database)["default"]
        first.ensure_connection()
        first._start_transaction_under_autocommit()

        def impatient() -> None:
            connections = handler(database, timeout=0.1)
            try:
                connections["default"].cursor().execute("UPDATE t SET n = 5")
            finally:
                connections.close_all()

        in_thread(impatient, errors).join(10)
        assert not turns._waiting  # it left the line
        first.rollback()
        first.close()
    assert [str(e) for e in errors] == ["database is locked"]
    assert isinstance(errors[0], OperationalError)
    assert not turns._held


def test_a_turn_goes_to_the_one_who_asked_first():
    turns = Turns()
    assert turns.acquire(1)
    served: list[str] = []

    def take(name: str) -> None:
        assert turns.acquire(10)
        served.append(name)
        turns.release()

    threads = []
    for name in ("b", "c", "d"):
        threads.append(threading.Thread(target=take, args=(name,)))
        threads[-1].start()
        waiting(turns, len(threads))
    turns.release()
    for thread in threads:
        thread.join(10)
    assert served == ["b", "c", "d"]
    assert not turns._held


def test_a_forked_child_is_not_held_up_by_a_turn_its_parent_held(database, django_db_blocker):
    turns = turns_of(str(database))
    assert turns.acquire(1)  # the parent's turn, as a fork would find it
    try:
        child = os.fork()
        if child == 0:  # the child: its own turns, none held
            os._exit(0 if turns_of(str(database)).acquire(0.1) else 1)
        _, status = os.waitpid(child, 0)
    finally:
        turns.release()
    assert os.waitstatus_to_exitcode(status) == 0
