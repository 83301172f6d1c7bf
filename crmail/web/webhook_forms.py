"""The webhook endpoint form: a URL and the kinds of events, as checkboxes grouped by what
they are about. ``crmail.webhooks.actions`` checks and writes; its refusals show beside
the fields they name."""

from __future__ import annotations

from typing import Any

from django import forms

from crmail.text_forms import CheckedTextForm
from crmail.web.forms import ActionErrors
from crmail.webhooks import actions


class EndpointForm(ActionErrors, CheckedTextForm, forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="Where crmail POSTs each event, e.g. https://hooks.example.com/crmail.",
        widget=forms.URLInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    kinds = forms.MultipleChoiceField(
        label="Events",
        choices=[],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one kind of event."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kinds"].choices = [(k, k) for k in actions.kinds()]  # type: ignore[attr-defined]

    def clean_url(self) -> str:
        try:
            return actions.check(self.cleaned_data["url"], None)["url"]
        except actions.Invalid as exc:
            raise forms.ValidationError(exc.errors[0]["message"]) from None

    def groups(self) -> list[tuple[str, list[tuple[str, bool]]]]:
        """The kinds, grouped, each with whether it is ticked (for the template)."""
        if self.is_bound:
            chosen = set(self.data.getlist("kinds") if hasattr(self.data, "getlist") else [])
        else:
            chosen = set(self.initial.get("kinds", []))
        return [
            (group, [(k, k in chosen) for k in names]) for group, names in actions.kind_groups()
        ]
