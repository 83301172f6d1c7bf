"""The only writers of CRM records: validate, check access, write in one transaction.

The web UI, the API and the importer each call these with the acting user and plain
field data; validation errors come back as ``RecordInvalid`` with the field names.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict

from crmail.crm.forms import FORMS, PersonForm, RecordForm, form_errors
from crmail.crm.models import Deal, PersonRecord, Record, Task
from crmail.events import outbox
from crmail.events.kinds import DealStageChanged, RecordCreated, RecordDeleted, RecordUpdated
from crmail.people import access
from crmail.people.models import User


class RecordInvalid(Exception):
    """The data does not make a valid record; ``errors`` lists ``{"field", "message"}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class NotAllowed(Exception):
    """The user may not do this (callers answer 404 where existence must not show)."""


def bind_form(
    user: User, module: str, data: dict[str, Any], instance: Record | None = None
) -> RecordForm:
    """The module's form bound to ``data`` (merged over ``instance`` for partial updates)."""
    form_class = FORMS[module]
    if instance is not None:
        base = current_values(instance, form_class)
        data = {**base, **{k: v for k, v in data.items() if k in form_class.base_fields}}
    return form_class(data=data, user=user, instance=instance)


def current_values(instance: Record, form_class: type[RecordForm]) -> dict[str, Any]:
    """The form data that reproduces ``instance`` as it is."""
    values = model_to_dict(instance, fields=list(form_class.base_fields))
    if issubclass(form_class, PersonForm):
        values["email"] = instance.primary_email
        values["secondary_emails"] = ", ".join(instance.secondary_emails)
    return {k: ("" if v is None else v) for k, v in values.items()}


def save_form(user: User, form: RecordForm) -> Record:
    """Check access, validate and save a bound record form in one transaction."""
    instance = form.instance
    if instance.pk is None:
        if not access.can_create(user, type(instance)):
            raise NotAllowed(f"You may not create {instance.MODULE}.")
    elif not access.can(user, instance, "edit"):
        raise NotAllowed("You may not edit this record.")
    before = _Before(instance, type(form))
    if not form.is_valid():
        raise RecordInvalid(form_errors(form))
    with transaction.atomic():
        record = form.save()
        _record_changes(user, record, before, form)
    return record


class _Before:
    """What the events of a save compare with: the stored addresses and stage."""

    def __init__(self, instance: Record, form_class: type[RecordForm]) -> None:
        self.new = instance.pk is None
        self.addresses: set[str] = set()
        self.stage_id: int | None = None
        self.values: dict[str, Any] = {}
        if self.new:
            return
        stored = type(instance).objects.get(pk=instance.pk)
        self.values = current_values(stored, form_class)
        if isinstance(instance, PersonRecord):
            self.addresses = set(instance.emails.values_list("address", flat=True))
        if isinstance(instance, Deal):
            self.stage_id = Deal.objects.filter(pk=instance.pk).values_list("stage_id", flat=True)[
                0
            ]


def _record_changes(user: User, record: Record, before: _Before, form: RecordForm) -> None:
    """Record what the save did (``record.created``/``record.updated``, the address changes
    linking follows, ``deal.stage_changed``) in the save's transaction."""
    module, pk = record.MODULE, record.pk
    added: set[str] = set()
    removed: set[str] = set()
    if isinstance(record, PersonRecord):
        data = form.cleaned_data
        now = {a for a in [data.get("email"), *data.get("secondary_emails", [])] if a}
        added, removed = now - before.addresses, before.addresses - now
    if before.new:
        outbox.record(
            RecordCreated(
                module=module,
                record_id=pk,
                owner_id=record.owner_id,
                actor_id=user.pk,
                addresses=sorted(added),
            )
        )
        return
    after = current_values(record, type(form))
    changed = sorted(k for k, v in after.items() if before.values.get(k) != v)
    if not changed and not added and not removed:
        return
    events: list = [
        RecordUpdated(
            module=module,
            record_id=pk,
            actor_id=user.pk,
            fields=changed,
            addresses_added=sorted(added),
            addresses_removed=sorted(removed),
        )
    ]
    if isinstance(record, Deal) and record.stage_id != before.stage_id:
        events.append(
            DealStageChanged(
                deal_id=pk,
                from_stage_id=before.stage_id,
                to_stage_id=record.stage_id,
                actor_id=user.pk,
            )
        )
    outbox.record_many(events)


def create_record(user: User, module: str, data: dict[str, Any]) -> Record:
    """Create a ``module`` record owned by ``data['owner']`` or ``user``."""
    return save_form(user, bind_form(user, module, data))


def update_record(user: User, record: Record, data: dict[str, Any]) -> Record:
    """Change the fields given in ``data``; the others keep their values."""
    return save_form(user, bind_form(user, record.MODULE, data, instance=record))


def delete_record(user: User, record: Record) -> None:
    if not access.can(user, record, "delete"):
        raise NotAllowed("You may not delete this record.")
    module, pk = record.MODULE, record.pk
    with transaction.atomic():
        record.delete()
        Task.objects.filter(module=module, record_id=pk).delete()  # named, not a foreign key
        outbox.record(RecordDeleted(module=module, record_id=pk, actor_id=user.pk))
