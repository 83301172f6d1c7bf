"""The sales inbox's query string and its bulk actions."""

from __future__ import annotations

from django import forms

from crmail.mail.models import TAG_NAME_MAX
from crmail.mailboxes.inbox import STREAMS
from crmail.text_forms import CheckedTextForm

ACTIONS = {
    "read": "Mark read",
    "unread": "Mark unread",
    "flag": "Flag",
    "unflag": "Unflag",
    "archive": "Archive",
    "move": "Move",
    "delete": "Delete",
}


class InboxForm(CheckedTextForm, forms.Form):
    stream = forms.ChoiceField(
        required=False,
        choices=[("", "All"), *((s, s.capitalize()) for s in STREAMS)],
        error_messages={
            "invalid_choice": "There is no such stream: choose Deals, Contacts, "
            "Leads, Others or All."
        },
    )
    folder = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    unread = forms.BooleanField(required=False)
    tag = forms.CharField(required=False, max_length=TAG_NAME_MAX, strip=True)
    page = forms.IntegerField(required=False, min_value=1, max_value=10**6)


class InboxActionForm(CheckedTextForm, forms.Form):
    action = forms.ChoiceField(
        choices=list(ACTIONS.items()),
        error_messages={
            "required": "Choose what to do with the selected conversations.",
            "invalid_choice": "Choose what to do with the selected conversations.",
        },
    )
    conversation = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        choices=(),
        error_messages={"invalid_choice": "Choose conversations from the list."},
    )
    target = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    back = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        raw = self.data.getlist("conversation") if hasattr(self.data, "getlist") else []
        self.fields["conversation"].choices = [
            (v, v) for v in raw if isinstance(v, str) and v.isdigit() and len(v) <= 18
        ]
