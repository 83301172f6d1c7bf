"""Forms of the web UI: sign-in, and the administrators' pages for people and access.

Record forms (leads, contacts, accounts, deals) live in ``crmail.crm.forms``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from crmail.people import ratelimit
from crmail.people.models import (
    MODULES,
    AccessLevel,
    Group,
    ModuleDefault,
    Profile,
    Role,
    User,
)


def client_address(request: HttpRequest | None) -> str:
    """The client's IP as the server sees it (waitress sets it; trusted proxies rewrite it)."""
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR", "") or ""


class SignInForm(AuthenticationForm):
    """Email and password, refused without checking while the address or client is locked."""

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
        email = (self.cleaned_data.get("username") or "").strip()
        client = client_address(self.request)
        seconds = ratelimit.locked_seconds(email, client)
        if seconds:
            raise ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"message": ratelimit.lock_message(seconds)},
            )
        try:
            data = super().clean()
        except ValidationError:
            ratelimit.record_failure(email, client)
            raise
        if self.get_user() is not None:
            ratelimit.clear(email)
        return data


def _user_label(user: User) -> str:
    return f"{user.name} <{user.email}>"


class UserForm(forms.ModelForm):
    """An administrator's view of a user (no password: that is set on creation or by the user)."""

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

    def clean_email(self) -> str:
        email = (self.cleaned_data.get("email") or "").strip().lower()
        clash = User.objects.filter(email__iexact=email)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(f"A user with the email {email} already exists.")
        return email

    def clean_is_active(self) -> bool:
        active = bool(self.cleaned_data.get("is_active"))
        if not active and self.acting is not None and self.acting.pk == self.instance.pk:
            raise ValidationError("You cannot deactivate yourself.")
        return active

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        if "is_active" in self.changed_data:
            user.deactivated_at = None if user.is_active else timezone.now()
        if commit:
            with transaction.atomic():
                user.save()
        return user


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
        elif first:
            candidate = User(email=data.get("email") or "", name=data.get("name") or "")
            try:
                password_validation.validate_password(first, candidate)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        user.set_password(self.cleaned_data["password1"])
        if commit:
            with transaction.atomic():
                user.save()
        return user


def set_active(target: User, active: bool, *, by: User) -> str | None:
    """Deactivate or reactivate ``target``; returns why not, or None when done."""
    if target.pk == by.pk and not active:
        return "You cannot deactivate yourself."
    if target.is_active == active:
        return None
    target.is_active = active
    target.deactivated_at = None if active else timezone.now()
    target.save(update_fields=["is_active", "deactivated_at"])
    return None


class RoleForm(forms.ModelForm):
    """A role: its name, whom it reports to, and whether its users share with each other."""

    class Meta:
        model = Role
        fields = ["name", "parent", "share_with_peers"]
        labels = {"parent": "Reports to", "share_with_peers": "Share with peers"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parent"].empty_label = "(top of the hierarchy)"
        self.fields["parent"].label_from_instance = lambda r: ("— " * r.depth) + r.name

    def clean_name(self) -> str:
        name = (self.cleaned_data.get("name") or "").strip()
        clash = Role.objects.filter(name__iexact=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(f"A role named {name!r} already exists.")
        return name

    def clean_parent(self) -> Role | None:
        parent = self.cleaned_data.get("parent")
        own = self.instance
        if parent is not None and own.pk and (parent.pk == own.pk or own.is_above(parent)):
            raise ValidationError(
                f"{own.name} cannot report to {parent.name}: "
                "a role cannot report to itself or to a role below it."
            )
        return parent

    def save(self, commit: bool = True) -> Role:
        with transaction.atomic():
            return super().save(commit=commit)


class GroupForm(forms.ModelForm):
    """A group: its members, directly or through their roles."""

    class Meta:
        model = Group
        fields = ["name", "description", "users", "roles", "include_subordinate_roles"]
        labels = {"users": "Members", "include_subordinate_roles": "Include roles below"}
        widgets = {
            "users": forms.CheckboxSelectMultiple,
            "roles": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["users"].queryset = User.objects.filter(is_active=True)
        self.fields["users"].label_from_instance = _user_label
        self.fields["roles"].label_from_instance = lambda r: ("— " * r.depth) + r.name

    def clean_name(self) -> str:
        name = (self.cleaned_data.get("name") or "").strip()
        clash = Group.objects.filter(name__iexact=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(f"A group named {name!r} already exists.")
        return name

    def save(self, commit: bool = True) -> Group:
        with transaction.atomic():
            return super().save(commit=commit)


class AccessDefaultsForm(forms.Form):
    """The organisation-wide default access per module."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = dict(ModuleDefault.objects.values_list("module", "level"))
        for module in MODULES:
            self.fields[module] = forms.ChoiceField(
                label=module.title(),
                choices=AccessLevel.choices,
                initial=current.get(module, AccessLevel.PRIVATE),
                widget=forms.RadioSelect,
            )

    def save(self) -> None:
        with transaction.atomic():
            for module in MODULES:
                ModuleDefault.objects.update_or_create(
                    module=module, defaults={"level": self.cleaned_data[module]}
                )
