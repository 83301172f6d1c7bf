"""Validation of CRM records, shared by the web UI, the API and the importer.

Each form takes the acting user: choices of related records (account, contact) are limited
to what that user may see, and the owner to active users, so no form can be used to learn
of or attach to a record the user may not see.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from crmail.crm.addresses import normalize_address, normalize_domain, split_addresses
from crmail.crm.models import (
    Account,
    Contact,
    Deal,
    EmailAddress,
    Lead,
    LeadStatus,
    Pipeline,
    Record,
    Stage,
)
from crmail.people import access
from crmail.people.models import User
from crmail.text_forms import CheckedTextForm


class RecordForm(CheckedTextForm, forms.ModelForm):
    """Base form: the acting user, an owner among active users."""

    owner = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, help_text="Defaults to you."
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["owner"].queryset = User.objects.filter(is_active=True)
        self.fields["owner"].label_from_instance = lambda u: f"{u.name} <{u.email}>"
        for name, model in (("account", Account), ("contact", Contact)):
            if name in self.fields:
                self.fields[name].queryset = access.visible(user, model)

    def clean_owner(self) -> User:
        owner = self.cleaned_data.get("owner")
        if owner is None:
            return self.instance.owner if self.instance.pk else self.user
        return owner

    def save(self, commit: bool = True) -> Record:
        record = super().save(commit=False)
        self._created = record.pk is None
        if not record.pk:
            record.created_by = self.user
        if commit:
            record.save()
            self._save_m2m()
            self.save_related(record)
        return record

    def save_related(self, record: Record) -> None:
        """Rows that hang off the record (email addresses); called after it is saved."""


class PersonForm(RecordForm):
    """Leads and Contacts: a primary address and any number of secondary ones."""

    email = forms.CharField(
        required=False, max_length=254, label="Email", help_text="The primary address."
    )
    secondary_emails = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Other emails",
        help_text="Secondary addresses, separated by commas or new lines.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["email"] = self.instance.primary_email
            self.initial["secondary_emails"] = ", ".join(self.instance.secondary_emails)

    def clean_email(self) -> str:
        raw = self.cleaned_data.get("email", "")
        return normalize_address(raw) if raw and raw.strip() else ""

    def clean_secondary_emails(self) -> list[str]:
        raw = self.cleaned_data.get("secondary_emails")
        addresses: list[str] = []
        errors: list[str] = []
        for item in split_addresses(raw):
            try:
                address = normalize_address(item)
            except ValidationError as exc:
                errors.extend(exc.messages)
                continue
            if address not in addresses:
                addresses.append(address)
        if errors:
            raise ValidationError(errors)
        return addresses

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        primary = data.get("email")
        if "secondary_emails" in data:
            data["secondary_emails"] = [a for a in data["secondary_emails"] if a != primary]
            if data["secondary_emails"] and not primary and "email" not in self.errors:
                self.add_error("email", "Give a primary address before secondary ones.")
        return data

    def save_related(self, record: Record) -> None:
        wanted: list[tuple[str, bool]] = []
        if self.cleaned_data.get("email"):
            wanted.append((self.cleaned_data["email"], True))
        wanted += [(a, False) for a in self.cleaned_data.get("secondary_emails", [])]
        if self._created:
            link = {record._meta.model_name: record}  # EmailAddress.contact or .lead
            EmailAddress.objects.bulk_create(
                [EmailAddress(address=a, is_primary=p, **link) for a, p in wanted]
            )
            return
        existing = {e.address: e for e in record.emails.all()}
        keep = {address for address, _ in wanted}
        record.emails.exclude(address__in=keep).delete()
        # Demote first so the one-primary constraint holds at every step.
        record.emails.filter(is_primary=True).exclude(
            address=self.cleaned_data.get("email")
        ).update(is_primary=False)
        for address, primary in wanted:
            row = existing.get(address)
            if row is None:
                record.emails.create(address=address, is_primary=primary)
            elif row.is_primary != primary:
                record.emails.filter(pk=row.pk).update(is_primary=primary)


def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA time zone name, after "unknown"."""
    return [("", "Unknown (the organisation's)"), *_time_zones()]


@functools.cache
def _time_zones() -> tuple[tuple[str, str], ...]:
    """The time zones of ``time_zone_choices``, read once: ``available_timezones`` walks
    the time zone database's files on every call (about 15 ms, twice a contact form)."""
    return tuple((name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones()))


