"""The forms of a user's account page: details and signature, password, a new API token.

They shape input; ``crmail.people.actions`` validates and writes, and its refusals come
back beside the fields they name.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation

from crmail.people import actions as people_actions
from crmail.text_forms import CheckedTextForm
from crmail.web.forms import ActionErrors


class AccountForm(ActionErrors, CheckedTextForm, forms.Form):
    name = forms.CharField(label="Name", max_length=people_actions.NAME_MAX)
    signature = forms.CharField(
        label="Email signature",
        required=False,
        strip=False,
        max_length=people_actions.SIGNATURE_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Added below each new email you write in crmail; you can still edit it there.",
    )


class ReadingForm(CheckedTextForm, forms.Form):
    mark_read_on_open = forms.BooleanField(
        label="Mark mail read when I open it in crmail",
        required=False,
        help_text="On your mail server too, so your other mail programs show it read.",
    )


class DigestForm(CheckedTextForm, forms.Form):
    daily_digest = forms.BooleanField(
        label="Send me a daily mail of unread customer mail",
        required=False,
        help_text="Once a day, the mail from leads and contacts you have not read in crmail "
        "yet, sent through your own mailbox to its own address. Nothing is sent on a day "
        "with nothing unread.",
    )


class PasswordForm(ActionErrors, CheckedTextForm, forms.Form):
    current = forms.CharField(
        label="Current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    again = forms.CharField(
        label="New password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class TokenForm(ActionErrors, CheckedTextForm, forms.Form):
    name = forms.CharField(
        label="Token name",
        required=False,
        max_length=people_actions.TOKEN_NAME_MAX,
        help_text="To recognise it later, such as the script or laptop that uses it.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "token")
        super().__init__(*args, **kwargs)
