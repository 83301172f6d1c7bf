"""The forms of email authentication's pages: a domain and the address its code goes to;
the code. ``crmail.domains.actions`` checks and writes; its refusals show beside the
fields they name."""

from __future__ import annotations

from django import forms

from crmail.domains import actions
from crmail.text_forms import CheckedTextForm


class ActionRefusal:
    """Show an ``actions.Invalid`` beside the field it names (else on top)."""

    def add_refusal(self, exc: actions.Invalid) -> None:
        field = exc.field if exc.field in self.fields else None  # type: ignore[attr-defined]
        self.add_error(field, str(exc))  # type: ignore[attr-defined]


class DomainForm(ActionRefusal, CheckedTextForm, forms.Form):
    domain = forms.CharField(
        label="Domain",
        max_length=253,
        help_text="The part after the @ of your team's addresses, such as example.com.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    address = forms.CharField(
        label="Send the code to",
        max_length=254,
        help_text="An address at that domain you can read, such as postmaster@example.com: "
        "crmail mails a code there to prove the domain is yours.",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class CodeForm(ActionRefusal, CheckedTextForm, forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=20,
        help_text="The six digits in the mail.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": "8"}
        ),
    )


class ResendForm(ActionRefusal, CheckedTextForm, forms.Form):
    address = forms.CharField(
        label="Send a new code to",
        max_length=254,
        required=False,
        help_text="Empty: the same address again.",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
