"""The mail sharing form (SPEC F5): one form for the administrators' page of a user and for
a user's own page.

The form shapes input; ``crmail.sharing.actions.set_sharing`` validates and writes, and its
refusals come back as errors beside the fields they name.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from crmail.people import actions as people_actions
from crmail.people.models import Group, User
from crmail.sharing import actions
from crmail.sharing.models import Audience, Mode, SharingSetting
from crmail.text_forms import CheckedTextForm

# Domains are written one per line or separated by commas (or spaces, or semicolons).
DOMAIN_SEPARATORS = re.compile(r"[\s,;]+")
MAX_DOMAINS = 200
MAX_DOMAINS_TEXT = 20_000

# The writer's field names, as this form names them.
FORM_FIELDS = {
    "mode": "mode",
    "audience": "audience",
    "share_with": "share_users",
    "excluded_domains": "excluded_domains",
}

# The modes in the same words as the mailbox connect form and the organisation default.
MODE_HELP = format_html(
    "{} Mail sent from crmail is always shared.",
    format_html_join(
        " ",
        "<strong>{}</strong>: {}",
        ((mode.label, meaning) for mode, meaning in actions.MODE_MEANINGS.items()),
    ),
)


def _user_label(user: User) -> str:
    return f"{user.name} <{user.email}>" if user.name else user.email


def split_domains(text: str) -> list[str]:
    """``"acme.com, b.org\\nc.net"`` → ``["acme.com", "b.org", "c.net"]`` (empty parts dropped)."""
    return [part for part in DOMAIN_SEPARATORS.split(text or "") if part]


class SharingForm(CheckedTextForm, forms.Form):
    """How ``owner``'s synced mail is shared. ``read_only`` shows it without letting it change
    (a setting an administrator locked, seen by its owner)."""

    mode = forms.ChoiceField(
        label="Mode",
        choices=Mode.choices,
        widget=forms.RadioSelect,
        help_text=MODE_HELP,
        error_messages={
            "invalid_choice": "Choose Private, Public or Custom.",
            "required": "Choose Private, Public or Custom.",
        },
    )
    audience = forms.ChoiceField(
        label="Public mail is shared with",
        choices=Audience.choices,
        widget=forms.RadioSelect,
        help_text="Managers above the owner in the role hierarchy always see what is shared.",
        error_messages={
            "invalid_choice": "Choose everyone who can access the record, or only chosen users "
            "and groups.",
            "required": "Choose everyone who can access the record, or only chosen users "
            "and groups.",
        },
    )
    share_users = forms.ModelMultipleChoiceField(
        label="Chosen users",
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Used when public mail is shared with chosen users and groups only.",
        error_messages={
            "invalid_choice": "%(value)s is not an active user to share with.",
            "invalid_pk_value": "%(pk)s is not a user.",
        },
    )
    share_groups = forms.ModelMultipleChoiceField(
        label="Chosen groups",
        queryset=Group.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "invalid_choice": "%(value)s is not a group.",
            "invalid_pk_value": "%(pk)s is not a group.",
        },
    )
    excluded_domains = forms.CharField(
        label="Excluded domains",
        required=False,
        max_length=MAX_DOMAINS_TEXT,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocapitalize": "none"}),
        help_text="One domain a line, or separated by commas. In public mode, mail whose other "
        "participants are all at these domains (or their subdomains) stays private: "
        "excluding your own domain keeps mail between colleagues private.",
    )

    def __init__(
        self,
        data: Any = None,
        *,
        owner: User,
        setting: SharingSetting | None,
        read_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(data, initial=initial_values(owner, setting), **kwargs)
        self.owner = owner
        self.read_only = read_only
        users = self.fields["share_users"]
        users.queryset = (  # type: ignore[attr-defined]
            User.objects.filter(is_active=True).exclude(pk=owner.pk).order_by("name", "email")
        )
        users.label_from_instance = _user_label  # type: ignore[attr-defined]
        self.fields["share_groups"].queryset = Group.objects.order_by("name")  # type: ignore[attr-defined]
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def clean_excluded_domains(self) -> list[str]:
        domains = split_domains(self.cleaned_data.get("excluded_domains", ""))
        if len(domains) > MAX_DOMAINS:
            raise ValidationError(f"Exclude at most {MAX_DOMAINS} domains.")
        return domains

    def missing_suggestions(self) -> list[str]:
        """The owner's own domains that are not excluded (yet) in what the form shows."""
        if self.is_bound and not self.read_only:
            shown = self.data.get("excluded_domains", "")
        else:
            shown = self.initial.get("excluded_domains", "")
        current = {actions.normalise_domain(d) for d in split_domains(shown)}
        return [d for d in actions.suggested_excluded_domains(self.owner) if d not in current]

    def with_suggestions(self) -> SharingForm:
        """The same posted form with the owner's own domains added to the excluded ones
        (not saved: the user reviews, then saves)."""
        data = self.data.copy()
        missing = self.missing_suggestions()
        text = data.get("excluded_domains", "").rstrip()
        data["excluded_domains"] = "\n".join([text, *missing] if text else missing)
        return SharingForm(data, owner=self.owner, setting=None, read_only=self.read_only)

    def add_action_errors(self, exc: people_actions.Invalid) -> None:
        """The writer's refusals beside the fields they name, the others at the top."""
        for error in exc.errors:
            field = FORM_FIELDS.get(error.get("field") or "")
            self.add_error(field if field in self.fields else None, error["message"])

    def save(self, actor: User) -> SharingSetting:
        """Through the shared writer; raises ``Invalid`` or ``NotAllowed`` as it does."""
        data = self.cleaned_data
        return actions.set_sharing(
            actor,
            self.owner,
            mode=data["mode"],
            audience=data["audience"],
            share_with=[*data["share_users"], *data["share_groups"]],
            excluded_domains=data["excluded_domains"],
        )


def initial_values(owner: User, setting: SharingSetting | None) -> dict[str, Any]:
    """What the form shows before a change; a user without a setting shares nothing."""
    if setting is None:
        return {
            "mode": Mode.PRIVATE,
            "audience": Audience.EVERYONE,
            "share_users": [],
            "share_groups": [],
            "excluded_domains": "",
        }
    targets = list(setting.targets.select_related("user"))
    return {
        "mode": setting.mode,
        "audience": setting.audience,
        # Deactivated users cannot be chosen again; saving drops them.
        "share_users": [
            t.user_id for t in targets if t.user_id and t.user.is_active and t.user_id != owner.pk
        ],
        "share_groups": [t.group_id for t in targets if t.group_id],
        "excluded_domains": "\n".join(setting.excluded_domains.values_list("domain", flat=True)),
    }
