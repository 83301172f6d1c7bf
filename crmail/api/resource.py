"""One router shape for the four record resources: list, create, read, change, delete.

Each module (``contacts.py`` …) says only what differs: its schemas, how its list filters,
its ordering keys and what its output needs loaded. Reads start from ``access.visible``;
writes go through ``crmail.crm.actions`` (see ``records.py``).
"""

# No ``from __future__ import annotations`` here: django-ninja reads the routes' annotations,
# which name the schema classes passed in, so they must be real objects, not strings.

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema

from crmail.api import live_mail, messages, records
from crmail.api.auth import current_user
from crmail.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    EmailFilters,
    EmailPage,
    Id,
    LiveMessageOut,
    Page,
    errors_doc,
)
from crmail.people import access

LIVE_ERRORS = errors_doc(401, 404, 422, 502)


@dataclass(frozen=True)
class RecordResource:
    module: str  # "contacts": the module name, the path and the operation-id prefix
    model: type[Model]
    singular: str  # "contact"
    article: str  # "a" or "an"
    schema_in: type[Schema]
    schema_out: type[Schema]
    schema_patch: type[Schema]
    filters: type[Schema]
    ordering: dict[str, tuple[str, ...]]
    search_fields: tuple[str, ...]  # ``q``: every word in one of these
    # The list's own filters, after q/owner/modified_since: (queryset, filters) → queryset.
    narrow: Callable[[QuerySet[Any], Any], QuerySet[Any]]
    select: tuple[str, ...] = ("owner",)
    prefetch: tuple[str, ...] = ()
    list_doc: str = ""
    create_doc: str = ""

    def loaded(self, qs: QuerySet[Any]) -> QuerySet[Any]:
        qs = qs.select_related(*self.select)
        return qs.prefetch_related(*self.prefetch) if self.prefetch else qs

    def visible(self, user: Any) -> QuerySet[Any]:
        return self.loaded(access.visible(user, self.model))


def record_router(resource: RecordResource) -> Router:
    """The router of one record resource, with the five routes every record has."""
    r = resource
    router = Router(tags=[r.module.capitalize()])
    op = f"crmail_api_{r.module}_"
    one = f"{r.article} {r.singular}"

    def list_records(request: HttpRequest, filters: Query[r.filters]) -> dict:  # type: ignore[name-defined]
        qs = records.filter_records(r.visible(current_user(request)), filters, r.search_fields)
        qs = records.order(r.narrow(qs, filters), filters.ordering, r.ordering)
        return records.page(qs, filters)

    def create_record(request: HttpRequest, payload: r.schema_in) -> Any:  # type: ignore[name-defined]
        record = records.create(current_user(request), r.module, payload.model_dump())
        return records.reload(r.loaded(r.model.objects.all()), record)

    def read_record(request: HttpRequest, id: Id) -> Any:
        return records.get_or_404(r.visible(current_user(request)), id)

    def update_record(request: HttpRequest, id: Id, payload: r.schema_patch) -> Any:  # type: ignore[name-defined]
        """Change the fields given; the others keep their values."""
        user = current_user(request)
        record = records.get_or_404(r.visible(user), id)
        records.update(user, record, payload.model_dump(exclude_unset=True))
        return records.reload(r.loaded(r.model.objects.all()), record)

    def delete_record(request: HttpRequest, id: Id) -> None:
        user = current_user(request)
        records.delete(user, records.get_or_404(r.visible(user), id))
        return None

    def list_emails(request: HttpRequest, id: Id, filters: Query[EmailFilters]) -> dict:
        user = current_user(request)
        records.get_or_404(access.visible(user, r.model), id)
        return messages.record_emails_page(request, user, r.module, id, filters)

    def read_live_email(request: HttpRequest, id: Id, mailbox_id: Id, remote_id: str) -> dict:
        user = current_user(request)
        records.get_or_404(access.visible(user, r.model), id)
        return live_mail.read(request, user, mailbox_id, remote_id, r.module, id)

    read_live_email.__doc__ = (
        f"A message on {one} asked live from a mailbox that keeps no copy (an item of its "
        "Emails list with live true), read from the provider now; nothing of it is stored. "
        "404 when you may not see it; 502 when the provider does not answer."
    )
    list_emails.__doc__ = (
        f"The mail on {one} that you may see (SPEC F5), newest first, in one of the views "
        "of SPEC F4. 404 when you may not see the record."
    )
    list_records.__doc__ = r.list_doc or f"The {r.module} you may see, a page at a time."
    create_record.__doc__ = r.create_doc or None
    router.get(
        "",
        response={200: Page[r.schema_out]},  # type: ignore[name-defined]
        openapi_extra=READ_ERRORS,
        summary=f"List {r.module}",
        operation_id=f"{op}list_{r.module}",
    )(list_records)
    router.post(
        "",
        response={201: r.schema_out},
        openapi_extra=WRITE_ERRORS,
        summary=f"Create {one}",
        operation_id=f"{op}create_{r.singular}",
    )(create_record)
    router.get(
        "/{id}",
        response={200: r.schema_out},
        openapi_extra=READ_ERRORS,
        summary=f"Read {one}",
        operation_id=f"{op}read_{r.singular}",
    )(read_record)
    router.patch(
        "/{id}",
        response={200: r.schema_out},
        openapi_extra=WRITE_ERRORS,
        summary=f"Change {one}",
        operation_id=f"{op}update_{r.singular}",
    )(update_record)
    router.delete(
        "/{id}",
        response={204: None},
        openapi_extra=WRITE_ERRORS,
        summary=f"Delete {one}",
        operation_id=f"{op}delete_{r.singular}",
    )(delete_record)
    router.get(
        "/{id}/emails",
        response={200: EmailPage},
        openapi_extra=READ_ERRORS,
        by_alias=True,
        summary=f"List the emails on {one}",
        operation_id=f"{op}list_{r.singular}_emails",
    )(list_emails)
    router.get(
        "/{id}/emails/live/{mailbox_id}/{remote_id}",
        response={200: LiveMessageOut},
        openapi_extra=LIVE_ERRORS,
        by_alias=True,
        summary=f"Read a live email on {one}",
        operation_id=f"{op}read_{r.singular}_live_email",
    )(read_live_email)
    return router
