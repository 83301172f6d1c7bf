"""The dropbox's SMTP receiver (aiosmtpd), started by ``crmail serve`` when
CRMAIL_DROPBOX_PORT is set, or alone by ``crmail dropbox serve`` (decision 052).

One asyncio loop in a thread of its own speaks SMTP; every decision and every write runs
in a small thread pool (``dropbox.receive``: Django's database calls are blocking), so a
slow store holds one client, never the loop. What a client is told:

- at MAIL FROM: 421 4.7.0 (closing) past ``CRMAIL_DROPBOX_CONNECTION_LIMIT`` messages on
  one connection; 451 4.7.1 past ``CRMAIL_DROPBOX_SENDER_RATE`` messages a minute from one
  sender (counted in this process);
- at RCPT TO: 550 5.1.1 for an address that is no current dropbox address (unknown,
  retired, another domain), 550 5.7.1 for a sender who is not the owner; past
  ``MAX_REFUSED`` refused recipients the connection is closed (421 4.7.0);
- at DATA: 552 5.3.4 past ``CRMAIL_DROPBOX_MAX_SIZE`` (advertised as EHLO SIZE); 550 5.7.1
  for a From header that is not the owner's; 250 2.0.0 once the message is stored; 451
  4.3.0 when it could not be (the client tries again later).

STARTTLS is offered when CRMAIL_DROPBOX_TLS_CERT and CRMAIL_DROPBOX_TLS_KEY are set.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.db import close_old_connections, connections

from crmail.dropbox import receive
from crmail.dropbox.models import DropboxAddress, Stage

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_REFUSED = 5  # refused recipients a connection may try before it is closed
WINDOW = 60.0  # seconds over which a sender's messages are counted
THREADS = 4


@dataclass(frozen=True)
class Limits:
    max_size: int
    sender_rate: int  # messages a minute from one envelope sender
    per_connection: int  # messages on one connection

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_size=settings.CRMAIL_DROPBOX_MAX_SIZE,
            sender_rate=settings.CRMAIL_DROPBOX_SENDER_RATE,
            per_connection=settings.CRMAIL_DROPBOX_CONNECTION_LIMIT,
        )


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MB" if size >= 1024 * 1024 else f"{size} bytes"


def _fresh_connection(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call`` in a pool thread, with a database connection that still works."""
    close_old_connections()
    return call(*args, **kwargs)


class Handler:
    """aiosmtpd's hooks, each asking ``dropbox.receive`` in the thread pool."""

    def __init__(self, limits: Limits, executor: ThreadPoolExecutor) -> None:
        self.limits = limits
        self.executor = executor
        self.sent_by: dict[str, deque[float]] = defaultdict(deque)  # the loop's thread only

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        work = functools.partial(_fresh_connection, call, *args, **kwargs)
        return await loop.run_in_executor(self.executor, work)

    def _recent(self, sender: str) -> int:
        times = self.sent_by[sender]
        while times and times[0] < time.monotonic() - WINDOW:
            times.popleft()
        if not times:
            del self.sent_by[sender]
        return len(times)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        peer = _peer(session)
        if getattr(session, "dropbox_messages", 0) >= self.limits.per_connection:
            return await self._run(
                receive.refuse,
                Stage.MAIL,
                f"421 4.7.0 At most {self.limits.per_connection} messages on one connection: "
                "closing; connect again to send more",
                peer=peer,
                envelope_from=address,
            )
        if self._recent(address.lower()) >= self.limits.sender_rate:
            return await self._run(
                receive.refuse,
                Stage.MAIL,
                f"451 4.7.1 This sender sent {self.limits.sender_rate} messages to the dropbox "
                "in the last minute: try again in a minute",
                peer=peer,
                envelope_from=address,
            )
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refused = getattr(session, "dropbox_refused", 0)
        if refused >= MAX_REFUSED:
            return "421 4.7.0 Too many refused recipients on one connection: closing"
        verdict = await self._run(
            receive.check_recipient, address, envelope.mail_from or "", _peer(session)
        )
        if not verdict.ok:
            session.dropbox_refused = refused + 1  # type: ignore[attr-defined]
            return verdict.reply
        assert verdict.address is not None
        chosen: list[DropboxAddress] = _chosen(envelope)
        if all(a.pk != verdict.address.pk for a in chosen):
            chosen.append(verdict.address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        sender = envelope.mail_from or ""
        peer = _peer(session)
        chosen = _chosen(envelope)
        verdict = await self._run(receive.check_message, raw, sender, chosen, peer)
        if not verdict.ok:
            return verdict.reply
        await self._run(receive.accept, raw, sender, chosen, peer)
        session.dropbox_messages = getattr(session, "dropbox_messages", 0) + 1  # type: ignore[attr-defined]
        self.sent_by[sender.lower()].append(time.monotonic())
        return "250 2.0.0 Stored in the dropbox"

    async def handle_exception(self, error: Exception) -> str:
        log.error("dropbox: a message could not be handled", exc_info=error)
        return "451 4.3.0 The dropbox could not take the message now: try again later"


def _peer(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


def _chosen(envelope: Envelope) -> list[DropboxAddress]:
    """The dropbox addresses accepted at RCPT TO for this message (kept on the envelope)."""
    found: list[DropboxAddress] | None = getattr(envelope, "dropbox_addresses", None)
    if found is None:
        found = []
        envelope.dropbox_addresses = found  # type: ignore[attr-defined]
    return found


class DropboxSMTP(SMTP):
    """aiosmtpd's SMTP with crmail's words for a message too large, and a connection
    closed after every 421."""

    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else str(status)
        if text.startswith("552 Error"):
            limit = megabytes(self.data_size_limit or 0)
            text = f"552 5.3.4 The message is larger than the dropbox takes ({limit} at most)"
        await super().push(text)
        if text.startswith("421") and self.transport is not None:
            self.transport.close()


class _Controller(Controller):
    def factory(self) -> SMTP:
        return DropboxSMTP(self.handler, **self.SMTP_kwargs)


def tls_context() -> ssl.SSLContext | None:
    """The STARTTLS context from CRMAIL_DROPBOX_TLS_CERT/_KEY; None when not set."""
    cert, key = settings.CRMAIL_DROPBOX_TLS_CERT, settings.CRMAIL_DROPBOX_TLS_KEY
    if not cert or not key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class Receiver:
    """The running receiver: ``start()`` binds and serves in a thread, ``stop()`` ends it."""

    def __init__(self, host: str, port: int, limits: Limits | None = None) -> None:
        self.limits = limits or Limits.from_settings()
        self.executor = ThreadPoolExecutor(THREADS, thread_name_prefix="dropbox")
        self.handler = Handler(self.limits, self.executor)
        context = tls_context()
        self.tls = context is not None
        self.controller = _Controller(
            self.handler,
            hostname=host,
            port=port,
            data_size_limit=self.limits.max_size,
            tls_context=context,
            require_starttls=False,
            enable_SMTPUTF8=True,
            ident="crmail dropbox",
            ready_timeout=30,
        )
        self.host, self.port = host, port

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        """Stop listening, then close the database connection of every pool thread (each
        thread runs one of the closing tasks: they wait for each other)."""
        self.controller.stop()
        everyone = threading.Barrier(THREADS)

        def close() -> None:
            connections.close_all()
            everyone.wait(timeout=10)

        for _ in range(THREADS):
            self.executor.submit(close)
        self.executor.shutdown(wait=True)
