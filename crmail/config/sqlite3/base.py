"""Django's SQLite backend, with the writers of a process queued in the process (decision 082).

SQLite lets one writer in at a time; crmail's transactions take the write lock at BEGIN
(IMMEDIATE). A writer that finds it taken waits in SQLite's busy handler, which sleeps
between tries, longer the longer it has waited (up to 100 ms a try). With several threads
of one process writing at once (a worker's job threads beside its IDLE watcher's syncs),
the lock often stood free while every waiter slept, and a single write outside a
transaction (a sync's progress, its end) could wait for seconds behind a stream of jobs.
Here the threads of one process take turns for their transactions and for their writes
outside one, in the order they asked, each handed the turn as the last one ends. Writers
of other processes still meet SQLite's busy handler.

A writer waits for its turn at most the database's timeout (as long as SQLite waits for
its own lock), then fails as SQLite would: "database is locked".
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError


class Turns:
    """A lock handed over in the order it was asked for (first come, first served)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._guard:
            if not self._held:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout):
            return True
        with self._guard:
            if turn.is_set():  # handed over as the wait ended
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().set()  # still held: now by the next in line
            else:
                self._held = False


# One per database file: the writers of this process to that file.
_TURNS: dict[str, Turns] = {}
_TURNS_GUARD = threading.Lock()


def turns_of(name: str) -> Turns:
    with _TURNS_GUARD:
        return _TURNS.setdefault(name, Turns())


def _forget_turns() -> None:
    """In a forked child: none of the parent's threads is there to end its turn."""
    global _TURNS_GUARD
    _TURNS.clear()
    _TURNS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_turns)


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


def _is_write(query: str) -> bool:
    return query.lstrip()[:6].upper() in _WRITES


class Cursor(base.SQLiteCursorWrapper):
    """A write outside a transaction (SQLite makes it a transaction of its own) waits
    for its turn like a transaction does."""

    owner: DatabaseWrapper

    def execute(self, query: str, params: Any = None) -> Any:
        if self.owner.has_turn or not _is_write(query):
            return super().execute(query, params)
        with self.owner.turn():
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        if self.owner.has_turn or not _is_write(query):
            return super().executemany(query, param_list)
        with self.owner.turn():
            return super().executemany(query, param_list)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.has_turn = False

    def create_cursor(self, name: str | None = None) -> Cursor:
        cursor = self.connection.cursor(factory=Cursor)
        cursor.owner = self
        return cursor

    def _take_turn(self) -> None:
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        if not turns_of(str(self.settings_dict["NAME"])).acquire(timeout):
            raise OperationalError("database is locked")
        self.has_turn = True

    def _end_turn(self) -> None:
        if self.has_turn:
            self.has_turn = False
            turns_of(str(self.settings_dict["NAME"])).release()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """This connection's turn to write, for one statement."""
        self._take_turn()
        try:
            yield
        finally:
            self._end_turn()

    def _start_transaction_under_autocommit(self) -> None:
        self._take_turn()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._end_turn()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._end_turn()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._end_turn()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._end_turn()
