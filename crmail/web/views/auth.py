"""Signing in and out."""

from __future__ import annotations

from django.contrib.auth import views as auth_views

from crmail.web.forms import SignInForm


class SignInView(auth_views.LoginView):
    """Email and password; rate limited in ``SignInForm``; inactive users are refused."""

    template_name = "web/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True


class SignOutView(auth_views.LogoutView):
    """POST only (Django refuses GET), then back to the sign-in page."""
