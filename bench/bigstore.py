"""A big crmail store for the read benchmarks, on SQLite or PostgreSQL.

Used by ``search_bench.py`` (``populate``) and ``visibility_bench.py`` (the environment,
the bulk writer and the machine line). Rows are written straight into the tables
(``executemany`` on SQLite, ``COPY`` on PostgreSQL): no IMAP, no parsing, no linking,
since these benchmarks measure reading. The search index is then built by crmail's own
code (``crmail.search.index.reindex``, what ``crmail search reindex`` runs), timed.

The organisation (``populate``):

- ``users`` users under a CEO, two managers and representatives; the measured user
  (``viewer``) is a representative whose own mailbox holds ``own_share`` of the mail
  (100,000 of 1,000,000), most of it in their Inbox. Sharing: half the others public to
  everyone (own domain excluded), a fifth public to two chosen peers, 15 % custom (a fifth
  of their contacts shared), 15 % private. Contacts, leads, accounts and deals are
  private to their owners (the module default), so a user sees colleagues' mail only on
  their own records: the viewer may see about a tenth of the store (printed exactly).
- 100,000 contacts (a tenth of the messages; one email address each) in 5,000 accounts
  and 20,000 leads, owned
  mostly by the user whose mailbox they write to; 5 % of the contacts have a deal
  (amount, closing date, a stage of the default pipeline, open or closed).
- Every mailbox has Inbox, Sent, Archive and Trash; each message lies in one mailbox (5 %
  also in a colleague's), with seen (most older mail), flagged (3 %) state; 5 % were
  sent from crmail. Every message is linked to the contact (90 %) or lead it is with.
- Threads of one to a dozen messages per customer ("Re: " subjects).
- Text: subjects and bodies drawn from a 30,000-word vocabulary with a Zipf distribution
  (English business words first, synthetic words in the long tail), with German, French,
  Greek and Russian words among them; participants with names (some accented, some Greek
  or Cyrillic); 10 % of the messages carry one to three attachments with file names.
- Every message has an email intelligence result (sentiment: 30 % positive, 50 %
  neutral, 20 % negative; one of the six intents), as a store with intelligence on has.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchenv import cpu

PG_SERVER = os.environ.get("CRMAIL_BENCH_PG_SERVER", "postgresql://127.0.0.1:5432")
PG_DATABASE = "crmail_bench"

# --- environment ------------------------------------------------------------------------


def _clean_env(data: Path, db: str) -> None:
    for key in [k for k in os.environ if k.startswith("CRMAIL_")]:
        del os.environ[key]
    os.environ.update(
        CRMAIL_DATA_DIR=str(data / "data"),
        CRMAIL_ADMIN_EMAIL="admin@example.org",
        CRMAIL_ADMIN_PASSWORD="bench-admin-pw-1",
        CRMAIL_LOG_LEVEL="WARNING",
        CRMAIL_QUEUE_URL="memory://",
    )
    if db == "postgresql":
        os.environ["CRMAIL_DATABASE_URL"] = f"{PG_SERVER}/{PG_DATABASE}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crmail.config.settings")


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def open_store(name: str, db: str = "sqlite") -> Path:
    """A fresh data dir (``crmail init``; on PostgreSQL a fresh ``crmail_bench`` database
    too), Django set up on it, jobs in-process. Returns the temporary folder."""
    data = Path(tempfile.mkdtemp(prefix=f"crmail-{name}-"))
    _clean_env(data, db)
    if db == "postgresql":
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        _pg_admin(f"CREATE DATABASE {PG_DATABASE}")
    (data / "store.json").write_text(json.dumps({"db": db}))
    from crmail.config.cli import main as crmail

    if crmail(["init"]) != 0:
        raise SystemExit("crmail init failed")
    import django

    django.setup()
    return data


def reopen(data: Path) -> Path:
    """Django set up on a data dir (and database) that an earlier ``--keep`` run left."""
    meta = data / "store.json"
    db = json.loads(meta.read_text())["db"] if meta.exists() else "sqlite"
    _clean_env(data, db)
    import django

    django.setup()
    return data


def store_db(data: Path) -> str:
    meta = data / "store.json"
    return json.loads(meta.read_text())["db"] if meta.exists() else "sqlite"


def close_store(data: Path, keep: bool) -> None:
    """Remove the data dir (and the PostgreSQL database) unless ``keep``."""
    if keep:
        print(f"data dir kept: {data} (reuse it with --reuse {data})", file=sys.stderr)
        return
    db = store_db(data)
    from django.db import connections

    connections.close_all()
    if db == "postgresql":
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    shutil.rmtree(data, ignore_errors=True)


def machine() -> str:
    """One line: CPU, cores, OS, Python, the database's version, the load average now."""
    from django.db import connection

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            dbv = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    else:
        dbv = f"SQLite {sqlite3.sqlite_version}"
    return (
        f"{cpu()}; {platform.platform()}; Python "
        f"{platform.python_version()}, {dbv}; load average {load}"
    )


def pct(samples: Sequence[float], p: float) -> float:
    """The ``p`` quantile of ``samples`` (seconds), in milliseconds."""
    return sorted(samples)[min(len(samples) - 1, int(len(samples) * p))] * 1000


# --- writing rows fast -------------------------------------------------------------------


class Writer:
    """Bulk inserts: ``executemany`` on SQLite, ``COPY`` on PostgreSQL. Values are Python
    values (bools, aware datetimes); ``dt`` turns a datetime into what the column takes."""

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.pg = connection.vendor == "postgresql"

    def dt(self, value: datetime) -> Any:
        if self.pg:
            return value
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        q = self.connection.ops.quote_name
        cols = ", ".join(q(c) for c in columns)
        if self.pg:
            self.connection.ensure_connection()
            raw = self.connection.connection
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("%s" for _ in columns)
            with self.connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    def reset_sequences(self, tables: Sequence[str]) -> None:
        if not self.pg:
            return
        with self.connection.cursor() as cursor:
            for table in tables:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )

    def analyze(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if self.pg else "ANALYZE")


# --- text ---------------------------------------------------------------------------------

COMMON = (  # noqa: SIM905
    "the to and of a in for is on that this we you it with be as are at your our will "
    "from have can please by an if not or all any new would as per thanks let know me us "
    "about meeting call next week today tomorrow price pricing offer order invoice "
    "contract proposal quote delivery payment project team update review attached file "
    "report question questions customer account support service product products plan "
    "schedule time date budget cost costs terms agreement renewal license discount "
    "shipment shipping status issue problem solution demo trial release version feature "
    "request feedback follow up reminder confirm confirmation details information numbers "
    "quarter monthly annual sales target forecast pipeline opportunity partner partners "
    "signed draft final revised changes approve approval legal procurement purchase "
    "volume units warehouse stock available availability lead time samples catalogue "
    "presentation slides agenda minutes notes workshop training onboarding kickoff "
    "milestone deadline timeline estimate scope requirements integration migration "
    "installation maintenance warranty return refund credit balance overdue reminder bank "
    "transfer receipt tax vat region europe germany france berlin paris munich london "
    "office visit travel flight hotel conference booth trade fair exhibition brochure "
    "website portal login password access"
).split()
NON_ASCII = (  # noqa: SIM905
    "Größe Straße Übersicht Angebotsänderung Lösung Prüfung Bestätigung Gebühr Kündigung "
    "Rückfrage Lieferschein Änderung Bürozeiten Grüße Müller München Köln Zürich réunion "
    "déjà échéance reçu facturé élevé numéro prévu délai société élément procès-verbal "
    "entrepôt reçue Genève Besançon προσφορά συνάντηση τιμή παράδοση Αθήνα договор счёт "
    "встреча поставка Москва цена"
).split()
FIRST = (  # noqa: SIM905
    "Anna Ben Clara David Emma Felix Greta Hannah Ivan Jana Jürgen Zoë François Élodie "
    "Søren Björn Łukasz José Chloé Renée Ηλίας Μαρία Дмитрий Ольга Peter Laura Maria "
    "Thomas Julia Paul Sophie Lukas Lea Max Mia Noah Nina Oskar Paula Sam Tim Ute"
).split()
LAST = (  # noqa: SIM905
    "Müller Schröder Weiß Lefèvre Dubois Günther Nuñez García Smith Jones Brown Taylor "
    "Wilson Becker Hoffmann Schäfer Koch Richter Klein Wolf Neumann Schwarz Zimmermann "
    "Braun Krüger Hofmann Hartmann Lange Werner Krause Meier Lehmann Schmid Martin "
    "Bernard Petit Durand Leroy Moreau Simon Laurent Papadopoulos Παπαδόπουλος Иванов "
    "Петрова Novak"
).split()
SENTIMENTS = ("positive", "neutral", "negative")
INTENTS = ("request", "question", "complaint", "scheduling", "unsubscribe", "other")
EXTENSIONS = ("pdf", "pdf", "pdf", "docx", "xlsx", "pptx", "png", "jpg", "zip", "csv")
_SYLLABLES = (  # noqa: SIM905
    "ka ri to ne sa lo mi ve du ra ten mon sel bar tor gan fil pro ver lin dos cal mer "
    "tis nor vel sta tri qua bel zen hol"
).split()


