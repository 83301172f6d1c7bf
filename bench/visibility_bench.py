"""Mail visibility at scale on SQLite: a contact's Emails list as a user may see it.

    python bench/visibility_bench.py [--messages 1000000] [--contacts 100000] [--users 50]
                                     [--samples 300] [--api | --api-only] [--no-split]
                                     [--profile N] [--keep | --reuse DIR]

On a fresh data dir (``crmail init``; SQLite in WAL mode, the default install; the
environment, the machine line and the percentiles are ``bigstore``'s, which
``search_bench.py`` fills with a richer store), rows are written directly with
``executemany`` (no parsing, no linking: this measures reading):

- ``--users`` users: a CEO, managers (one per 10 users) and representatives under them;
  sharing settings: 60 % public to everyone (own domain excluded; the organisation's
  default is set to public), 15 % public to two chosen peers, 15 % custom (a fifth of the
  contacts they own shared), 10 % private. Contacts are public read-only (module default),
  so viewers reach them.
- ``--contacts`` contacts in ``--contacts // 20`` accounts, owners at random;
- ``--messages`` messages over five years: From a contact (or to it), To a user, Cc
  another address; each in one user's mailbox (one in ten also in a second user's), one
  in twenty sent from crmail; each linked to one contact, a tenth of the contacts taking
  half of the mail (busy customers), so the average contact has ``messages/contacts``
  messages and busy ones hundreds.

Measured with ``time.perf_counter`` around the Python call, ``--samples`` random
(viewer, contact) pairs, half of them among busy contacts:

1. first page (50) of ``visible_messages(viewer, "contacts", id)``, model instances built;
2. the same list's ``count()`` (what a paginator asks);
3. ``may_see_message(viewer, message)`` for a random message on that contact;
4. the first page of the busiest account (its contacts' mail) and of
   ``visible_messages(viewer)`` overall (search, reports), a few samples each;
5. with ``--api`` (``--api-only``: this stage alone), the issue's target itself:
   ``GET /api/v1/contacts/{id}/emails`` through ``crmail serve`` with API tokens, timed
   by a client, then the same requests in-process with a CPU split of the endpoint's
   steps (``bench/visibility_api.py`` has the method).

Populating 1,000,000 messages takes minutes (13 on a busy 2-core machine): ``--keep``
leaves the data dir and prints it; ``--reuse DIR`` measures it again without populating
(e.g. before and after a change, or with ``PYTHONPATH=/copy/of/the/tree`` to serve
another version of crmail against the same data; the in-process split still measures
this tree).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bigstore import close_store, machine, open_store, pct, reopen


def populate(args: argparse.Namespace, rng: random.Random) -> dict[str, list[int]]:
    from django.db import connection, transaction

    from crmail.crm.models import Account, Contact
    from crmail.mailboxes.models import Folder, Mailbox
    from crmail.people.models import ModuleDefault, Profile, Role, User
    from crmail.sharing import actions

    started = time.perf_counter()
    ceo = Role.objects.get(name="CEO")
    managers = [
        Role.objects.create(name=f"Bench manager {i}", parent=ceo)
        for i in range(max(1, args.users // 10))
    ]
    reps = [Role.objects.create(name=f"Bench rep {i}", parent=m) for i, m in enumerate(managers)]
    standard = Profile.objects.get(name="Standard")
    # Most of the organisation shares publicly: new users start so, as the admin chooses.
    actions.set_organisation_default(None, "public")
    users = [User.objects.get(email="admin@example.org")]
    actions.set_sharing(None, users[0], mode="public")
    for i in range(1, args.users):
        role = managers[i % len(managers)] if i % 10 == 1 else reps[i % len(reps)]
        users.append(
            User.objects.create_user(
                f"user{i}@sales.example", name=f"U{i}", role=role, profile=standard
            )
        )
    boxes, folders = {}, {}
    for u in users:
        box = Mailbox.objects.create(owner=u, email=u.email)
        boxes[u.pk] = box.pk
        folders[u.pk] = Folder.objects.create(mailbox=box, remote_id="INBOX", name="Inbox").pk
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    ModuleDefault.objects.update_or_create(module="accounts", defaults={"level": "public_read"})
    with transaction.atomic():
        accounts = Account.objects.bulk_create(
            [
                Account(owner=rng.choice(users), name=f"Account {i}")
                for i in range(max(1, args.contacts // 20))
            ],
            batch_size=5000,
        )
        contacts = Contact.objects.bulk_create(
            [
                Contact(owner=rng.choice(users), last_name=f"C{i}", account=rng.choice(accounts))
                for i in range(args.contacts)
            ],
            batch_size=5000,
        )
    contact_ids = [c.pk for c in contacts]
    owner_of = {c.pk: c.owner_id for c in contacts}
    busy = contact_ids[: max(1, len(contact_ids) // 10)]
    for i, u in enumerate(users):
        kind = i % 20
        if kind < 12:
            continue  # the default here: public to everyone, own domain excluded
        if kind < 15:
            peers = rng.sample([p for p in users if p.pk != u.pk], 2)
            actions.set_sharing(None, u, mode="public", share_with=peers)
        elif kind < 18:
            actions.set_sharing(None, u, mode="custom")
            mine = [c for c in contact_ids if owner_of[c] == u.pk]
            from crmail.sharing.models import SharedRecord

            SharedRecord.objects.bulk_create(
                [SharedRecord(setting_id=u.pk, module="contacts", record_id=c) for c in mine[::5]]
            )
        else:
            actions.set_sharing(None, u, mode="private")
    start = datetime(2021, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC).isoformat(" ")
    chunk = 50_000
    cur = connection.cursor()
    for first in range(0, args.messages, chunk):
        msgs, parts, locs, links, sends = [], [], [], [], []
        for n in range(first, min(args.messages, first + chunk)):
            mid = n + 1
            contact = rng.choice(busy) if rng.random() < 0.5 else rng.choice(contact_ids)
            date = (start + timedelta(seconds=rng.randrange(5 * 365 * 86400))).isoformat(" ")
            owner = rng.choice(users)
            customer = f"c{contact}@customer{contact % 997}.example"
            msgs.append((mid, f"{mid:064x}", date, f"Message {mid}", customer))
            sender, to = (customer, owner.email) if rng.random() < 0.6 else (owner.email, customer)
            cc = rng.choice([f"n{n}@other.example", rng.choice(users).email])
            parts += [(mid, "from", sender, 0), (mid, "to", to, 1), (mid, "cc", cc, 2)]
            locs.append((boxes[owner.pk], folders[owner.pk], mid, f"{mid}", now))
            if rng.random() < 0.1:
                other = rng.choice(users)
                if other.pk != owner.pk:
                    locs.append((boxes[other.pk], folders[other.pk], mid, f"{mid}", now))
            if rng.random() < 0.05:
                sends.append((mid, owner.pk, boxes[owner.pk], owner.email, "[]", now, "", ""))
            links.append((mid, "contacts", contact, "address", customer, date, now))
        with transaction.atomic():
            cur.executemany(
                "INSERT INTO mail_message (id, sha256, size, first_seen_at, "
                'parse_state, parse_problems, message_id, in_reply_to, "references", subject, '
                "date, from_address, from_name, snippet, body_text, has_html, has_attachments, "
                "automated, list_id) VALUES (%s, %s, 100, %s, 'parsed', '', '', '', '', "
                "%s, %s, %s, '', '', '', 0, 0, 0, '')",
                [(m[0], m[1], m[2], m[3], m[2], m[4]) for m in msgs],
            )
            cur.executemany(
                "INSERT INTO mail_participant (message_id, role, address, name, valid, position) "
                "VALUES (%s, %s, %s, '', 1, %s)",
                parts,
            )
            cur.executemany(
                "INSERT INTO mailboxes_location (mailbox_id, folder_id, message_id, remote_id, "
                "seen, flagged, answered, deleted, draft, keywords, created_at) "
                "VALUES (%s, %s, %s, %s, 0, 0, 0, 0, 0, '', %s)",
                locs,
            )
            cur.executemany(
                "INSERT INTO linking_link (message_id, module, record_id, reason, address, date, "
                "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                links,
            )
            cur.executemany(
                "INSERT INTO mailboxes_sentmessage (message_id, sender_id, mailbox_id, "
                "from_address, recipients, sent_at, record_module, sent_copy_error) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                sends,
            )
        print(f"  {min(args.messages, first + chunk):,} messages", end="\r", file=sys.stderr)
    cur.execute("ANALYZE")
    print(
        f"populated {len(users)} users, {args.contacts:,} contacts, {args.messages:,} messages "
        f"in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return {"users": [u.pk for u in users], "contacts": contact_ids, "busy": busy}


def bench(ids: dict[str, list[int]], samples: int, rng: random.Random) -> None:
    from django.db.models import Count

    from crmail.crm.models import Contact
    from crmail.linking.models import Link
    from crmail.people.models import User
    from crmail.sharing.visibility import may_see_message, visible_messages

    page, count, one = [], [], []
    sizes = []
    for s in range(samples):
        viewer = User.objects.select_related("role", "profile").get(pk=rng.choice(ids["users"]))
        contact = rng.choice(ids["busy"] if s % 2 else ids["contacts"])
        t = time.perf_counter()
        rows = list(visible_messages(viewer, "contacts", contact)[:50])
        page.append(time.perf_counter() - t)
        t = time.perf_counter()
        sizes.append(visible_messages(viewer, "contacts", contact).count())
        count.append(time.perf_counter() - t)
        msg_id = (
            Link.objects.filter(module="contacts", record_id=contact)
            .values_list("message_id", flat=True)
            .first()
        )
        if msg_id:
            t = time.perf_counter()
            may_see_message(viewer, msg_id)
            one.append(time.perf_counter() - t)
        del rows
    print(
        f"contact Emails list, first page of 50 ({samples} samples, list sizes median "
        f"{statistics.median(sizes):.0f}, max {max(sizes)}): p50 {pct(page, 0.5):.1f} ms, "
        f"p95 {pct(page, 0.95):.1f} ms, max {max(page) * 1000:.1f} ms"
    )
    print(f"  count(): p50 {pct(count, 0.5):.1f} ms, p95 {pct(count, 0.95):.1f} ms")
    print(f"  may_see_message: p50 {pct(one, 0.5):.1f} ms, p95 {pct(one, 0.95):.1f} ms")

    account = (Contact.objects.values("account_id").annotate(n=Count("pk")).order_by("-n").first())[
        "account_id"
    ]
    acc, overall = [], []
    for _ in range(11):
        viewer = User.objects.select_related("role", "profile").get(pk=rng.choice(ids["users"]))
        t = time.perf_counter()
        list(visible_messages(viewer, "accounts", account)[:50])
        acc.append(time.perf_counter() - t)
        t = time.perf_counter()
        list(visible_messages(viewer)[:50])
        overall.append(time.perf_counter() - t)
    print(
        f"busiest account, first page: median {statistics.median(acc) * 1000:.1f} ms; "
        f"overall (search), first page: median {statistics.median(overall) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument(
        "--api", action="store_true", help="also stage 5: the Emails list through crmail serve"
    )
    parser.add_argument("--api-only", action="store_true", help="stage 5 alone (implies --api)")
    parser.add_argument(
        "--no-split", action="store_true", help="stage 5 without the in-process split"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile N in-process requests"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the populated data dir (for --reuse)"
    )
    parser.add_argument(
        "--reuse", type=Path, metavar="DIR", help="measure a data dir kept by --keep"
    )
    args = parser.parse_args()
    data = reopen(args.reuse) if args.reuse else open_store("visibility-bench")
    print(machine(), flush=True)
    try:
        rng = random.Random(13)
        if args.reuse:
            ids = json.loads((data / "ids.json").read_text())
        else:
            ids = populate(args, rng)
            (data / "ids.json").write_text(json.dumps(ids))
        rng = random.Random(17)
        if not args.api_only:
            bench(ids, args.samples, rng)
        if args.api or args.api_only:
            import visibility_api

            visibility_api.run(
                ids, args.samples, rng, data, split=not args.no_split, profile=args.profile
            )
        print(machine())
    finally:
        close_store(data, args.keep or bool(args.reuse))


if __name__ == "__main__":
    main()
