"""The forms of email templates: the editor (with the record to preview against) and the
composer's "Use template" choice.

They shape input; ``crmail.emailtemplates.actions`` validates and writes, and its refusals
come back beside the fields they name. A preview is filled by
``crmail.emailtemplates.merge`` for a record the user may view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from crmail.crm.models import RECORD_MODELS
from crmail.emailtemplates import actions, merge
from crmail.emailtemplates.models import BODY_MAX, NAME_MAX, SUBJECT_MAX, EmailTemplate
from crmail.people import access
from crmail.people.models import User
from crmail.text_forms import CheckedTextForm
from crmail.web.forms import ActionErrors

RECORDS_OFFERED = 25  # per module, the most recently changed, in the preview's choice
MODULE_LABELS = {"contacts": "Contacts", "leads": "Leads", "accounts": "Accounts", "deals": "Deals"}


def record_choices(user: User, also: str = "") -> list[tuple[str, Any]]:
    """The records to preview against: the latest the user may view in each module, and
    ``also`` (``contacts:12``) when it is one they may view."""
    choices: list[tuple[str, Any]] = [("", "No record (only your own fields)")]
    wanted = merge.parse_record_ref(also) if also else None
    for module, model in RECORD_MODELS.items():
        rows = list(access.visible(user, model).order_by("-modified_at", "-pk")[:RECORDS_OFFERED])
        if wanted and wanted[0] == module and all(r.pk != wanted[1] for r in rows):
            extra = merge.find_record(user, module, wanted[1])
            if extra is not None:
                rows.insert(0, extra)
        if rows:
            choices.append(
                (MODULE_LABELS[module], [(f"{module}:{r.pk}", str(r) or f"#{r.pk}") for r in rows])
            )
    return choices


class TemplateForm(ActionErrors, CheckedTextForm, forms.Form):
    name = forms.CharField(label="Name", required=False, max_length=NAME_MAX)
    subject = forms.CharField(label="Subject", required=False, max_length=SUBJECT_MAX)
    body = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Plain text. Merge fields, such as {{Contact.first_name}}, are filled in "
        "for the record you write from; the list is beside the editor.",
    )
    shared = forms.BooleanField(
        label="Shared: everyone may use it (only you and administrators may change it)",
        required=False,
    )
    record = forms.ChoiceField(label="Preview for", required=False)

    def __init__(self, *args: Any, user: User, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        also = str(self.data.get("record", "") or self.initial.get("record", ""))
        self.fields["record"].choices = record_choices(user, also)
        if read_only:
            for name in ("name", "subject", "body", "shared"):
                self.fields[name].disabled = True

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {k: data.get(k, "") for k in ("name", "subject", "body", "shared")}


@dataclass
class Preview:
    subject: str = ""
    body: str = ""
    error: str = ""
    record_label: str = ""


def preview(user: User, subject: str, body: str, record: str) -> Preview:
    """The template filled for ``record`` (``contacts:12``, empty for none) as ``user``."""
    found = None
    if record:
        ref = merge.parse_record_ref(record)
        found = merge.find_record(user, *ref) if ref else None
        if found is None:
            return Preview(error="That record is not one you may see; choose another.")
    label = f"{type(found).__name__.lower()} {found}" if found is not None else ""
    try:
        done = merge.render_template(subject, body, merge.records_for(user, found))
    except merge.MergeError as exc:
        return Preview(error=str(exc), record_label=label)
    return Preview(subject=done.subject, body=done.body, record_label=label)


class TemplatePickForm(CheckedTextForm, forms.Form):
    """The composer's choice of a template (any the user may use)."""

    template = forms.ModelChoiceField(
        label="Use template",
        queryset=EmailTemplate.objects.none(),
        required=False,
        empty_label="Choose a template…",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = actions.readable(user).order_by("name", "pk")  # type: ignore[attr-defined]
