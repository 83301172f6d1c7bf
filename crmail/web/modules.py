"""What the web UI shows of each record module: columns, search, sorting, details, relations.

Every query here starts from ``access.visible(user, Model)``; related records shown on a
page are limited the same way, so a page never names a record its reader may not see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import formats

from crmail.config import dates
from crmail.crm import record_index
from crmail.crm.models import Account, Contact, Deal, EmailAddress, Lead, Record
from crmail.people import access
from crmail.people.models import User

PAGE_SIZE = 25


@dataclass(frozen=True)
class Column:
    key: str  # what the row template shows
    label: str
    sort: tuple[str, ...] = ()  # order_by fields when sortable


@dataclass(frozen=True)
class Module:
    name: str  # "contacts"
    model: type[Record]
    singular: str
    plural: str
    columns: tuple[Column, ...]
    search_fields: tuple[str, ...]
    search_help: str
    detail_fields: tuple[str, ...]
    select_related: tuple[str, ...] = ("owner",)
    prefetch: tuple[str, ...] = ()
    people: bool = False
    default_sort: str = "name"
    sorts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sorts.update({c.key: c.sort for c in self.columns if c.sort})


MODIFIED = Column("modified", "Modified", ("modified_at",))
OWNER = Column("owner", "Owner", ("owner__name", "owner__email"))
PERSON_NAME = Column("name", "Name", ("last_name", "first_name"))

MODULES: dict[str, Module] = {
    m.name: m
    for m in (
        Module(
            name="leads",
            model=Lead,
            singular="lead",
            plural="leads",
            columns=(
                PERSON_NAME,
                Column("email", "Email"),
                Column("company", "Company", ("company",)),
                Column("status", "Status", ("status",)),
                OWNER,
                MODIFIED,
            ),
            search_fields=record_index.FIELDS[Lead],
            search_help="Name, email, company or phone",
            detail_fields=("title", "company", "status", "source", "phone", "mobile"),
            prefetch=("emails",),
            people=True,
        ),
        Module(
            name="contacts",
            model=Contact,
            singular="contact",
            plural="contacts",
            columns=(
                PERSON_NAME,
                Column("email", "Email"),
                Column("account", "Account"),
                Column("title", "Title", ("title",)),
                OWNER,
                MODIFIED,
            ),
            search_fields=record_index.FIELDS[Contact],
            search_help="Name, email, account or phone",
            detail_fields=("title", "phone", "mobile", "time_zone"),
            select_related=("owner", "account"),
            prefetch=("emails",),
            people=True,
        ),
        Module(
            name="accounts",
            model=Account,
            singular="account",
            plural="accounts",
            columns=(
                Column("name", "Name", ("name",)),
                Column("domain", "Domain", ("domain",)),
                Column("industry", "Industry", ("industry",)),
                Column("phone", "Phone"),
                OWNER,
                MODIFIED,
            ),
            search_fields=record_index.FIELDS[Account],
            search_help="Name, domain or phone",
            detail_fields=("website", "domain", "phone", "industry"),
        ),
        Module(
            name="deals",
            model=Deal,
            singular="deal",
            plural="deals",
            columns=(
                Column("name", "Name", ("name",)),
                Column("stage", "Stage", ("stage__position", "stage__name")),
                Column("amount", "Amount", ("amount",)),
                Column("closing_date", "Closing date", ("closing_date",)),
                Column("account", "Account"),
                OWNER,
            ),
            search_fields=record_index.FIELDS[Deal],
            search_help="Deal name or account",
            detail_fields=("pipeline", "stage", "amount", "closing_date"),
            select_related=("owner", "stage", "pipeline", "account", "contact"),
        ),
    )
}


def parse_sort(module: Module, raw: str | None) -> str:
    """``raw`` when it names a sortable column (``-`` for descending), else the default."""
    raw = (raw or "").strip()
    key = raw.removeprefix("-")
    return raw if key in module.sorts else module.default_sort


def search(user: User, module: Module, qs: QuerySet[Any], q: str) -> QuerySet[Any]:
    """Rows matching every word of ``q`` in a searchable field (related records: visible ones).

    The conditions are ``icontains`` on every field, address and account name, exactly;
    how the database gets there depends on the words (``crm.record_index``, decision 062):

    - a word with few candidates in the trigram index: only those rows are tested, each
      looking up its own addresses and account;
    - common words (and no rare one): the rows are walked in the list's order, each tested
      the same way, until the page is full, which comes soon when words are common;
    - words of one or two characters only (no trigram): the addresses and accounts holding
      them are read once, and the rows tested against that.
    """
    words = q.split()[:8]
    within = record_index.candidates(module.model, words)
    if within == []:  # no record holds a word: nothing to ask the database
        return qs.none()
    if within is not None:
        qs = qs.filter(record_index.among(within))
    accounts = access.visible(user, Account)
    for word in words:
        # Per row (EXISTS) when few rows are tested or they are walked in order; else
        # the addresses and accounts holding the word are read once (IN).
        if within is None:
            per_row = record_index.indexed(word)
        else:
            per_row = len(within) <= record_index.CANDIDATES_FEW
        cond = Q()
        for name in module.search_fields:
            cond |= Q(**{f"{name}__icontains": word})
        if module.people:
            owner_field = "contact_id" if module.model is Contact else "lead_id"
            emails = EmailAddress.objects.filter(address__icontains=word)
            if per_row:
                cond |= Exists(emails.filter(**{owner_field: OuterRef("pk")}))
            else:
                cond |= Q(pk__in=record_index.narrowed(emails, word).values(owner_field))
        if module.model in (Contact, Deal) and not accounts.query.is_empty():
            named = accounts.filter(name__icontains=word)
            if per_row:
                cond |= Exists(named.filter(pk=OuterRef("account_id")))
            else:
                cond |= Q(account__in=record_index.narrowed(named, word, "name"))
        qs = qs.filter(cond)
    return qs


def listing(user: User, module: Module, q: str, sort: str) -> QuerySet[Any]:
    """The rows of a list page: visible to ``user``, searched, ordered."""
    qs = access.visible(user, module.model)
    if q:
        qs = search(user, module, qs, q)
    fields = module.sorts.get(sort.removeprefix("-"), ())
    if sort.startswith("-"):
        fields = tuple(f"-{f}" for f in fields)
    qs = qs.select_related(*module.select_related)
    if module.prefetch:
        qs = qs.prefetch_related(*module.prefetch)
    return qs.order_by(*fields, "pk")


def visible_ids(user: User, model: type[Record], ids: set[int]) -> set[int]:
    """Which of ``ids`` ``user`` may see (for links to related records)."""
    ids = {i for i in ids if i}
    if not ids:
        return set()
    return set(access.visible(user, model).filter(pk__in=ids).values_list("pk", flat=True))


def hide_invisible_accounts(user: User, rows: list[Any]) -> None:
    """Set ``visible_account`` on each row: its account, or None when ``user`` may not see it."""
    seen = visible_ids(user, Account, {getattr(r, "account_id", None) for r in rows})
    for row in rows:
        row.visible_account = row.account if row.account_id in seen else None


def details(module: Module, record: Record) -> list[tuple[str, Any]]:
    """(label, value) pairs of a record's own fields for its detail page."""
    pairs: list[tuple[str, Any]] = []
    for name in module.detail_fields:
        model_field = record._meta.get_field(name)
        display = getattr(record, f"get_{name}_display", None)
        value = display() if display else getattr(record, name)
        if isinstance(value, Decimal):
            value = formats.number_format(value, decimal_pos=2, force_grouping=True)
        elif isinstance(value, date):
            value = dates.day(value)
        pairs.append((str(model_field.verbose_name).capitalize(), value))
    return pairs


