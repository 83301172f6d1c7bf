"""The storage page's form: the storage an administrator adds to the quota (SPEC F11)."""

from __future__ import annotations

from django import forms

from crmail.mailboxes.quota import MAX_EXTRA_GB
from crmail.text_forms import CheckedTextForm


class ExtraForm(CheckedTextForm, forms.Form):
    extra_gb = forms.IntegerField(
        label="Storage added (GB)",
        min_value=0,
        max_value=MAX_EXTRA_GB,
        help_text="Whole gigabytes added to the quota (1 GB is 10^9 bytes); 0 adds none.",
        error_messages={
            "invalid": "Give a whole number of gigabytes, such as 20.",
            "required": "Give a whole number of gigabytes (0 adds none).",
            "min_value": "Give 0 or more gigabytes.",
            "max_value": f"Add at most {MAX_EXTRA_GB:,} GB.",
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": "1"}),
    )