class Text:
    """A Zipf vocabulary and the pieces of mail drawn from it."""

    def __init__(self, rng: random.Random, size: int = 30_000) -> None:
        self.rng = rng
        vocab = list(dict.fromkeys(COMMON))
        seen = set(vocab) | {w.lower() for w in NON_ASCII}
        made: list[str] = []
        while len(vocab) + len(made) + len(NON_ASCII) < size:
            word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
            if word not in seen:
                seen.add(word)
                made.append(word)
        # The non-ASCII words between ranks 200 and 3,000: each in a few % of the mail.
        slots = sorted(rng.sample(range(200, 3000), len(NON_ASCII)))
        tail = list(made)
        for slot, word in zip(slots, NON_ASCII, strict=True):
            tail.insert(slot - len(vocab), word)
        self.words = vocab + tail
        self.cum = list(itertools.accumulate(1.0 / (r + 2.7) for r in range(len(self.words))))
        self.rank = {w: i for i, w in enumerate(self.words)}

    def draw(self, n: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=n)

    def ranked(self, low: int, high: int) -> str:
        """A word whose rank lies in [low, high)."""
        return self.words[self.rng.randrange(low, min(high, len(self.words)))]

    def subject(self) -> str:
        words = self.draw(self.rng.randint(3, 8))
        return " ".join(words).capitalize()

    def body(self, greeting: str, signature: str) -> str:
        sentences = []
        for _ in range(self.rng.randint(3, 14)):
            words = self.draw(self.rng.randint(5, 18))
            sentences.append(" ".join(words).capitalize() + self.rng.choice(".....?!"))
        paragraphs, i = [], 0
        while i < len(sentences):
            n = self.rng.randint(1, 4)
            paragraphs.append(" ".join(sentences[i : i + n]))
            i += n
        return (
            f"Hello {greeting},\n\n" + "\n\n".join(paragraphs) + f"\n\nBest regards,\n{signature}"
        )

    def filename(self) -> str:
        words = [self.ranked(60, 6000) for _ in range(self.rng.randint(1, 3))]
        sep = self.rng.choice("-_ ")
        if self.rng.random() < 0.5:
            words.append(str(self.rng.randint(2019, 2026)))
        return sep.join(words) + "." + self.rng.choice(EXTENSIONS)

    def name(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"


# --- the organisation and its mail ----------------------------------------------------------


def _organisation(users_n: int, rng: random.Random) -> dict[str, Any]:
    from crmail.mailboxes.models import Folder, Mailbox
    from crmail.people.models import ModuleDefault, Profile, Role, User
    from crmail.sharing import actions

    ceo = Role.objects.get(name="CEO")
    managers = [Role.objects.create(name=f"Bench manager {i}", parent=ceo) for i in range(2)]
    reps = [Role.objects.create(name=f"Bench rep {i}", parent=m) for i, m in enumerate(managers)]
    standard = Profile.objects.get(name="Standard")
    actions.set_organisation_default(None, "public")
    admin = User.objects.get(email="admin@example.org")
    actions.set_sharing(None, admin, mode="public")
    users = [admin]
    for i in range(1, users_n):
        role = managers[i % 2] if i in (2, 3) else reps[i % 2]
        users.append(
            User.objects.create_user(
                f"user{i}@sales.example",
                name=f"{FIRST[i % len(FIRST)]} U{i}",
                role=role,
                profile=standard,
            )
        )
    for module in ("contacts", "accounts", "leads", "deals"):
        ModuleDefault.objects.update_or_create(module=module, defaults={"level": "private"})
    boxes: dict[int, int] = {}
    folders: dict[int, dict[str, int]] = {}
    for u in users:
        box = Mailbox.objects.create(owner=u, email=u.email)
        boxes[u.pk] = box.pk
        folders[u.pk] = {
            role: Folder.objects.create(
                mailbox=box, remote_id=name.upper(), name=name, role=role
            ).pk
            for role, name in (
                ("inbox", "Inbox"),
                ("sent", "Sent"),
                ("archive", "Archive"),
                ("trash", "Trash"),
            )
        }
    return {"users": users, "boxes": boxes, "folders": folders, "viewer": users[1]}


def _sharing(
    users: list[Any], viewer: Any, contacts_of: dict[int, list[int]], rng: random.Random
) -> None:
    from crmail.sharing import actions
    from crmail.sharing.models import SharedRecord

    for i, u in enumerate(users):
        if u.pk == viewer.pk:
            continue
        kind = i % 20
        if kind < 10:
            continue  # the organisation's default: public to everyone, own domain excluded
        if kind < 14:
            peers = rng.sample([p for p in users if p.pk != u.pk], 2)
            actions.set_sharing(None, u, mode="public", share_with=peers)
        elif kind < 17:
            actions.set_sharing(None, u, mode="custom")
            SharedRecord.objects.bulk_create(
                [
                    SharedRecord(setting_id=u.pk, module="contacts", record_id=c)
                    for c in contacts_of[u.pk][::5]
                ],
                batch_size=5000,
            )
        else:
            actions.set_sharing(None, u, mode="private")


def populate(
    messages: int = 1_000_000,
    *,
    users_n: int = 20,
    contacts_n: int | None = None,
    own_share: float = 0.1,
    seed: int = 13,
) -> dict[str, Any]:
    """Fill the store (see the module's description); returns the ids the benchmarks
    sample from and how long it took."""
    from django.db import transaction

    from crmail.crm.models import Account, Contact, Deal, Lead, Stage, StageKind

    contacts_n = contacts_n or max(1000, messages // 10)
    rng = random.Random(seed)
    # What the email intelligence found (sentiment, intent), drawn apart so that the
    # rest of the store is the same as without it.
    found = random.Random(seed + 1)
    text = Text(rng)
    w = Writer()
    started = time.perf_counter()
    org = _organisation(users_n, rng)
    users, boxes, folders, viewer = org["users"], org["boxes"], org["folders"], org["viewer"]
    others = [u for u in users if u.pk != viewer.pk]

    def owner_for(i: int) -> Any:
        # The viewer's own share of the mail; the rest spread over the others.
        return viewer if rng.random() < own_share else others[i % len(others)]

    # Records: contacts and leads mostly owned by users in proportion to their mail.
    with transaction.atomic():
        accounts = Account.objects.bulk_create(
            [
                Account(
                    owner=rng.choice(users),
                    name=f"{text.ranked(200, 5000).title()} "
                    f"{rng.choice(('GmbH', 'SA', 'Ltd', 'Inc', 'AG', 'SARL'))} {i}",
                )
                for i in range(max(1, contacts_n // 20))
            ],
            batch_size=5000,
        )
        contacts = Contact.objects.bulk_create(
            [
                Contact(
                    owner=owner_for(i),
                    first_name=rng.choice(FIRST),
                    last_name=rng.choice(LAST),
                    account=rng.choice(accounts),
                )
                for i in range(contacts_n)
            ],
            batch_size=5000,
        )
        leads = Lead.objects.bulk_create(
            [
                Lead(
                    owner=owner_for(i),
                    first_name=rng.choice(FIRST),
                    last_name=rng.choice(LAST),
                    company=f"{text.ranked(200, 5000).title()} {i}",
                )
                for i in range(contacts_n // 5)
            ],
            batch_size=5000,
        )
        stages = list(Stage.objects.select_related("pipeline").order_by("position"))
        open_stages = [s for s in stages if s.kind == StageKind.OPEN]
        closed = [s for s in stages if s.kind != StageKind.OPEN]
        today = datetime.now(UTC).date()
        deals = []
        for c in rng.sample(contacts, len(contacts) // 20):
            stage = rng.choice(open_stages) if rng.random() < 0.7 else rng.choice(closed)
            deals.append(
                Deal(
                    owner_id=c.owner_id,
                    name=f"{text.ranked(60, 3000).title()} deal {c.pk}",
                    pipeline=stage.pipeline,
                    stage=stage,
                    amount=rng.choice((500, 1200, 5000, 12000, 25000, 80000, 250000))
                    * rng.randint(1, 9),
                    closing_date=today + timedelta(days=rng.randint(-200, 200)),
                    contact=c,
                    account_id=c.account_id,
                )
            )
        Deal.objects.bulk_create(deals, batch_size=5000)
    people: dict[tuple[str, int], tuple[str, str]] = {}
    addresses = []
    for c in contacts:
        address = f"{c.first_name[0].lower()}{c.pk}@customer{c.pk % 997}.example"
        if not address.isascii():
            address = f"c{c.pk}@customer{c.pk % 997}.example"
        people[("contacts", c.pk)] = (f"{c.first_name} {c.last_name}", address)
        addresses.append((address, True, c.pk, None))
    for ld in leads:
        address = f"lead{ld.pk}@prospect{ld.pk % 499}.example"
        people[("leads", ld.pk)] = (f"{ld.first_name} {ld.last_name}", address)
        addresses.append((address, True, None, ld.pk))
    w.insert("crm_emailaddress", ("address", "is_primary", "contact_id", "lead_id"), addresses)
    records_of: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for c in contacts:
        records_of[c.owner_id].append(("contacts", c.pk))
    for ld in leads:
        records_of[ld.owner_id].append(("leads", ld.pk))
    contacts_of = {u.pk: [pk for m, pk in records_of[u.pk] if m == "contacts"] for u in users}
    all_records = list(people)
    _sharing(users, viewer, contacts_of, rng)
    print(
        f"  organisation: {len(users)} users, {len(contacts):,} contacts, {len(leads):,} leads, "
        f"{len(deals):,} deals in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )

    start = datetime(2021, 1, 1, tzinfo=UTC)
    span = int((datetime.now(UTC) - start).total_seconds())
    recent = datetime.now(UTC) - timedelta(days=60)
    now = datetime.now(UTC)
    thread_of: dict[tuple[str, int], tuple[int, str, int]] = {}  # record -> (thread, subject, n)
    threads: dict[int, list[Any]] = {}  # id -> [subject, last date]
    uid = defaultdict(int)
    user_name = {u.pk: u.name for u in users}
    chunk = 20_000
    tid = 0
    for first in range(0, messages, chunk):
        msgs, parts, atts, locs, links, sends, results = [], [], [], [], [], [], []
        new_threads: list[int] = []
        for n in range(first, min(messages, first + chunk)):
            mid = n + 1
            owner = owner_for(n)
            mine = records_of[owner.pk]
            if mine and rng.random() < 0.9:
                # Busy customers: the first tenth of one's records take half the mail.
                record = rng.choice(mine[: max(1, len(mine) // 10)] if rng.random() < 0.5 else mine)
            else:
                record = rng.choice(all_records)
            cname, caddr = people[record]
            date = start + timedelta(seconds=rng.randrange(span))
            current = thread_of.get(record)
            if current and current[2] < 12 and rng.random() < 0.6:
                thread, subject, count = current
                thread_of[record] = (thread, subject, count + 1)
                subject_line = "Re: " + subject
                if date > threads[thread][1]:
                    threads[thread][1] = date
            else:
                tid += 1
                thread, subject_line = tid, text.subject()
                thread_of[record] = (thread, subject_line, 1)
                threads[thread] = [subject_line, date]
                new_threads.append(thread)
            inbound = rng.random() < 0.6
            uname = user_name[owner.pk]
            body = text.body(
                uname.split()[0] if inbound else cname.split()[0], cname if inbound else uname
            )
            sender = (cname, caddr) if inbound else (uname, owner.email)
            to = (uname, owner.email) if inbound else (cname, caddr)
            has_att = rng.random() < 0.1
            msgs.append(
                (
                    mid,
                    f"{mid:064x}",
                    2000 + len(body),
                    w.dt(date),
                    "parsed",
                    "",
                    f"<{mid}@bench.example>",
                    "",
                    "",
                    subject_line,
                    w.dt(date),
                    w.dt(date),
                    sender[1],
                    sender[0],
                    " ".join(body[:200].split()),
                    body,
                    False,
                    has_att,
                    False,
                    "",
                    thread,
                )
            )
            parts.append((mid, "from", sender[1], sender[0], True, 0))
            parts.append((mid, "to", to[1], to[0], True, 1))
            if rng.random() < 0.5:
                colleague = rng.choice(users)
                parts.append((mid, "cc", colleague.email, colleague.name, True, 2))
            if has_att:
                for part in range(rng.randint(1, 3)):
                    atts.append(
                        (
                            mid,
                            part + 2,
                            text.filename(),
                            "application/octet-stream",
                            rng.randint(10_000, 3_000_000),
                            "",
                            False,
                        )
                    )
            boxes_for = [owner]
            if rng.random() < 0.05:
                boxes_for.append(rng.choice(users))
            for holder in dict.fromkeys(boxes_for):
                roll = rng.random()
                role = (
                    "sent"
                    if not inbound and roll < 0.9
                    else "trash"
                    if roll < 0.02
                    else "archive"
                    if roll < 0.08
                    else "inbox"
                )
                folder = folders[holder.pk][role]
                uid[folder] += 1
                seen = rng.random() < (0.5 if date > recent else 0.92)
                locs.append(
                    (
                        boxes[holder.pk],
                        folder,
                        mid,
                        str(uid[folder]),
                        uid[folder],
                        seen,
                        rng.random() < 0.03,
                        False,
                        False,
                        False,
                        "",
                        w.dt(now),
                        thread,
                        w.dt(date),
                    )
                )
            if not inbound and rng.random() < 0.08:
                sends.append(
                    (mid, owner.pk, boxes[owner.pk], owner.email, "[]", w.dt(now), "", "", "crmail")
                )
            links.append((mid, record[0], record[1], "address", caddr, w.dt(date), w.dt(now)))
            sentiment = found.choices(SENTIMENTS, (3, 5, 2))[0]
            intent = found.choice(INTENTS)
            score = found.uniform(-1, 1)
            results.append(
                (mid, sentiment, score, intent, "", "[]", "", "[]", "en", "default", "", w.dt(now))
            )
        with transaction.atomic():
            w.insert(
                "mail_thread",
                ("id", "subject", "last_message_at"),
                [(t, threads[t][0], w.dt(threads[t][1])) for t in new_threads],
            )
            w.insert(
                "mail_message",
                (
                    "id",
                    "sha256",
                    "size",
                    "first_seen_at",
                    "parse_state",
                    "parse_problems",
                    "message_id",
                    "in_reply_to",
                    "references",
                    "subject",
                    "sent_at",
                    "date",
                    "from_address",
                    "from_name",
                    "snippet",
                    "body_text",
                    "has_html",
                    "has_attachments",
                    "automated",
                    "list_id",
                    "thread_id",
                ),
                msgs,
            )
            w.insert(
                "mail_participant",
                ("message_id", "role", "address", "name", "valid", "position"),
                parts,
            )
            w.insert(
                "mail_attachment",
                ("message_id", "part", "filename", "content_type", "size", "content_id", "inline"),
                atts,
            )
            w.insert(
                "mailboxes_location",
                (
                    "mailbox_id",
                    "folder_id",
                    "message_id",
                    "remote_id",
                    "uid",
                    "seen",
                    "flagged",
                    "answered",
                    "deleted",
                    "draft",
                    "keywords",
                    "created_at",
                    "thread_id",
                    "date",
                ),
                locs,
            )
            w.insert(
                "linking_link",
                ("message_id", "module", "record_id", "reason", "address", "date", "created_at"),
                links,
            )
            w.insert(
                "mailboxes_sentmessage",
                (
                    "message_id",
                    "sender_id",
                    "mailbox_id",
                    "from_address",
                    "recipients",
                    "sent_at",
                    "record_module",
                    "sent_copy_error",
                    "source",
                ),
                sends,
            )
            w.insert(
                "intelligence_result",
                (
                    "message_id",
                    "sentiment",
                    "sentiment_score",
                    "intent",
                    "summary",
                    "summary_of",
                    "reply_text",
                    "meetings",
                    "language",
                    "tier",
                    "version",
                    "computed_at",
                ),
                results,
            )
        done = min(messages, first + chunk)
        rate = done / (time.perf_counter() - started)
        print(f"  {done:,} messages ({rate:,.0f}/s)", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    with transaction.atomic(), w.connection.cursor() as cursor:
        # A thread's last message, now that all of its messages are in: one grouped pass
        # (a subquery per thread let PostgreSQL, with no statistics yet, walk the date
        # index backwards for each of 333,000 threads).
        cursor.execute(
            "UPDATE mail_thread SET last_message_at = x.last FROM (SELECT thread_id,"
            " MAX(date) AS last FROM mail_message WHERE thread_id IS NOT NULL"
            " GROUP BY thread_id) x WHERE x.thread_id = mail_thread.id"
        )
    w.reset_sequences(["mail_message", "mail_thread"])
    w.analyze()
    populate_s = time.perf_counter() - started
    print(f"populated {messages:,} messages in {populate_s:.0f} s", file=sys.stderr)
    viewer_records = records_of[viewer.pk]
    return {
        "messages": messages,
        "populate_s": populate_s,
        "users": [u.pk for u in users],
        "viewer": viewer.pk,
        "viewer_contacts": [pk for m, pk in viewer_records if m == "contacts"],
        "viewer_leads": [pk for m, pk in viewer_records if m == "leads"],
        "vocabulary": text.words,
    }


def build_index(resume: bool = False) -> tuple[float, int]:
    """Index the messages with crmail's own code (``search.index``, batches of 500, as
    ``crmail search reindex`` does); with ``resume``, only those past the highest message
    already indexed (a build that was stopped). Returns (seconds, messages indexed)."""
    from crmail.mail.models import Message
    from crmail.search.index import BATCH, index_messages

    started = time.perf_counter()
    after = 0
    if resume:
        with Writer().connection.cursor() as cursor:
            table, key = (
                ("search_fts", "rowid")
                if Writer().connection.vendor == "sqlite"
                else ("search_document", "message_id")
            )
            cursor.execute(f"SELECT COALESCE(MAX({key}), 0) FROM {table}")
            after = int(cursor.fetchone()[0])
    ids = list(Message.objects.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), BATCH):
        index_messages(ids[start : start + BATCH])
        done = start + BATCH
        if done % 20_000 == 0 or done >= len(ids):
            rate = min(done, len(ids)) / max(1e-9, time.perf_counter() - started)
            print(
                f"  indexed {min(done, len(ids)):,} of {len(ids):,} ({rate:,.0f}/s)",
                end="\r",
                file=sys.stderr,
                flush=True,
            )
    seconds = time.perf_counter() - started
    Writer().analyze()
    print(f"\nindexed {len(ids):,} messages in {seconds:.0f} s", file=sys.stderr)
    return seconds, len(ids)


def recover_ids(messages: int, populate_s: float) -> dict[str, Any]:
    """What ``populate`` returns, read back from a store whose run was stopped before it
    wrote its ids (the vocabulary is drawn again from the same seed)."""
    from crmail.crm.models import Contact, Lead
    from crmail.people.models import User

    viewer = User.objects.get(email="user1@sales.example")
    return {
        "messages": messages,
        "populate_s": populate_s,
        "users": list(User.objects.order_by("pk").values_list("pk", flat=True)),
        "viewer": viewer.pk,
        "viewer_contacts": list(
            Contact.objects.filter(owner=viewer).order_by("pk").values_list("pk", flat=True)
        ),
        "viewer_leads": list(
            Lead.objects.filter(owner=viewer).order_by("pk").values_list("pk", flat=True)
        ),
        "vocabulary": Text(random.Random(13)).words,
    }
