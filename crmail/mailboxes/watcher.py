"""The IDLE watcher: new mail in a watched Inbox is synced at once (SPEC F2, issue 3).

One `Watcher` runs in each ``crmail serve`` and ``crmail worker`` process. One thread runs
an asyncio event loop holding an IMAP connection per watched mailbox (`IdleSession`: the
Inbox EXAMINEd, then IDLE, RFC 2177), so a thousand mailboxes cost a thousand sockets and
coroutines, not threads. Nothing on the loop touches the database:

- a *control* thread runs each tick (every ``tick`` seconds): it renews this process's
  leases in one UPDATE, re-reads the active IMAP mailboxes, gives up the leases of those
  gone and takes free ones up to a fair share (`watcher_db.claim`); the loop then starts,
  restarts (changed settings) or stops watches to match;
- an *io* pool reads Inbox cursors and fetches OAuth 2 tokens at each connect;
- a small *sync* pool runs ``tasks.run_sync`` when a watch reports news: an untagged
  EXISTS, EXPUNGE, FETCH or VANISHED while idling, or an Inbox already different from the
  stored cursor when watching starts. News during a running sync makes exactly one more
  sync after it; a sync another process runs (``AlreadySyncing``) is retried shortly,
  since it may have read the Inbox before the news.

A dropped connection is reconnected with exponential backoff; IDLE is renewed every 29
minutes; servers without IDLE are polled with NOOP. A refused login is written on the
mailbox in words and the mailbox is left alone until its login settings change.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import random
import threading
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.db import DatabaseError

from crmail.jobs import leases
from crmail.mailboxes import watcher_db
from crmail.mailboxes.drivers.base import AuthFailed, DriverError, Throttled
from crmail.mailboxes.drivers.imap import IDLE_RENEW, POLL_INTERVAL
from crmail.mailboxes.drivers.imap_idle import IdleSession
from crmail.mailboxes.watcher_db import Target, run_closing

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(seconds=45)  # a dead watcher's mailboxes move within TTL + TICK
TICK = 15.0
SYNC_THREADS = 3
IO_THREADS = 4
CONNECT_AT_ONCE = 32  # logins in progress at once (a restart does not storm the server)
BACKOFF = (1.0, 300.0)  # first and longest wait before reconnecting
THROTTLED_WAIT = 300.0  # the server said "too many connections" or "slow down"
DEBOUNCE = 0.05  # responses arriving together (EXISTS, RECENT, FETCH) make one sync
BUSY_RETRY = 3.0  # another process syncs the mailbox: look again after this
FAILED_RETRY = (10.0, 300.0)  # a sync failed: try again after this, doubling
RECORD_ATTEMPTS = 4  # writing a refused login on its mailbox, when the database is busy


@dataclass
class WatchStats:
    """Counters for tests, the benchmark and logs."""

    connects: int = 0
    disconnects: int = 0
    news: int = 0
    syncs: int = 0
    sync_failures: int = 0


@dataclass(eq=False)
class _Watch:
    """One watched mailbox, owned by the event loop."""

    target: Target
    task: asyncio.Task[None] | None = None
    connected: bool = False
    parked: bool = False  # login refused: wait for new settings
    stopped: bool = False
    pending: bool = False  # news not yet handed to a sync
    syncing: bool = False
    timer: asyncio.TimerHandle | None = None
    retry: float = FAILED_RETRY[0]

    @property
    def pk(self) -> int:
        return self.target.pk


class Watcher:
    """Watches the Inboxes of the mailboxes this process holds leases for (see module doc).

    ``start()`` returns at once; ``stop()`` closes the connections and gives the leases
    up, so that another process takes over at its next tick.
    """

    def __init__(
        self,
        *,
        holder: str | None = None,
        sync_threads: int = SYNC_THREADS,
        tick: float = TICK,
        lease_ttl: timedelta = LEASE_TTL,
        backoff: tuple[float, float] = BACKOFF,
        failed_retry: tuple[float, float] = FAILED_RETRY,
        poll_every: float = POLL_INTERVAL,
        idle_renew: float = IDLE_RENEW,
        balance: bool = True,
    ) -> None:
        self.holder = holder or leases.process_identity()
        self.tick = tick
        self.lease_ttl = lease_ttl
        self.backoff = backoff
        self.failed_retry = failed_retry
        self.poll_every = poll_every
        self.idle_renew = idle_renew
        self.balance = balance
        self.stats = WatchStats()
        self._sync_threads = sync_threads
        self._watches: dict[int, _Watch] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._release = True
        self._started = threading.Event()
        self._last_claim = 0.0

    # -- from other threads ---------------------------------------------------------------

    def start(self) -> None:
        """Run the watcher in a thread of its own."""
        if self._thread is not None:
            raise RuntimeError("the watcher is running already")
        self._thread = threading.Thread(target=self._run, name="crmail-watcher", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def stop(self, timeout: float = 30.0, *, release: bool = True) -> None:
        """Close every connection, wait for running syncs, and give the leases up.

        ``release=False`` keeps the leases until they expire, as a killed process would.
        """
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        self._release = release
        with contextlib.suppress(RuntimeError):  # the loop has ended already
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        self._thread = None

    def watching(self) -> set[int]:
        """Ids of the mailboxes connected and waiting for news now."""
        return {pk for pk, w in list(self._watches.items()) if w.connected}

    def held(self) -> set[int]:
        """Ids of the mailboxes this watcher holds the watch lease of."""
        return set(self._watches)

    # -- the event loop -------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._gate = asyncio.Semaphore(CONNECT_AT_ONCE)
        self._control = concurrent.futures.ThreadPoolExecutor(1, "crmail-watch-control")
        self._io = concurrent.futures.ThreadPoolExecutor(IO_THREADS, "crmail-watch-io")
        self._syncs = concurrent.futures.ThreadPoolExecutor(self._sync_threads, "crmail-watch-sync")
        self._started.set()
        try:
            while not self._stopping.is_set():
                await self._claim()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.tick):
                        await self._stopping.wait()
        finally:
            await self._shutdown()

    async def _in(self, pool: concurrent.futures.Executor, fn: Any, *args: Any) -> Any:
        assert self._loop is not None
        return await self._loop.run_in_executor(pool, fn, *args)

    async def _claim(self) -> None:
        """One tick: renew and take leases, then match the watches to them."""
        try:
            claim = await self._in(
                self._control,
                functools.partial(watcher_db.claim, balance=self.balance),
                self.holder,
                self.lease_ttl,
            )
        except Exception:
            log.exception("the watcher could not renew its leases")
            # Past most of the TTL another process may hold them now: stop watching.
            if time.monotonic() - self._last_claim > self.lease_ttl.total_seconds() * 0.8:
                for w in list(self._watches.values()):
                    self._drop(w)
            return
        self._last_claim = time.monotonic()
        for pk, w in list(self._watches.items()):
            target = claim.targets.get(pk)
            if pk not in claim.mine or target is None:
                self._drop(w)  # deactivated, deleted, or the lease went to another process
            elif target.fingerprint != w.target.fingerprint:
                self._drop(w)  # new settings: log in again with them
            elif w.task is not None and w.task.done() and not w.parked:
                self._drop(w)  # ended by a bug (logged): start afresh
        for pk in claim.mine:
            if pk not in self._watches:
                self._begin(claim.targets[pk])

    def _begin(self, target: Target) -> None:
        w = _Watch(target, retry=self.failed_retry[0])
        self._watches[target.pk] = w
        w.task = asyncio.create_task(self._watch(w), name=f"watch-{target.pk}")

    def _drop(self, w: _Watch) -> None:
        w.stopped = True
        if w.timer is not None:
            w.timer.cancel()
        if w.task is not None:
            w.task.cancel()
        if self._watches.get(w.pk) is w:
            del self._watches[w.pk]

    async def _shutdown(self) -> None:
        watches = list(self._watches.values())
        for w in watches:
            self._drop(w)
        await asyncio.gather(*(w.task for w in watches if w.task), return_exceptions=True)
        # Waiting in threads keeps the loop running for the pools' completion callbacks.
        await asyncio.to_thread(self._io.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self._syncs.shutdown, wait=True, cancel_futures=True)
        if self._release:
            try:
                await self._in(self._control, watcher_db.release, self.holder)
            except Exception:
                log.exception("the watcher could not give its leases up")
        with contextlib.suppress(Exception):
            await self._in(self._control, watcher_db.close_connection)
        self._control.shutdown(wait=True)

    # -- one mailbox ----------------------------------------------------------------------

    async def _watch(self, w: _Watch) -> None:
        """Connect, check the Inbox against the cursor, wait for news; reconnect on failure."""
        delay = self.backoff[0]
        while True:
            session: IdleSession | None = None
            wait = delay
            try:
                async with self._gate:
                    session = await self._connect(w.target)
                    cursor = await self._in(self._io, run_closing, watcher_db.inbox_cursor, w.pk)
                    state = await session.examine()
                w.connected = True
                self.stats.connects += 1
                delay = self.backoff[0]
                if state.newer_than(cursor):
                    self._news(w)
                if session.can_idle:
                    await self._idle(w, session)
                else:
                    await self._poll(w, session)
            except AuthFailed as exc:
                log.warning("mailbox %s: the server refused the login (%s)", w.pk, exc.kind)
                w.parked = True
                await self._record_login_failure(w.pk, exc)
                return
            except Throttled as exc:
                log.info("mailbox %s: the server limits connections (%s)", w.pk, exc)
                wait = max(delay, THROTTLED_WAIT)
            except DriverError as exc:
                log.info("mailbox %s: watching stopped (%s): %s", w.pk, exc.kind, exc)
            except DatabaseError:
                log.warning("mailbox %s: could not read its Inbox cursor", w.pk, exc_info=True)
            except Exception:
                log.exception("mailbox %s: unexpected error while watching", w.pk)
            finally:
                if w.connected:
                    self.stats.disconnects += 1
                w.connected = False
                if session is not None:
                    session.abort()
            await asyncio.sleep(wait * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff[1])

    async def _connect(self, target: Target) -> IdleSession:
        """A logged-in session; an OAuth token the server refuses is renewed once."""
        token = None
        if target.oauth:
            token = await self._in(self._io, run_closing, watcher_db.oauth_token, target.pk)
        for attempt in (1, 2):
            session = IdleSession(replace(target.config, oauth2_token=token))
            try:
                await session.open()
                return session
            except AuthFailed as exc:
                session.abort()
                if not target.oauth or exc.kind != "oauth_revoked" or attempt == 2:
                    raise
            except BaseException:
                session.abort()
                raise
            token = await self._in(self._io, run_closing, _renewed_token, target.pk)
        raise AssertionError("unreachable")

    async def _record_login_failure(self, pk: int, exc: AuthFailed) -> None:
        """Put the refusal on the mailbox, in words, for its owner; a busy database is
        asked again, since the mailbox stays parked until its settings change."""
        for attempt in range(RECORD_ATTEMPTS):
            try:
                await self._in(self._control, watcher_db.record_login_failure, pk, exc)
                return
            except DatabaseError:
                if attempt + 1 == RECORD_ATTEMPTS:
                    log.exception("mailbox %s: could not record the refused login", pk)
                else:
                    await asyncio.sleep(0.5 * (attempt + 1))
            except Exception:
                log.exception("mailbox %s: could not record the refused login", pk)
                return

    async def _idle(self, w: _Watch, session: IdleSession) -> None:
        while True:
            await session.idle()
            loop = asyncio.get_running_loop()
            renew_at = loop.time() + self.idle_renew
            while (left := renew_at - loop.time()) > 0:
                if await session.wait(left):
                    self._news(w)
            if await session.done():  # RFC 2177 §3: re-issue IDLE within 29 minutes
                self._news(w)

    async def _poll(self, w: _Watch, session: IdleSession) -> None:
        while True:
            await asyncio.sleep(self.poll_every)
            if await session.noop():
                self._news(w)

    # -- syncs ----------------------------------------------------------------------------

    def _news(self, w: _Watch) -> None:
        """Something changed: sync soon, or once more after the sync that runs now."""
        self.stats.news += 1
        self._schedule(w, DEBOUNCE)

    def _schedule(self, w: _Watch, delay: float) -> None:
        if w.stopped:
            return
        w.pending = True
        if not w.syncing and w.timer is None:
            assert self._loop is not None
            w.timer = self._loop.call_later(delay, self._start_sync, w)

    def _start_sync(self, w: _Watch) -> None:
        w.timer = None
        if w.stopped or w.syncing or not w.pending:
            return
        w.pending, w.syncing = False, True
        assert self._loop is not None
        future = self._loop.run_in_executor(self._syncs, run_closing, _sync, w.pk)
        future.add_done_callback(lambda f: self._sync_done(w, f))

    def _sync_done(self, w: _Watch, future: asyncio.Future[str]) -> None:
        w.syncing = False
        if future.cancelled():
            return
        try:
            outcome = future.result()
        except Exception:
            log.exception("mailbox %s: sync after news failed", w.pk)
            outcome = "failed"
        self.stats.syncs += outcome == "done"
        delay = DEBOUNCE
        if outcome == "done":
            w.retry = self.failed_retry[0]
        elif outcome == "busy":
            w.pending, delay = True, BUSY_RETRY
        elif outcome == "failed":
            self.stats.sync_failures += 1
            w.pending, delay = True, w.retry
            w.retry = min(w.retry * 2, self.failed_retry[1])
        if w.pending:
            self._schedule(w, delay)


def _sync(mailbox_id: int) -> str:
    """Run the incremental sync of one mailbox (in a sync thread): done, busy, gone, failed."""
    from crmail.mailboxes.models import Mailbox
    from crmail.mailboxes.tasks import AlreadySyncing, run_sync

    try:
        mailbox = Mailbox.objects.select_related("owner").filter(pk=mailbox_id).first()
        if mailbox is None or not mailbox.is_active or not mailbox.owner.is_active:
            return "gone"
        run_sync(mailbox)
    except AlreadySyncing:
        return "busy"
    except DriverError as exc:
        log.info("mailbox %s: sync after news failed (%s)", mailbox_id, exc.kind)
        return "failed"
    except Exception:
        log.exception("mailbox %s: sync after news failed", mailbox_id)
        return "failed"
    return "done"


def _renewed_token(mailbox_id: int) -> str:
    return watcher_db.oauth_token(mailbox_id, renew=True)
