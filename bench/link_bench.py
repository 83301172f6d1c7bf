"""Linking at scale on SQLite: new mail as sync delivers it, and a new contact's past mail.

    python bench/link_bench.py [--contacts 100000] [--messages 200000] [--batch 500]
                               [--past 10000] [--runs 3]

On a fresh data dir (``crmail init``; SQLite in WAL mode, the default install), the rows
are written directly (no parsing: this measures linking alone):

- ``--contacts`` contacts, one address each, a fifth of them with a second address, in
  ``--contacts // 20`` accounts;
- ``--messages`` messages over five years, each with a From, two To and one Cc; about a
  third of the addresses belong to contacts, the rest to nobody, plus one Bcc of a
  contact (which must not link).

1. Sync throughput: ``link_messages`` on batches of ``--batch`` message ids, over every
   message, as the sync path calls it after each parsed batch. Reported as messages a
   second, each batch timed from the call to its return (committed).
2. Retro-linking: ``--past`` more messages with one address that no record has; then a
   contact with that address is created through ``crm.actions.create_record`` (the
   after-commit event links its past mail, here through the background job run
   in-process: ``CRMAIL_QUEUE_URL=memory://`` is immediate). Timed from the call until
   the job is done; repeated ``--runs`` times with a new address each time.
3. The first page (50) of that contact's Emails list and of a busy account's, through
   ``messages_for_record`` (the query only; the API adds its own costs).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchenv import setup_crmail

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def populate(n_contacts: int, n_messages: int, rng: random.Random) -> list[str]:
    from django.db import transaction

    from crmail.crm.models import Account, Contact, EmailAddress
    from crmail.mail.models import Message, Participant
    from crmail.people.models import User

    owner = User.objects.get(email="admin@example.org")
    started = time.perf_counter()
    with transaction.atomic():
        accounts = Account.objects.bulk_create(
            [Account(owner=owner, name=f"Account {i}") for i in range(max(1, n_contacts // 20))],
            batch_size=5000,
        )
        contacts = Contact.objects.bulk_create(
            [
                Contact(owner=owner, last_name=f"C{i}", account=accounts[i % len(accounts)])
                for i in range(n_contacts)
            ],
            batch_size=5000,
        )
        addresses: list[str] = []
        rows = []
        for i, contact in enumerate(contacts):
            address = f"c{i}@customer{i % 997}.example"
            addresses.append(address)
            rows.append(EmailAddress(address=address, is_primary=True, contact=contact))
            if i % 5 == 0:
                rows.append(EmailAddress(address=f"c{i}@home.example", contact=contact))
        EmailAddress.objects.bulk_create(rows, batch_size=5000)
    start = datetime(2021, 1, 1, tzinfo=UTC)
    chunk = 20_000
    for first in range(0, n_messages, chunk):
        with transaction.atomic():
            messages = Message.objects.bulk_create(
                [
                    Message(
                        sha256=f"{n:064x}",
                        size=100,
                        parse_state="parsed",
                        date=start + timedelta(seconds=rng.randrange(5 * 365 * 86400)),
                        subject=f"Message {n}",
                    )
                    for n in range(first, min(n_messages, first + chunk))
                ],
                batch_size=5000,
            )
            participants = []
            for m in messages:

                def someone() -> str:
                    if rng.random() < 0.33:
                        return rng.choice(addresses)
                    return f"n{rng.randrange(10**7)}@nobody.example"

                for position, role in enumerate(("from", "to", "to", "cc")):
                    participants.append(
                        Participant(message=m, role=role, address=someone(), position=position)
                    )
                participants.append(
                    Participant(message=m, role="bcc", address=rng.choice(addresses), position=4)
                )
            Participant.objects.bulk_create(participants, batch_size=5000)
    print(
        f"populated {n_contacts:,} contacts, {n_messages:,} messages in "
        f"{time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return addresses


def bench_sync(batch: int) -> dict[str, float]:
    from crmail.linking.links import link_messages
    from crmail.linking.models import Link
    from crmail.mail.models import Message

    ids = list(Message.objects.order_by("pk").values_list("pk", flat=True))
    times = []
    started, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(ids), batch):
        t = time.perf_counter()
        link_messages(ids[first : first + batch])
        times.append(time.perf_counter() - t)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "messages": len(ids),
        "seconds": total,
        "cpu": cpu,
        "msg_per_s": len(ids) / total,
        "batch_median_ms": statistics.median(times) * 1000,
        "batch_p95_ms": sorted(times)[int(len(times) * 0.95)] * 1000,
        "links": Link.objects.count(),
    }


def bench_retro(past: int, runs: int, rng: random.Random) -> dict[str, object]:
    from django.db import transaction

    from crmail.crm import actions
    from crmail.linking.models import Link, LinkJob
    from crmail.mail.models import Message, Participant
    from crmail.people.models import User

    admin = User.objects.get(email="admin@example.org")
    times, jobs = [], []
    start = datetime(2021, 1, 1, tzinfo=UTC)
    for run in range(runs):
        address = f"newcomer{run}@prospect.example"
        with transaction.atomic():
            base = Message.objects.count() + 10**9
            messages = Message.objects.bulk_create(
                [
                    Message(
                        sha256=f"{base + n:064x}",
                        size=100,
                        parse_state="parsed",
                        date=start + timedelta(seconds=rng.randrange(5 * 365 * 86400)),
                    )
                    for n in range(past)
                ],
                batch_size=5000,
            )
            Participant.objects.bulk_create(
                [
                    Participant(message=m, role=rng.choice(["from", "to", "cc"]), address=address)
                    for m in messages
                ],
                batch_size=5000,
            )
        t = time.perf_counter()
        contact = actions.create_record(
            admin, "contacts", {"last_name": f"Newcomer {run}", "email": address}
        )
        times.append(time.perf_counter() - t)
        linked = Link.objects.filter(module="contacts", record_id=contact.pk).count()
        if linked != past:
            raise SystemExit(f"retro-linking linked {linked} of {past}")
        job = LinkJob.objects.filter(module="contacts", record_id=contact.pk).first()
        jobs.append(job.state if job else "inline")
    return {
        "past": past,
        "seconds": times,
        "median": statistics.median(times),
        "how": sorted(set(jobs)),
        "contact": contact.pk,
    }


def bench_list(contact_id: int) -> dict[str, float]:
    from django.db.models import Count

    from crmail.crm.models import Contact
    from crmail.linking.queries import messages_for_record

    busy = (
        Contact.objects.filter(account__isnull=False)
        .values("account_id")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .first()
    )

    def first_page(module: str, pk: int) -> float:
        samples = []
        for _ in range(21):
            t = time.perf_counter()
            list(messages_for_record(module, pk)[:50])
            samples.append(time.perf_counter() - t)
        return statistics.median(samples) * 1000

    return {
        "contact_ms": first_page("contacts", contact_id),
        "account_ms": first_page("accounts", busy["account_id"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--past", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    setup_crmail("link-bench")
    rng = random.Random(4)
    populate(args.contacts, args.messages, rng)
    sync = bench_sync(args.batch)
    print(
        f"link_messages: {sync['messages']:,} messages in {sync['seconds']:.2f} s "
        f"({sync['cpu']:.2f} s CPU) = "
        f"{sync['msg_per_s']:,.0f} msg/s (batch of {args.batch}: median "
        f"{sync['batch_median_ms']:.1f} ms, p95 {sync['batch_p95_ms']:.1f} ms); "
        f"{sync['links']:,} links"
    )
    retro = bench_retro(args.past, args.runs, rng)
    print(
        f"new contact with {retro['past']:,} past messages: "
        + ", ".join(f"{s:.2f}" for s in retro["seconds"])
        + f" s (median {retro['median']:.2f} s; {', '.join(retro['how'])})"
    )
    page = bench_list(retro["contact"])
    print(
        f"first page of 50, median of 21: that contact {page['contact_ms']:.1f} ms, "
        f"the busiest account {page['account_ms']:.1f} ms"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    python = platform.python_version()
    print(f"{platform.machine()}, {os.cpu_count()} cores, load {load}, Python {python}")


if __name__ == "__main__":
    main()
