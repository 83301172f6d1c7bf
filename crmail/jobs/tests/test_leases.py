"""Leases decide which worker enqueues periodic jobs; exactly one holds one at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from huey import MemoryHuey, RedisHuey, SqliteHuey

from crmail.config.env import ConfigError
from crmail.jobs import leases
from crmail.jobs.models import Lease
from crmail.jobs.queue import build_huey

pytestmark = pytest.mark.django_db
TTL = timedelta(minutes=2)


def test_first_comer_holds_the_lease_and_others_are_refused():
    assert leases.acquire("periodic", "host-a:1", TTL)
    assert not leases.acquire("periodic", "host-b:2", TTL)
    assert Lease.objects.get(name="periodic").holder == "host-a:1"


def test_the_holder_renews():
    assert leases.acquire("periodic", "host-a:1", TTL)
    first = Lease.objects.get(name="periodic").expires_at
    assert leases.acquire("periodic", "host-a:1", TTL)
    assert Lease.objects.get(name="periodic").expires_at >= first


def test_an_expired_lease_passes_to_the_next_worker():
    assert leases.acquire("periodic", "host-a:1", timedelta(seconds=-1))
    assert leases.acquire("periodic", "host-b:2", TTL)
    assert Lease.objects.get(name="periodic").holder == "host-b:2"


def test_release_frees_the_lease_only_for_its_holder():
    assert leases.acquire("periodic", "host-a:1", TTL)
    leases.release("periodic", "host-b:2")
    assert not leases.acquire("periodic", "host-b:2", TTL)
    leases.release("periodic", "host-a:1")
    assert leases.acquire("periodic", "host-b:2", TTL)


def test_queue_urls_choose_the_backend(tmp_path):
    assert isinstance(build_huey(f"sqlite:///{tmp_path}/q.sqlite3"), SqliteHuey)
    assert isinstance(build_huey("redis://127.0.0.1:6379/0"), RedisHuey)
    assert isinstance(build_huey("memory://"), MemoryHuey)
    with pytest.raises(ConfigError, match="unsupported scheme 'amqp'"):
        build_huey("amqp://127.0.0.1")


def test_a_lease_of_a_dead_process_on_this_machine_is_taken_over_at_once():
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    dead_holder = f"{socket.gethostname()}:{gone.pid}"
    assert leases.acquire("mailbox-sync:1", dead_holder, TTL)
    assert leases.acquire("mailbox-sync:1", "host-b:2", TTL)
    # A live holder on this machine keeps it.
    assert leases.acquire("mailbox-sync:2", leases.process_identity(), TTL)
    assert not leases.acquire("mailbox-sync:2", "host-b:2", TTL)
    # One process holding several leases alike names each holder host:pid#n.
    assert leases.acquire("mailbox-connection:1:0", f"{dead_holder}#4", TTL)
    assert leases.acquire("mailbox-connection:1:0", "host-b:2#0", TTL)
    assert leases.acquire("mailbox-connection:1:1", f"{leases.process_identity()}#5", TTL)
    assert not leases.acquire("mailbox-connection:1:1", "host-b:2#0", TTL)