@dataclass
class Related:
    title: str
    module: str
    rows: list[Any]


def related(user: User, module: Module, record: Record) -> list[Related]:
    """The records a detail page lists under the record, each limited to what ``user`` sees."""
    out: list[Related] = []
    if isinstance(record, Contact):
        deals = access.visible(user, Deal).filter(contact=record).select_related("stage")
        out.append(Related("Deals", "deals", list(deals)))
    elif isinstance(record, Account):
        contacts = access.visible(user, Contact).filter(account=record).prefetch_related("emails")
        deals = access.visible(user, Deal).filter(account=record).select_related("stage")
        out.append(Related("Contacts", "contacts", list(contacts)))
        out.append(Related("Deals", "deals", list(deals)))
    return out


def linked(user: User, record: Record) -> list[tuple[str, str, Record]]:
    """(label, module, record) for the single records this one points to that ``user`` sees."""
    out: list[tuple[str, str, Record]] = []
    account = getattr(record, "account", None)
    if account is not None and access.can(user, account, "view"):
        out.append(("Account", "accounts", account))
    contact = getattr(record, "contact", None)
    if contact is not None and access.can(user, contact, "view"):
        out.append(("Contact", "contacts", contact))
    return out


def counts(user: User) -> list[tuple[Module, int]]:
    """How many records of each module ``user`` may see."""
    return [(m, access.visible(user, m.model).count()) for m in MODULES.values()]
