"""The back office (Django's admin at /admin/), signing in only through crmail's sign-in.

Its own login page would be a second door with a password check of its own; it sends the
visitor to ``/sign-in/`` instead, keeping ``next``, so the one sign-in page and its rate
limit guard the back office too. Its password change checks the old password through the
same limiter (``crmail.people.backends``), so a signed-in session cannot be used to guess
the password either.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.auth import REDIRECT_FIELD_NAME, authenticate
from django.contrib.auth.views import PasswordChangeView, redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from crmail.people import ratelimit
from crmail.text_forms import CheckedTextForm

NO_BACK_OFFICE = "Your account has no access to the back office. Ask an administrator."


class LimitedPasswordChangeForm(CheckedTextForm, AdminPasswordChangeForm):
    """The old password is checked by the rate-limited backend, like a sign-in."""

    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        try:
            checked = authenticate(
                self.request, username=self.user.get_username(), password=old_password
            )
        except ratelimit.SignInLocked as locked:
            raise ValidationError(locked.message, code="locked") from None
        if checked is None or checked.pk != self.user.pk:
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class LimitedPasswordChangeView(PasswordChangeView):
    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


class BackOfficeSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if request.user.is_authenticated:
            if self.has_permission(request):
                return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
            # Sending a signed-in user to the sign-in page would bounce straight back here.
            raise PermissionDenied(NO_BACK_OFFICE)
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse(
            "admin:index", current_app=self.name
        )
        return redirect_to_login(target, reverse("web:login"))

    def password_change(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        defaults: dict[str, Any] = {
            "form_class": LimitedPasswordChangeForm,
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return LimitedPasswordChangeView.as_view(**defaults)(request)
