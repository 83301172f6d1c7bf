"""Record search (lists and the top bar) finds exactly what a plain filter over the records
finds: every word in a name field, an address or a visible account's name, as each
database's ``icontains`` compares (SQLite: ASCII letters in any case, other letters as
written; PostgreSQL: ``UPPER`` of every letter), never a record its reader may not see."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from crmail.crm import record_index
from crmail.crm.models import Account, Contact, Deal, Lead
from crmail.people import access
from crmail.web import modules
from tests import factories as f

pytestmark = pytest.mark.django_db

QUERIES = [
    "müller",
    "MÜLLER",
    "Müller",
    "MUELLER",
    "ller",
    "mu",
    "a",
    "ü",
    "gmbh",
    "acme",
    "hidden",
    "παπα",
    "ΠΑΠΑ",
    "Дмит",
    "дмитрий",
    "100%",
    "%",
    "_",
    "a_b",
    "o'b",
    '"quo',
    "anna müller",
    "ann acme",
    "pat schr",
    "xyzzy",
    "555",
    "example",
    "Straße",
]


def _contains(haystack: str, word: str) -> bool:
    """``haystack icontains word`` as the database in use compares."""
    if connection.vendor == "postgresql":

        def fold(s: str) -> str:  # UPPER: letter by letter (ß stays ß)
            return "".join(c.upper() if len(c.upper()) == 1 else c for c in s)
    else:

        def fold(s: str) -> str:  # LIKE: ASCII letters only
            return "".join(c.lower() if "A" <= c <= "Z" else c for c in s)

    return fold(word) in fold(haystack or "")


def _expected(user: Any, mod: modules.Module, q: str) -> list[int]:
    """The rows a plain Python filter finds, in the list's order."""
    rows = list(
        access.visible(user, mod.model)
        .order_by(*mod.sorts[mod.default_sort], "pk")
        .prefetch_related(*(("emails",) if mod.people else ()))
    )
    seen_accounts = set(access.visible(user, Account).values_list("pk", flat=True))

    def matches(row: Any, word: str) -> bool:
        if any(_contains(getattr(row, name), word) for name in mod.search_fields):
            return True
        if mod.people and any(_contains(e.address, word) for e in row.emails.all()):
            return True
        account = getattr(row, "account", None)
        return account is not None and account.pk in seen_accounts and _contains(account.name, word)

    words = q.split()[:8]
    return [r.pk for r in rows if all(matches(r, w) for w in words)]


@pytest.fixture
def world(org):  # type: ignore[no-untyped-def]
    acme = f.account(org.rep, "Acme GmbH", domain="acme.example", phone="+49 555 0100")
    hidden = f.account(org.manager, "Hidden Müller AG", website="https://hidden.example")
    f.account(org.peer, "Peer a_b Ltd")
    f.account(org.admin, "ΠΑΠΑΔΌΠΟΥΛΟΣ Ltd")
    people = [
        ("Anna", "Müller", "anna.mueller@acme.example", acme),
        ("Jürgen", "MÜLLER", "jm@hidden.example", hidden),
        ("Pat", "Schröder", "pat@schroeder.example", None),
        ("Μαρία", "Παπαδόπουλος", "maria@papa.example", acme),
        ("Дмитрий", "Иванов", "dmitri@ivanov.example", hidden),
        ("Sean", "O'Brien", "sean@obrien.example", None),
        ("Quo", 'The "Quoted"', "quo@x.example", None),
        ("Hans", "Straße", "hans@strasse.example", acme),
        ("Ann", "Smith", "ann@100%.example", None),
    ]
    for i, (first, last, email, account) in enumerate(people):
        owner = (org.rep, org.peer, org.manager)[i % 3]
        contact = f.contact(owner, email, first_name=first, last_name=last, account=account)
        f.lead(
            owner,
            email.replace("@", ".lead@"),
            first_name=first,
            last_name=last,
            company=f"{last} 100% a_b",
            phone=f"555-01{i}",
        )
        f.deal(owner, f"{last} renewal", account=account, contact=contact)
    f.contact(
        org.rep,
        "second@acme.example",
        first_name="Mu",
        last_name="Zed",
        secondary=("other.MUELLER@backup.example",),
    )
    return org


