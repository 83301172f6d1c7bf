"""Mail asked for live from mailboxes that keep no copy of it (``Mailbox.keeps_copy`` off).

Two questions go to the provider, each through the mailbox's driver (``QueriesLive``):
a page of the messages from or to some addresses, and one message's raw bytes. Both
answers are kept a few minutes in Django's caches ``live-pages`` and ``live-messages``
(each process's memory, bounded in entries; never crmail's database), so paging a list,
opening a message and showing its frame ask once. Who may ask is decided before, in
``sharing.live``; nothing here checks access.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from django.core.cache import caches

from crmail.mailboxes.connect import can, open_driver
from crmail.mailboxes.drivers.base import (
    LIVE_FOLDER,
    DriverError,
    FetchesRaw,
    LivePage,
    QueriesLive,
    RemoteMessage,
)
from crmail.mailboxes.models import Mailbox

PAGE_SECONDS = 120  # a page of a live list
MESSAGE_SECONDS = 300  # an opened message
MESSAGE_CACHE_BYTES = 2 * 1024 * 1024  # larger messages are asked for each time
PAGES, MESSAGES = "live-pages", "live-messages"  # the caches (settings.CACHES)
PROVIDER_NAMES = {"gmail": "Gmail", "graph": "Outlook"}


def provider_name(mailbox: Mailbox) -> str:
    """The service as its users know it ("Gmail", "Outlook")."""
    return PROVIDER_NAMES.get(mailbox.protocol, mailbox.get_protocol_display())


def is_live(mailbox: Mailbox) -> bool:
    """Whether ``mailbox``'s mail is asked for live: active, keeping no copy, and its
    connector can query."""
    return mailbox.is_active and not mailbox.keeps_copy and can(mailbox, QueriesLive)


def _key(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"crmail:live:{digest}"


@runtime_checkable
class _LiveDriver(FetchesRaw, QueriesLive, Protocol):
    """A driver that answers live questions: a query, then a message read by its id."""


@contextmanager
def _asking(mailbox: Mailbox) -> Iterator[_LiveDriver]:
    """``mailbox``'s driver, for a live question, closed afterwards (``DriverError`` when
    its connector cannot be asked live)."""
    driver = open_driver(mailbox, live=True)
    try:
        if not isinstance(driver, _LiveDriver):
            raise DriverError(
                f"{mailbox.get_protocol_display()} mailboxes cannot be asked live.",
                kind="unsupported",
            )
        yield driver
    finally:
        driver.close()


def query(mailbox: Mailbox, addresses: Sequence[str], *, page: str | None, limit: int) -> LivePage:
    """One page of ``mailbox``'s messages from or to any of ``addresses``, newest first
    (``DriverError`` in words when the provider does not answer)."""
    wanted = sorted({a.lower() for a in addresses})
    key = _key("page", mailbox.pk, mailbox.email, ",".join(wanted), page or "", limit)
    found: LivePage | None = caches[PAGES].get(key)
    if found is not None:
        return found
    with _asking(mailbox) as driver:
        found = driver.query(wanted, page=page, limit=limit)
    caches[PAGES].set(key, found, PAGE_SECONDS)
    return found


def raw_message(mailbox: Mailbox, remote_id: str) -> RemoteMessage | None:
    """One message of ``mailbox`` with its raw bytes and received time; None when the
    provider has it no more."""
    key = _key("raw", mailbox.pk, mailbox.email, remote_id)
    found: RemoteMessage | None = caches[MESSAGES].get(key)
    if found is not None:
        return found
    with _asking(mailbox) as driver:
        fetched = next(iter(driver.fetch(LIVE_FOLDER, [remote_id])), None)
    if fetched is None or fetched.raw is None:
        return None
    if len(fetched.raw) <= MESSAGE_CACHE_BYTES:
        caches[MESSAGES].set(key, fetched, MESSAGE_SECONDS)
    return fetched


def clear_cache() -> None:
    """Forget every answer kept (tests; an administrator's reset)."""
    caches[PAGES].clear()
    caches[MESSAGES].clear()
