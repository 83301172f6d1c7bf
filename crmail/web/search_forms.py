"""The search page's fields: the query, and the filters a mail client offers beside it."""

from __future__ import annotations

from django import forms

from crmail.text_forms import CheckedTextForm


class SearchForm(CheckedTextForm, forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    sender = forms.CharField(required=False, max_length=200, label="From")
    to = forms.CharField(required=False, max_length=200, label="To")
    after = forms.DateField(
        required=False, label="On or after", widget=forms.DateInput(attrs={"type": "date"})
    )
    before = forms.DateField(
        required=False, label="Before", widget=forms.DateInput(attrs={"type": "date"})
    )
    has_attachment = forms.BooleanField(required=False, label="Has attachment")
    unread = forms.BooleanField(required=False, label="Unread")
