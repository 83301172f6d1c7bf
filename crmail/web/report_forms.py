"""The Reports page's fields: what the rows are, and which mail is counted (SPEC F17)."""

from __future__ import annotations

from typing import Any

from django import forms

from crmail.intelligence import queries as intelligence
from crmail.people.models import Role, User
from crmail.reports import queries
from crmail.reports.models import NAME_MAX, Schedule
from crmail.text_forms import CheckedTextForm


class ReportForm(CheckedTextForm, forms.Form):
    group_by = forms.ChoiceField(
        choices=list(queries.GROUPS.items()), initial="month", label="Group by"
    )
    after = forms.DateField(
        required=False, label="On or after", widget=forms.DateInput(attrs={"type": "date"})
    )
    before = forms.DateField(
        required=False, label="Before", widget=forms.DateInput(attrs={"type": "date"})
    )
    source = forms.ChoiceField(
        required=False,
        choices=[("", "Any source"), *queries.SOURCES.items()],
        label="Source",
    )
    sentiment = forms.ChoiceField(
        required=False,
        choices=[("", "Any sentiment"), *intelligence.SENTIMENTS.items()],
        label="Sentiment",
    )
    intent = forms.ChoiceField(
        required=False,
        choices=[("", "Any intent"), *intelligence.INTENTS.items()],
        label="Intent",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            queries.check(data["group_by"], self.filters())
        except queries.BadReport as bad:
            self.add_error(bad.field if bad.field in self.fields else None, str(bad))
        return data

    def filters(self) -> queries.Filters:
        data = self.cleaned_data
        return queries.Filters(
            after=data.get("after"),
            before=data.get("before"),
            source=data.get("source") or None,
            sentiment=data.get("sentiment") or None,
            intent=data.get("intent") or None,
        )


class SaveReportForm(ReportForm):
    """The report shown, saved under a name and shared with chosen users and roles."""

    name = forms.CharField(max_length=NAME_MAX, label="Name")
    share_users = forms.ModelMultipleChoiceField(
        label="Share with users",
        queryset=User.objects.filter(is_active=True).order_by("name", "email"),
        required=False,
        error_messages={
            "invalid_choice": "%(value)s is not an active user to share with.",
            "invalid_pk_value": "%(pk)s is not a user.",
        },
    )
    schedule = forms.ChoiceField(
        choices=Schedule.choices,
        required=False,
        label="Mail it to me",
        help_text="The period just ended, from crmail's own mail.",
    )
    share_roles = forms.ModelMultipleChoiceField(
        label="Share with roles",
        queryset=Role.objects.order_by("name"),
        required=False,
        error_messages={
            "invalid_choice": "%(value)s is not a role.",
            "invalid_pk_value": "%(pk)s is not a role.",
        },
    )