@pytest.mark.parametrize(
    ("candidates_few", "candidates_max"),
    [(1000, 20_000), (1, 20_000), (1, 1)],
    ids=["few candidates", "many candidates", "common words"],
)
def test_search_finds_what_a_plain_filter_finds_for_every_user(
    world, monkeypatch, candidates_few, candidates_max
):
    """With the usual limits and with every word counted as having many candidates, or
    as common: each of the three ways of searching finds the same."""
    monkeypatch.setattr(record_index, "CANDIDATES_FEW", candidates_few)
    monkeypatch.setattr(record_index, "CANDIDATES_MAX", candidates_max)
    users = [world.admin, world.manager, world.rep, world.peer, world.outsider_manager]
    checked = 0
    for user in users:
        for mod in modules.MODULES.values():
            for q in QUERIES:
                got = [r.pk for r in modules.listing(user, mod, q, mod.default_sort)]
                assert got == _expected(user, mod, q), (user.email, mod.name, q)
                checked += bool(got)
    assert checked > 100  # the queries find things, not only nothing


def test_the_top_bar_never_shows_a_record_its_reader_may_not_see(world, client_for):
    """The manager's account is named Müller: the rep does not find it, nor the rep's
    contacts through it, nor the manager's own Müller."""
    rep_page = client_for(world.rep).get("/search/", {"q": "Müller"}).content.decode()
    assert "Hidden Müller AG" not in rep_page
    assert "Jürgen" not in rep_page  # the manager's contact, in the hidden account
    assert "Anna" in rep_page  # the rep's own Müller
    manager_page = client_for(world.manager).get("/search/", {"q": "Müller"}).content.decode()
    assert "Hidden Müller AG" in manager_page
    assert "Jürgen" in manager_page


def test_a_one_letter_and_a_two_letter_word_find_records_too(world, client_for):
    page = client_for(world.rep).get("/search/", {"q": "Qu"}).content.decode()
    assert "Quo The" in page
    page = client_for(world.admin).get("/search/", {"q": "ü"}).content.decode()
    assert "Jürgen" in page


@pytest.mark.parametrize("model", [Lead, Contact, Account, Deal])
def test_the_index_covers_the_fields_the_lists_search(model):
    """``web.modules`` searches the fields ``record_index`` names, and the migration
    indexed those: the trigram index narrows every searched field."""
    assert modules.MODULES[model.MODULE].search_fields == record_index.FIELDS[model]
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"SELECT name FROM pragma_table_info('{table}_search')")
            indexed = tuple(r[0] for r in cursor.fetchall())
        else:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %s", [f"{table}_trgm"]
            )
            (definition,) = cursor.fetchone()
            indexed = tuple(
                name
                for name in record_index.FIELDS[model]
                if f"upper(({name})::text) gin_trgm_ops" in definition
            )
    assert indexed == record_index.FIELDS[model]
    if connection.vendor == "postgresql":  # the expression Django writes, so the index serves it
        for name in record_index.FIELDS[model]:
            sql = str(model._default_manager.filter(**{f"{name}__icontains": "x"}).query)
            assert f'UPPER("{table}"."{name}"::text) LIKE' in sql


def test_a_search_works_inside_another_query(world):
    """The candidate condition names the row through Django (an alias in a subquery)."""
    mod = modules.MODULES["contacts"]
    found = modules.listing(world.admin, mod, "müller", mod.default_sort)
    outer = Contact.objects.filter(pk__in=found.values("pk")).order_by("pk")
    assert [c.pk for c in outer] == sorted(_expected(world.admin, mod, "müller"))
    assert len(outer) >= 2
