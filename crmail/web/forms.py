"""Forms of the web UI: sign-in, and the administrators' pages for people and access.

Record forms (leads, contacts, accounts, deals) live in ``crmail.crm.forms``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from crmail.people import actions as people_actions
from crmail.people import ratelimit
from crmail.people.models import ACTIONS as PROFILE_ACTIONS
from crmail.people.models import (
    MODULES,
    AccessLevel,
    Group,
    ModuleDefault,
    Profile,
    Role,
    User,
)
from crmail.text_forms import CheckedTextForm


class WriterRefusal(Protocol):
    """What a writer raises when it refuses input (``people.actions.Invalid`` and its
    likes): ``{"field", "message"}`` items."""

    errors: list[dict[str, str]]


class ActionErrors:
    """Show a writer's refusals beside the fields they name (the others on top)."""

    def add_action_errors(self, exc: WriterRefusal) -> None:
        for error in exc.errors:
            field = error["field"] if error["field"] in self.fields else None  # type: ignore[attr-defined]
            self.add_error(field, error["message"])  # type: ignore[attr-defined]


class SignInForm(CheckedTextForm, AuthenticationForm):
    """Email and password, refused without checking while the client or account is locked.

    The limit itself is kept by ``crmail.people.backends.RateLimitedBackend``, which every
    password check goes through.
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "The email address or the password is not right.",
        "locked": "%(message)s",
    }

    def __init__(self, request: HttpRequest | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget = forms.EmailInput(
            attrs={"autofocus": True, "autocomplete": "email", "maxlength": 254}
        )
        self.fields["password"].widget.attrs["autocomplete"] = "current-password"

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except ratelimit.SignInLocked as locked:
            raise ValidationError(
                self.error_messages["locked"], code="locked", params={"message": locked.message}
            ) from None


def _user_label(user: User) -> str:
    return f"{user.name} <{user.email}>"


class UserForm(CheckedTextForm, forms.ModelForm):
    """An administrator's view of a user (no password: that is set on creation or by the user).

    The form shapes input; ``crmail.people.actions`` validates and writes, and its refusals
    come back as errors on this form's fields (``save`` raises ``people_actions.Invalid``).
    """

    class Meta:
        model = User
        fields = ["name", "email", "role", "profile", "manager", "is_active"]
        labels = {"is_active": "Active", "manager": "Manager"}
        help_texts = {"is_active": "Deactivated users cannot sign in and own no new records."}

    def __init__(self, *args: Any, acting: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acting = acting
        self.fields["name"].required = True
        self.fields["role"].required = True
        self.fields["profile"].required = True
        managers = User.objects.filter(is_active=True)
        if self.instance.pk:
            managers = managers.exclude(pk=self.instance.pk)
        self.fields["manager"].queryset = managers
        self.fields["manager"].label_from_instance = _user_label

    def validate_unique(self) -> None:
        """The shared writer checks addresses, without regard to case."""

    def save(self, commit: bool = True) -> User:
        target = User.objects.get(pk=self.instance.pk)
        changes = {f: self.cleaned_data[f] for f in self.Meta.fields if f in self.changed_data}
        return people_actions.update_user(target, changes, by=self.acting)

    def add_action_errors(
        self, exc: people_actions.Invalid, *, skip_errors_on_fields: bool = False
    ) -> None:
        """Show the shared writer's refusals beside the fields they name (with
        ``skip_errors_on_fields``, not on a field that already has an error)."""
        for error in exc.errors:
            field = error["field"]
            if field == "password":
                field = "password1"
            if field not in self.fields:
                field = None
            if skip_errors_on_fields and field and field in self.errors:
                continue
            self.add_error(field, error["message"])


class NewUserForm(UserForm):
    """Creating a user: the same fields and a first password, asked twice."""

    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    class Meta(UserForm.Meta):
        fields = ["name", "email", "role", "profile", "manager"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].initial = Role.objects.filter(name="Sales Representative").first()
        self.fields["profile"].initial = Profile.objects.filter(name="Standard").first()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ.")
        # Every problem at once: the shared writer's checks run even when a field is missing.
        problems = people_actions.new_user_problems(
            self.data.get("email", ""),
            name=self.data.get("name", ""),
            password=first if first and first == second else None,
        )
        self.add_action_errors(people_actions.Invalid(problems), skip_errors_on_fields=True)
        return data

    def save(self, commit: bool = True) -> User:
        data = self.cleaned_data
        return people_actions.create_user(
            data["email"],
            name=data["name"],
            role=data["role"],
            profile=data["profile"],
            manager=data.get("manager"),
            password=data["password1"],
            by=self.acting,
        )


def set_active(target: User, active: bool, *, by: User) -> str | None:
    """Deactivate or reactivate ``target``; returns why not, or None when done."""
    try:
        people_actions.update_user(target, {"is_active": active}, by=by)
    except people_actions.Invalid as exc:
        return " ".join(e["message"] for e in exc.errors)
    return None


class ActionForm(ActionErrors, CheckedTextForm, forms.ModelForm):
    """A model form that only reads its fields: the checks and the write are a
    ``people.actions`` writer's, called by ``save``; its ``Invalid`` shows beside the
    fields it names (``add_action_errors``)."""

    def _post_clean(self) -> None:
        """No model validation and no change to the instance here: the writer does both."""


class RoleForm(ActionForm):
    """A role: its name, whom it reports to, and whether its users share with each other."""

    class Meta:
        model = Role
        fields = ["name", "parent", "share_with_peers"]
        labels = {"parent": "Reports to", "share_with_peers": "Share with peers"}

    def __init__(self, *args: Any, acting: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acting = acting
        self.fields["parent"].empty_label = "(top of the hierarchy)"
        self.fields["parent"].label_from_instance = lambda r: ("— " * r.depth) + r.name

    def save(self, commit: bool = True) -> Role:
        data = self.cleaned_data
        if self.instance.pk is None:
            return people_actions.create_role(
                data["name"],
                parent=data["parent"],
                share_with_peers=data["share_with_peers"],
                by=self.acting,
            )
        changes = {f: data[f] for f in self.Meta.fields}
        return people_actions.update_role(
            Role.objects.get(pk=self.instance.pk), changes, by=self.acting
        )


class GroupForm(ActionForm):
    """A group: its members, directly or through their roles."""

    class Meta:
        model = Group
        fields = ["name", "description", "users", "roles", "include_subordinate_roles"]
        labels = {"users": "Members", "include_subordinate_roles": "Include roles below"}
        widgets = {
            "users": forms.CheckboxSelectMultiple,
            "roles": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args: Any, acting: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acting = acting
        self.fields["users"].queryset = User.objects.filter(is_active=True)
        self.fields["users"].label_from_instance = _user_label
        self.fields["roles"].label_from_instance = lambda r: ("— " * r.depth) + r.name

    def save(self, commit: bool = True) -> Group:
        changes = {f: self.cleaned_data[f] for f in self.Meta.fields}
        changes["users"] = list(changes["users"])
        changes["roles"] = list(changes["roles"])
        if self.instance.pk is None:
            return people_actions.create_group(changes, by=self.acting)
        return people_actions.update_group(
            Group.objects.get(pk=self.instance.pk), changes, by=self.acting
        )


class ProfileForm(ActionErrors, CheckedTextForm, forms.Form):
    """A profile: its name, what it allows on each module, Mail Integration, administration.

    The form shapes input (one checkbox per module and action); ``people.actions.save_profile``
    validates and writes, and its refusals come back beside the fields they name.
    """

    name = forms.CharField(label="Name", max_length=100)
    description = forms.CharField(label="Description", max_length=300, required=False)
    mail_integration = forms.BooleanField(
        label="Mail Integration",
        required=False,
        help_text="Users with this profile may connect a mailbox and send from crmail.",
    )
    is_admin = forms.BooleanField(
        label="Administrator",
        required=False,
        help_text="Sees and changes every record and every setting, whatever is ticked below.",
    )

    def __init__(self, *args: Any, instance: Profile | None = None, **kwargs: Any) -> None:
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "description": instance.description,
                "mail_integration": instance.mail_integration,
                "is_admin": instance.is_admin,
                **{
                    f"{module}_{action}": action in (instance.permissions or {}).get(module, [])
                    for module in MODULES
                    for action in PROFILE_ACTIONS
                },
            }
        elif instance is None and "initial" not in kwargs:
            kwargs["initial"] = {"mail_integration": True, "name": ""} | {
                f"{module}_{action}": True for module in MODULES for action in PROFILE_ACTIONS
            }
        super().__init__(*args, **kwargs)
        for module in MODULES:
            for action in PROFILE_ACTIONS:
                self.fields[f"{module}_{action}"] = forms.BooleanField(
                    label=f"{action.title()} {module}", required=False
                )

    def grid(self) -> list[tuple[str, list[Any]]]:
        """The permission checkboxes as rows: (module, [bound field per action])."""
        return [
            (module.title(), [self[f"{module}_{action}"] for action in PROFILE_ACTIONS])
            for module in MODULES
        ]

    def changes(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "mail_integration": data["mail_integration"],
            "is_admin": data["is_admin"],
            "permissions": {
                module: [a for a in PROFILE_ACTIONS if data.get(f"{module}_{a}")]
                for module in MODULES
            },
        }


class AccessDefaultsForm(CheckedTextForm, forms.Form):
    """The organisation-wide default access per module."""

    def __init__(self, *args: Any, acting: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acting = acting
        current = dict(ModuleDefault.objects.values_list("module", "level"))
        for module in MODULES:
            self.fields[module] = forms.ChoiceField(
                label=module.title(),
                choices=AccessLevel.choices,
                initial=current.get(module, AccessLevel.PRIVATE),
                widget=forms.RadioSelect,
            )

    def save(self) -> None:
        people_actions.set_module_defaults(
            {module: self.cleaned_data[module] for module in MODULES}, by=self.acting
        )


# Mailboxes (SPEC F1). These forms only shape input into the fields
# ``crmail.mailboxes.actions`` takes; the actions validate it and test the connection.

SECURITY_CHOICES = [("tls", "SSL/TLS"), ("starttls", "STARTTLS"), ("none", "None")]
PROTOCOL_CHOICES = [("imap", "IMAP (two-way)"), ("pop3", "POP3 (download only)")]
# How crmail reads the mail, in words (the connect page's choice): the APIs store nothing
# of the mail unless the user keeps a copy; IMAP and POP3 keep one.
PROTOCOL_MEANINGS = {
    "imap": "IMAP: crmail keeps a copy of your mail for search, reports and email "
    "intelligence; reading, flags and moves show on both sides.",
    "pop3": "POP3: crmail downloads your mail and keeps it; nothing goes back to the server.",
    "gmail": "Gmail API: nothing of your mail is stored in crmail; records show it live from "
    "Gmail (unless you keep a copy below).",
    "graph": "Microsoft Graph: nothing of your mail is stored in crmail; records show it live "
    "from Outlook (unless you keep a copy below).",
}
# The API each provider preset offers beside IMAP and POP3.
API_OF_PRESET = {"gmail": "gmail", "outlook": "graph"}
# Where each model field's error shows: the form field that carries it.
MAILBOX_ERROR_FIELDS = {"secret": "password", "smtp_secret": "smtp_password"}
# What a provider preset fills in: the connect page hides these unless "custom" is chosen.
CUSTOM_KEY = "custom"
PRESET_FIELDS = ("host", "port", "security", "smtp_host", "smtp_port", "smtp_security")


def _lines(text: str) -> list[str]:
    """Addresses or folder names typed one per line or separated by commas."""
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


class MailboxSettingsForm(CheckedTextForm, forms.Form):
    """A mailbox's settings as a user edits them (every field but the provider and protocol)."""

    email = forms.EmailField(
        label="Email address", max_length=254, help_text="The address this mailbox receives."
    )
    login = forms.CharField(
        label="Login",
        max_length=254,
        required=False,
        help_text="Usually the email address; leave empty to use it.",
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password = forms.CharField(
        label="Password or app password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )
    host = forms.CharField(label="Incoming server", max_length=253, required=False)
    port = forms.IntegerField(label="Incoming port", required=False, min_value=1, max_value=65535)
    security = forms.ChoiceField(label="Incoming security", choices=SECURITY_CHOICES)
    smtp_host = forms.CharField(
        label="Outgoing (SMTP) server",
        max_length=253,
        required=False,
        help_text="Leave empty if crmail should not send from this mailbox.",
    )
    smtp_port = forms.IntegerField(
        label="Outgoing port", required=False, min_value=1, max_value=65535
    )
    smtp_security = forms.ChoiceField(label="Outgoing security", choices=SECURITY_CHOICES)
    smtp_same_credentials = forms.BooleanField(
        label="Use the same credentials for outgoing mail", required=False, initial=True
    )
    smtp_no_login = forms.BooleanField(
        label="The outgoing server needs no login",
        required=False,
        help_text="A relay that takes mail from crmail without a login (on your own network).",
    )
    smtp_login = forms.CharField(label="Outgoing login", max_length=254, required=False)
    smtp_password = forms.CharField(
        label="Outgoing password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )
    allow_self_signed = forms.BooleanField(
        label="Allow a self-signed certificate",
        required=False,
        help_text="Only for a server you run yourself: the connection is still encrypted.",
    )
    import_folders = forms.CharField(
        label="Folders to sync",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One per line, or separated by commas; leave empty for all folders.",
    )
    import_since = forms.DateField(
        label="Mail since",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty to import all mail.",
    )
    keep_on_server = forms.BooleanField(
        label="Keep messages on the server",
        required=False,
        initial=True,
        help_text="POP3: otherwise a message is deleted there once crmail has stored it.",
    )
    store_sent_on_server = forms.BooleanField(
        label="Store sent messages on the server",
        required=False,
        initial=True,
        help_text="Put a copy of mail sent from crmail in the server's Sent folder.",
    )
    display_name = forms.CharField(
        label="Name on sent mail",
        max_length=200,
        required=False,
        help_text="Shown to recipients next to the address, such as a team's name; "
        "leave empty for your own name.",
    )
    customer_alerts = forms.BooleanField(
        label="Tell me at once when a lead or contact writes",
        required=False,
        initial=True,
        help_text="New mail from your leads and contacts in this mailbox's Inbox shows in "
        "your notifications (the bell at the top).",
    )
    extra_from_addresses = forms.CharField(
        label="Other addresses to send from",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One per line: aliases this mailbox may send as.",
    )

    @classmethod
    def initial_for(cls, mailbox: Any) -> dict[str, Any]:
        """The form's starting values for a saved mailbox (never its secrets)."""
        initial = {
            name: getattr(mailbox, name) for name in cls.base_fields if hasattr(mailbox, name)
        }
        initial.pop("password", None)
        initial.pop("smtp_password", None)
        initial["import_folders"] = "\n".join(mailbox.import_folders or [])
        initial["extra_from_addresses"] = "\n".join(mailbox.extra_from_addresses or [])
        initial["smtp_no_login"] = not mailbox.smtp_same_credentials and not mailbox.smtp_login
        return initial

    def mailbox_fields(self) -> dict[str, Any]:
        """The cleaned input as the fields of ``Mailbox`` (call after ``is_valid``)."""
        data = self.cleaned_data
        no_login = data.get("smtp_no_login", False)
        same = data.get("smtp_same_credentials", True) and not no_login
        fields: dict[str, Any] = {
            "email": data["email"].strip().lower(),
            "login": data["login"].strip() or data["email"].strip(),
            "secret": data.get("password", ""),
            "host": data["host"].strip().lower(),
            "port": data["port"],
            "security": data["security"],
            "allow_self_signed": data["allow_self_signed"],
            "smtp_host": data["smtp_host"].strip().lower(),
            "smtp_port": data["smtp_port"],
            "smtp_security": data["smtp_security"],
            "smtp_same_credentials": same,
            "smtp_login": "" if same or no_login else data.get("smtp_login", "").strip(),
            "smtp_secret": "" if same or no_login else data.get("smtp_password", ""),
            "import_folders": _lines(data["import_folders"]),
            "import_since": data["import_since"],
            "keep_on_server": data.get("keep_on_server", True),
            "store_sent_on_server": data["store_sent_on_server"],
            "extra_from_addresses": [a.lower() for a in _lines(data["extra_from_addresses"])],
            "display_name": data.get("display_name", "").strip(),
            # Not on the connect page: a new mailbox alerts (the model's default).
            "customer_alerts": data.get("customer_alerts", True),
        }
        return fields

    def add_action_errors(
        self, errors: list[dict[str, str]], labels: dict[str, str], hidden: Iterable[str] = ()
    ) -> None:
        """Show the errors an action raised next to their fields, the others at the top.

        ``labels`` names the sides that are not fields ("incoming", "outgoing"); errors of
        ``hidden`` fields (those a preset fills in) go to the top too.
        """
        for error in errors:
            name = MAILBOX_ERROR_FIELDS.get(error["field"], error["field"])
            if name in self.fields and name not in hidden:
                self.add_error(name, error["message"])
            else:
                field = self.fields.get(name)
                label = labels.get(name) or (field.label if field else None) or name
                label = str(label).replace("_", " ").capitalize() if label == name else label
                self.add_error(None, f"{label}: {error['message']}")


class MailboxConnectForm(MailboxSettingsForm):
    """Connecting a mailbox: a provider preset fills in the servers; "custom" asks for them."""

    preset = forms.ChoiceField(label="Provider")
    protocol = forms.ChoiceField(
        label="Protocol", choices=PROTOCOL_CHOICES, initial="imap", required=False
    )
    sharing = forms.ChoiceField(
        label="Who sees the mail synced from this mailbox",
        widget=forms.RadioSelect,
        required=False,
        help_text="Mail sent from crmail is always shared. You can change this later in "
        "My mail sharing.",
        error_messages={
            "required": "Choose who sees your synced mail: Private, Public or Custom.",
            "invalid_choice": "Choose who sees your synced mail: Private, Public or Custom.",
        },
    )

    keeps_copy = forms.BooleanField(
        label="Keep a copy of my mail in crmail",
        required=False,
        help_text="Search, reports and email intelligence then include this mailbox's mail. "
        "IMAP and POP3 always keep one.",
    )

    field_order = ["preset", "email", "login", "password", "protocol"]

    def __init__(
        self, *args: Any, sharing: str | None = None, sharing_locked: bool = False, **kwargs: Any
    ) -> None:
        """``sharing``: the mode preselected; ``sharing_locked``: shown, not changeable."""
        from crmail.mailboxes.providers import CUSTOM, PRESETS
        from crmail.sharing.actions import MODE_MEANINGS

        super().__init__(*args, **kwargs)
        self.fields["sharing"].choices = [
            (mode, f"{mode.label}: {meaning}") for mode, meaning in MODE_MEANINGS.items()
        ]
        if sharing is not None:
            self.fields["sharing"].initial = sharing
        if sharing_locked:
            self.fields["sharing"].disabled = True
            self.fields[
                "sharing"
            ].help_text = (
                "An administrator set your mail sharing and locked it: ask them to change it."
            )
        self.presets = {**PRESETS, CUSTOM.key: CUSTOM}
        self.fields["preset"].choices = [(p.key, p.name) for p in self.presets.values()]
        self.fields["preset"].initial = CUSTOM.key
        # The protocols offered follow the provider: Gmail adds the Gmail API, Outlook
        # Microsoft Graph; each choice says what it means for the mail.
        chosen = self.presets.get(self.chosen_preset(), CUSTOM)
        offered = ["imap", "pop3"]
        if chosen.key in API_OF_PRESET:
            offered.append(API_OF_PRESET[chosen.key])
        protocol = self.fields["protocol"]
        protocol.choices = [(p, PROTOCOL_MEANINGS[p]) for p in offered]
        protocol.widget = forms.RadioSelect(choices=protocol.choices)
        protocol.label = "How crmail reads your mail"
        self.fields["password"].help_text = ""
        del self.fields["customer_alerts"]  # on by default; changed on the edit page

    def clean_sharing(self) -> str:
        """The mode chosen; what was preselected when nothing came (an older page)."""
        return self.cleaned_data.get("sharing") or str(self.fields["sharing"].initial or "")

    def chosen_preset(self) -> str:
        return str(self.data.get("preset") or self.initial.get("preset") or CUSTOM_KEY)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("protocol"):
            data["protocol"] = "imap"  # an older page without the choice
        chosen = self.presets.get(data.get("preset") or "")
        if chosen and chosen.key != "custom" and data.get("protocol") == "pop3" and not chosen.pop3:
            self.add_error("protocol", f"{chosen.name} does not offer POP3: choose IMAP.")
        if data.get("protocol") not in self.api_protocols():
            data["keeps_copy"] = True
        return data

    @staticmethod
    def api_protocols() -> tuple[str, ...]:
        return tuple(API_OF_PRESET.values())

    def uses_api(self) -> bool:
        """The user chose the provider's API (after ``is_valid``)."""
        return self.cleaned_data.get("protocol") in self.api_protocols()

    def uses_preset(self) -> bool:
        return self.chosen_preset() != CUSTOM_KEY

    def mailbox_fields(self) -> dict[str, Any]:
        """Like the settings form's; a preset's servers replace what was typed for them."""
        fields = super().mailbox_fields()
        chosen = self.presets[self.cleaned_data["preset"]]
        fields["provider"] = chosen.key
        fields["protocol"] = self.cleaned_data["protocol"]
        fields["keeps_copy"] = self.cleaned_data["keeps_copy"]
        if self.uses_api():  # no servers: the API's address is a setting, sending goes through it
            fields.update(
                host="",
                port=None,
                smtp_host="",
                smtp_port=None,
                smtp_same_credentials=True,
                smtp_login="",
                smtp_secret="",
                secret="",
                login=fields["email"],
                allow_self_signed=False,
            )
            return fields
        if chosen.key != "custom":
            incoming = chosen.pop3 if fields["protocol"] == "pop3" else chosen.imap
            if incoming:
                fields["host"], fields["port"], fields["security"] = incoming
            if chosen.smtp:
                fields["smtp_host"], fields["smtp_port"], fields["smtp_security"] = chosen.smtp
            fields["allow_self_signed"] = False
        return fields
