"""What the four record resources share: finding, filtering, paging and writing records.

Reads always start from ``access.visible``; writes always go through ``crmail.crm.actions``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Count, Q, QuerySet, Window
from django.http import Http404

from crmail.api.errors import API_NAMES
from crmail.api.schemas import MAX_LIMIT, ListParams, RecordFilters
from crmail.crm import actions
from crmail.crm.models import Record
from crmail.people.models import User

R = TypeVar("R", bound=Record)

FORM_NAMES = {api: form for form, api in API_NAMES.items()}
MAX_SEARCH_WORDS = 5


def page(qs: QuerySet[Any], params: ListParams) -> dict[str, Any]:
    """The ``Page`` for ``params``: a count and at most ``MAX_LIMIT`` items."""
    limit = min(params.limit, MAX_LIMIT)
    offset = params.offset
    return {
        "items": list(qs[offset : offset + limit]),
        "count": qs.count(),
        "limit": limit,
        "offset": offset,
    }


def counted_page(qs: QuerySet[Any], params: ListParams) -> dict[str, Any]:
    """``page`` in one statement: the count rides on each row (``COUNT(*) OVER ()``).

    For a query that costs more to build and compile than to run (a record's Emails list
    through the visibility layer: bench/visibility_bench.py --api), so it is compiled and
    run once rather than a second time to count. Only a page past the end, which has no
    row to carry the count, asks for it apart.
    """
    limit = min(params.limit, MAX_LIMIT)
    offset = params.offset
    rows = list(qs.annotate(page_total=Window(Count("pk")))[offset : offset + limit])
    count = rows[0].page_total if rows else (qs.count() if offset else 0)
    return {"items": rows, "count": count, "limit": limit, "offset": offset}


def get_or_404(qs: QuerySet[R], pk: int) -> R:
    """Row ``pk`` of ``qs``, else 404. For records ``qs`` is what the user may see, so a
    record they may not see answers exactly like one that does not exist."""
    record = qs.filter(pk=pk).first()
    if record is None:
        raise Http404
    return record


def reload(qs: QuerySet[R], record: R) -> R:
    """``record`` read again through ``qs`` (for what the output needs, like addresses).

    ``qs`` is not limited to what the user sees: the user has just written the record and
    is told the result, even when a new owner takes it out of their sight.
    """
    return qs.get(pk=record.pk)


def search_words(q: str | None) -> list[str]:
    return (q or "").split()[:MAX_SEARCH_WORDS]


def filter_records(
    qs: QuerySet[R], filters: RecordFilters, name_fields: tuple[str, ...]
) -> QuerySet[R]:
    """Apply ``q`` (every word in one of ``name_fields``), ``owner`` and ``modified_since``."""
    for word in search_words(filters.q):
        match = Q()
        for field in name_fields:
            match |= Q(**{f"{field}__icontains": word})
        qs = qs.filter(match)
    if filters.owner is not None:
        qs = qs.filter(owner_id=filters.owner)
    if filters.modified_since is not None:
        qs = qs.filter(modified_at__gte=filters.modified_since)
    return qs


def filter_by_email(qs: QuerySet[R], email: str | None) -> QuerySet[R]:
    """Leads or Contacts with ``email`` as primary or secondary address, in any case."""
    if email is None:
        return qs
    return qs.filter(emails__address=email.strip().strip("<>").strip().lower()).distinct()


def order(qs: QuerySet[R], ordering: str, columns: dict[str, tuple[str, ...]]) -> QuerySet[R]:
    """Order by one whitelisted key (``-`` for descending), then by id so pages are stable."""
    descending = ordering.startswith("-")
    key = ordering.lstrip("-")
    prefix = "-" if descending else ""
    return qs.order_by(*(prefix + c for c in columns[key]), prefix + "pk")


def form_data(payload: dict[str, Any]) -> dict[str, Any]:
    """API input as the record forms take it: related ids under form names, lists joined,
    null as empty."""
    data: dict[str, Any] = {}
    for name, value in payload.items():
        if isinstance(value, list):
            value = ", ".join(value)
        data[FORM_NAMES.get(name, name)] = "" if value is None else value
    return data


def create(user: User, module: str, payload: dict[str, Any]) -> Record:
    return actions.create_record(user, module, form_data(payload))


def update(user: User, record: R, payload: dict[str, Any]) -> R:
    return actions.update_record(user, record, form_data(payload))  # type: ignore[return-value]


def delete(user: User, record: Record) -> None:
    actions.delete_record(user, record)