class LongSelect(forms.Select):
    """A select of many plain options (no groups), written out in Python as Django's own
    templates write it (``select.html``, ``select_option.html``, ``attrs.html``): a
    template per option took about 35 ms for the 600 time zones of every contact form."""

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        options = []
        for group_name, group, _ in widget["optgroups"]:
            if group_name:  # groups: Django's templates, as they are
                return super().render(name, value, attrs, renderer)
            options += [
                format_html(
                    '\n  <option value="{}"{}>{}</option>\n',  # the template's own line end
                    str(option["value"]),
                    _attributes(option["attrs"]),
                    option["label"],
                )
                for option in group
            ]
        return format_html(
            '<select name="{}"{}>{}\n</select>',
            widget["name"],
            _attributes(widget["attrs"]),
            mark_safe("".join(options)),  # noqa: S308 (each one built by format_html)
        )


def _attributes(attrs: dict[str, Any]) -> SafeString:
    """``attrs.html``: `` name="value"``, a bare `` name`` for True, nothing for False."""
    return mark_safe(  # noqa: S308 (each one built by format_html)
        "".join(
            format_html(" {}", key) if value is True else format_html(' {}="{}"', key, str(value))
            for key, value in attrs.items()
            if value is not False
        )
    )


class ContactForm(PersonForm):
    time_zone = forms.ChoiceField(
        label="Time zone", required=False, choices=time_zone_choices, widget=LongSelect
    )

    class Meta:
        model = Contact
        fields = [
            "first_name",
            "last_name",
            "email",
            "secondary_emails",
            "account",
            "title",
            "phone",
            "mobile",
            "time_zone",
            "owner",
            "description",
        ]


class LeadForm(PersonForm):
    class Meta:
        model = Lead
        fields = [
            "first_name",
            "last_name",
            "email",
            "secondary_emails",
            "company",
            "title",
            "status",
            "source",
            "phone",
            "mobile",
            "owner",
            "description",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].required = False

    def clean_status(self) -> str:
        return self.cleaned_data.get("status") or self.instance.status or LeadStatus.NEW


class AccountForm(RecordForm):
    class Meta:
        model = Account
        fields = ["name", "website", "domain", "phone", "industry", "owner", "description"]

    def clean_domain(self) -> str:
        domain = normalize_domain(self.cleaned_data.get("domain", ""))
        if not domain:
            domain = normalize_domain(self.cleaned_data.get("website", ""))
        if domain and ("." not in domain or " " in domain):
            raise ValidationError(f"{domain!r} is not a web domain (like example.com).")
        return domain


class DealForm(RecordForm):
    pipeline = forms.ModelChoiceField(
        queryset=Pipeline.objects.all(),
        required=False,
        help_text="Defaults to the default pipeline.",
    )
    closing_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    class Meta:
        model = Deal
        fields = [
            "name",
            "pipeline",
            "stage",
            "amount",
            "closing_date",
            "contact",
            "account",
            "owner",
            "description",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stage"].queryset = Stage.objects.select_related("pipeline")
        self.fields["stage"].required = False
        self.fields["stage"].help_text = "Defaults to the pipeline's first stage."

    def clean_pipeline(self) -> Pipeline:
        pipeline = self.cleaned_data.get("pipeline")
        if pipeline is None:
            pipeline = self.instance.pipeline if self.instance.pipeline_id else None
        if pipeline is None:
            pipeline = Pipeline.objects.filter(is_default=True).first() or Pipeline.objects.first()
        if pipeline is None:
            raise ValidationError("No pipeline exists yet; an administrator must create one.")
        return pipeline

    def clean_amount(self) -> Any:
        amount = self.cleaned_data.get("amount")
        if amount is not None and amount < 0:
            raise ValidationError("The amount cannot be negative.")
        return amount

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        pipeline, stage = data.get("pipeline"), data.get("stage")
        if stage is None and "stage" not in self.errors:
            stage = self.instance.stage if self.instance.stage_id else None
            if stage is None and pipeline is not None:
                stage = pipeline.stages.order_by("position", "pk").first()
            if stage is None:
                self.add_error("stage", "Choose a stage.")
            data["stage"] = stage
        if pipeline and stage and stage.pipeline_id != pipeline.pk:
            self.add_error("stage", f"Stage {stage.name!r} is not in pipeline {pipeline.name!r}.")
        return data


FORMS: dict[str, type[RecordForm]] = {
    "leads": LeadForm,
    "contacts": ContactForm,
    "accounts": AccountForm,
    "deals": DealForm,
}


def form_errors(form: forms.BaseForm) -> list[dict[str, str]]:
    """A form's errors as ``[{"field": …, "message": …}]`` (``__all__`` for the record)."""
    return [
        {"field": field, "message": str(message)}
        for field, messages in form.errors.items()
        for message in messages
    ]
