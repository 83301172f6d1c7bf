"""Finding records by a word inside their names, emails or account fast (decision 062).

The record lists and the top bar's search match a word anywhere inside a field
(``icontains``: ``LIKE '%word%'``), which no B-tree index serves. Each database gets a
trigram index that does, created by the migration ``crm.0007_record_search_indexes``:

- **PostgreSQL**: ``pg_trgm`` GIN indexes on ``UPPER(field::text)``, the very expression
  Django writes for ``icontains``, so the ``icontains`` conditions themselves use them;
- **SQLite**: an FTS5 table with the ``trigram`` tokenizer per table (external content,
  kept by triggers on the table), asked here by ``MATCH``.

Neither answers for a word shorter than three characters (no trigram). Both are only
ever used to *narrow*: what they return is a superset of the rows the ``icontains``
conditions match (the FTS5 tokenizer folds case for every alphabet, SQLite's ``LIKE``
only for ASCII), and the ``icontains`` conditions are applied to it, so the rows found
are exactly those the conditions alone find, on either database.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.db.models import F, Lookup, Q, QuerySet
from django.db.models.expressions import RawSQL

from crmail.crm.models import Account, Contact, Deal, EmailAddress, Lead, Record

# The fields a word is looked for in, per module (``web.modules`` searches these; the
# migration indexes them, and a test holds the two together).
FIELDS: dict[type[Record], tuple[str, ...]] = {
    Lead: ("first_name", "last_name", "company", "phone", "mobile"),
    Contact: ("first_name", "last_name", "phone", "mobile"),
    Account: ("name", "domain", "website", "phone"),
    Deal: ("name",),
}
SHORTEST = 3  # characters: a trigram index finds nothing for a shorter word

# Up to this many candidates, each row looks up its own addresses and account; past it,
# those holding the word are read once.
CANDIDATES_FEW = 1000
# More candidates than this for every word: the words are common (a fifth of the largest
# table), and walking the rows in the list's order fills a page sooner.
CANDIDATES_MAX = 20_000


def indexed(word: str) -> bool:
    """Whether the index can narrow a search for ``word``."""
    return len(word) >= SHORTEST


def _phrase(word: str, column: str = "") -> str:
    """``word`` as an FTS5 string (a phrase of its trigrams), limited to ``column``."""
    quoted = '"' + word.replace('"', '""') + '"'
    return f"{column} : {quoted}" if column else quoted


def _fts(model: type[Any], word: str, column: str = "") -> RawSQL:
    """The ids of ``model`` rows whose indexed fields (or ``column``) may hold ``word``.
    The table's name is crmail's own; the word is a parameter."""
    table = f"{model._meta.db_table}_search"
    sql = f"SELECT rowid FROM {table} WHERE {table} MATCH %s"  # noqa: S608
    return RawSQL(sql, [_phrase(word, column)])  # noqa: S611


def narrowed(qs: QuerySet[Any], word: str, column: str = "") -> QuerySet[Any]:
    """``qs`` (already filtered by ``icontains`` on ``word``) limited to what the index
    returns for it, when it helps: on SQLite the FTS5 table narrows, on PostgreSQL the
    ``icontains`` conditions use their trigram indexes by themselves."""
    if connection.vendor != "sqlite" or not indexed(word):
        return qs
    return qs.filter(pk__in=_fts(qs.model, word, column))


def _own(model: type[Record], word: str) -> QuerySet[Any]:
    """The rows of ``model`` with ``word`` in one of its own searched fields."""
    qs = model._default_manager.order_by()
    if connection.vendor == "sqlite":
        return qs.filter(pk__in=_fts(model, word))
    cond = Q()
    for name in FIELDS[model]:
        cond |= Q(**{f"{name}__icontains": word})
    return qs.filter(cond)


def _matching(model: type[Record], word: str) -> QuerySet[Any]:
    """The ids of ``model`` rows that may match ``word`` (a superset), as a query."""
    parts = [_own(model, word).values_list("pk")]
    if model in (Contact, Lead):
        owner = "contact_id" if model is Contact else "lead_id"
        emails = EmailAddress.objects.order_by().filter(**{f"{owner}__isnull": False})
        emails = emails.filter(address__icontains=word)
        parts.append(narrowed(emails, word).values_list(owner))
    if model in (Contact, Deal):
        accounts = narrowed(Account.objects.order_by().filter(name__icontains=word), word, "name")
        parts.append(
            model._default_manager.order_by().filter(account__in=accounts).values_list("pk")
        )
    first, *rest = parts
    return first.union(*rest) if rest else first


class _AnyOf(Lookup):  # type: ignore[type-arg]
    """``lhs = ANY(%s::bigint[])``: the ids as one array parameter (PostgreSQL)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", [*params, list(self.rhs)]


def among(ids: list[int]) -> Q:
    """The condition "the row's id is one of ``ids``", in one parameter: a JSON array
    on SQLite (a subquery SQLite reads the rows by), an array on PostgreSQL (``= ANY``,
    whose length the planner sees, so it reads the rows by their key, not by walking the
    name order). Twenty thousand ids as as many parameters cost more than the search."""
    if connection.vendor == "sqlite":
        return Q(pk__in=RawSQL("SELECT value FROM json_each(%s)", [json.dumps(ids)]))
    return Q(_AnyOf(F("pk"), ids))


def candidates(model: type[Record], words: list[str]) -> list[int] | None:
    """At most ``CANDIDATES_MAX`` ids among which every ``model`` row matching all of
    ``words`` lies (by own field, address or account name, whoever may see them), or
    None when every word is short or held by more rows than that.

    The longest words are tried first (they tend to be rarer); the first word with few
    enough candidates gives them. Every row that matches the word is among its
    candidates (the index is a superset), whatever the other words. Each word is asked
    for ``CANDIDATES_FEW`` first, the most a rare word has.
    """
    for word in sorted((w for w in words if indexed(w)), key=len, reverse=True):
        matching = _matching(model, word)
        ids = [pk for (pk,) in matching[: CANDIDATES_FEW + 1]]
        if len(ids) > CANDIDATES_FEW:
            ids = [pk for (pk,) in matching[: CANDIDATES_MAX + 1]]
        if len(ids) <= CANDIDATES_MAX:
            return ids
    return None
