"""The only writers of CRM records: validate, check access, write in one transaction.

The web UI, the API and the importer each call these with the acting user and plain
field data; validation errors come back as ``RecordInvalid`` with the field names.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.forms.models import model_to_dict

from crmail.crm.forms import FORMS, PersonForm, RecordForm, form_errors
from crmail.crm.models import Contact, PersonRecord, Record
from crmail.people import access
from crmail.people.models import User


class RecordInvalid(Exception):
    """The data does not make a valid record; ``errors`` lists ``{"field", "message"}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class NotAllowed(Exception):
    """The user may not do this (callers answer 404 where existence must not show)."""


# Events sent after the transaction commits, for later layers (linking subscribes; crm
# imports none of them). Keyword arguments as listed; ``sender`` is the record's model.
addresses_changed = Signal()  # module, record_id, added: set[str], removed: set[str]
record_deleted = Signal()  # module, record_id
contact_account_changed = Signal()  # record_id, old_account_id, new_account_id


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
    before = _linked_state(instance)
    if not form.is_valid():
        raise RecordInvalid(form_errors(form))
    with transaction.atomic():
        record = form.save()
        _emit_changes(record, before, form)
    return record


def _linked_state(instance: Record) -> tuple[set[str], int | None]:
    """What later layers follow, as stored: a person's addresses, a contact's account."""
    if instance.pk is None or not isinstance(instance, PersonRecord):
        return set(), None
    addresses = set(instance.emails.values_list("address", flat=True))
    account_id = None
    if isinstance(instance, Contact):
        account_id = Contact.objects.filter(pk=instance.pk).values_list("account_id", flat=True)[0]
    return addresses, account_id


def _emit_changes(record: Record, before: tuple[set[str], int | None], form: RecordForm) -> None:
    if not isinstance(record, PersonRecord):
        return
    old_addresses, old_account = before
    data = form.cleaned_data
    new_addresses = {a for a in [data.get("email"), *data.get("secondary_emails", [])] if a}
    added, removed = new_addresses - old_addresses, old_addresses - new_addresses
    kind, pk = type(record), record.pk
    if added or removed:
        transaction.on_commit(
            lambda: addresses_changed.send(
                kind, module=kind.MODULE, record_id=pk, added=added, removed=removed
            ),
            robust=True,
        )
    if isinstance(record, Contact) and record.account_id != old_account:
        old, new = old_account, record.account_id
        transaction.on_commit(
            lambda: contact_account_changed.send(
                kind, record_id=pk, old_account_id=old, new_account_id=new
            ),
            robust=True,
        )


def create_record(user: User, module: str, data: dict[str, Any]) -> Record:
    """Create a ``module`` record owned by ``data['owner']`` or ``user``."""
    return save_form(user, bind_form(user, module, data))


def update_record(user: User, record: Record, data: dict[str, Any]) -> Record:
    """Change the fields given in ``data``; the others keep their values."""
    return save_form(user, bind_form(user, record.MODULE, data, instance=record))


def delete_record(user: User, record: Record) -> None:
    if not access.can(user, record, "delete"):
        raise NotAllowed("You may not delete this record.")
    kind, pk = type(record), record.pk
    with transaction.atomic():
        record.delete()
        transaction.on_commit(
            lambda: record_deleted.send(kind, module=kind.MODULE, record_id=pk), robust=True
        )
