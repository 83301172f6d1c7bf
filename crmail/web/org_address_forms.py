"""The organisation address forms (SPEC F16): the address, its name and who may send as
it; the code mailed to it. ``crmail.orgaddresses.actions`` checks and writes; its
refusals show beside the fields they name."""

from __future__ import annotations

from typing import Any

from django import forms

from crmail.orgaddresses.models import OrganisationAddress
from crmail.people.models import Profile
from crmail.text_forms import CheckedTextForm
from crmail.web.forms import ActionErrors


class OrgAddressForm(ActionErrors, CheckedTextForm, forms.Form):
    address = forms.CharField(
        label="Address",
        max_length=254,
        help_text="A shared address of the organisation, such as sales@example.com. A code "
        "is mailed to it: someone who reads its mail enters the code here.",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    name = forms.CharField(
        label="Name",
        required=False,
        max_length=200,
        help_text="The name mail sent as it carries, such as Acme Sales; empty: the "
        "sender's own name.",
    )
    everyone = forms.BooleanField(label="Everyone may send as it", required=False)
    profiles = forms.ModelMultipleChoiceField(
        label="Or the users of these profiles",
        queryset=Profile.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Administrators may always send as a verified address.",
    )
    # Shown with the address's fields so that the submit says what it does.
    field_order = ["address", "name", "everyone", "profiles"]

    def __init__(self, *args: Any, instance: OrganisationAddress | None = None, **kwargs: Any):
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "address": instance.address,
                "name": instance.name,
                "everyone": instance.everyone,
                "profiles": list(instance.profiles.all()),
            }
        super().__init__(*args, **kwargs)
        # Administrator profiles may use every address already: not offered.
        self.fields["profiles"].queryset = Profile.objects.filter(is_admin=False)  # type: ignore[attr-defined]

    def values(self) -> dict[str, Any]:
        """The cleaned fields as ``actions.add`` and ``actions.change`` take them."""
        data = self.cleaned_data
        return {
            "address": data["address"],
            "name": data["name"],
            "everyone": data["everyone"],
            "profile_ids": [p.pk for p in data["profiles"]],
        }


class CodeForm(ActionErrors, CheckedTextForm, forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=20,
        error_messages={"required": "Enter the code mailed to the address."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )
