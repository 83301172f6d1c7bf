"""The fields of a task on the record page and on its edit page."""

from __future__ import annotations

from typing import Any

from django import forms

from crmail.crm.actions import RecordInvalid
from crmail.crm.models import TASK_NOTES_MAX, TASK_TITLE_MAX
from crmail.people.models import User
from crmail.text_forms import CheckedTextForm


class TaskForm(CheckedTextForm, forms.Form):
    title = forms.CharField(max_length=TASK_TITLE_MAX, label="What is to be done")
    due = forms.DateField(label="Due", widget=forms.DateInput(attrs={"type": "date"}))
    owner = forms.ModelChoiceField(queryset=User.objects.none(), label="For", empty_label=None)
    notes = forms.CharField(
        required=False,
        max_length=TASK_NOTES_MAX,
        label="Notes",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["owner"]
        field.queryset = User.objects.filter(is_active=True).order_by("name", "email")  # type: ignore[attr-defined]
        field.label_from_instance = lambda u: u.name or u.email  # type: ignore[attr-defined]

    def add_refusal(self, refusal: RecordInvalid) -> None:
        """The writer's refusal, each problem on its field (the others on the form)."""
        for error in refusal.errors:
            name = error["field"]
            self.add_error(name if name in self.fields else None, error["message"])
