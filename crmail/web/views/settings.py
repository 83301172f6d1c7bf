"""Administrators' pages: users, roles, profiles, groups and the default access to each
module."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crmail.mailboxes import actions as mailbox_actions
from crmail.mailboxes.models import Mailbox
from crmail.people import actions as people_actions
from crmail.people.models import ACTIONS, MODULES, Group, Profile, Role, User
from crmail.web.forms import (
    AccessDefaultsForm,
    GroupForm,
    NewUserForm,
    ProfileForm,
    RoleForm,
    UserForm,
    set_active,
)

View = Callable[..., HttpResponse]


def admin_required(view: View) -> View:
    """Signed in and an administrator; others get the 403 page."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_admin:
            raise PermissionDenied("Only administrators can manage users, roles and access.")
        return view(request, *args, **kwargs)

    return wrapped


def _edit_page(
    request: HttpRequest,
    form: ModelForm,
    *,
    template: str,
    done: str,
    message: str,
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """Save a valid posted form and go to ``done``; otherwise show it with its errors."""
    if request.method == "POST" and form.is_valid():
        try:
            saved = form.save()
        except people_actions.Invalid as exc:
            form.add_action_errors(exc)  # type: ignore[attr-defined]
        else:
            messages.success(request, message.format(saved))
            return redirect(done)
    return render(request, template, {"form": form, **(context or {})})


# Users


@admin_required
def users(request: HttpRequest) -> HttpResponse:
    rows = (
        User.objects.select_related("role", "profile", "manager")
        .annotate(
            mailbox_count=Count("mailboxes"),
            mail_locked=Exists(Mailbox.objects.filter(owner=OuterRef("pk"), locked=True)),
        )
        .order_by("-is_active", "name", "email")
    )
    return render(request, "web/settings/users.html", {"users": rows})


@admin_required
@require_http_methods(["GET", "POST"])
def user_create(request: HttpRequest) -> HttpResponse:
    form = NewUserForm(request.POST or None, acting=request.user)
    return _edit_page(
        request,
        form,
        template="web/settings/user_form.html",
        done="web:users",
        message="The user {} was added.",
    )


@admin_required
@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(User, pk=pk)
    form = UserForm(request.POST or None, instance=target, acting=request.user)
    return _edit_page(
        request,
        form,
        template="web/settings/user_form.html",
        done="web:users",
        message="The user {} was saved.",
        context={"target": target},
    )


@admin_required
@require_POST
def user_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(User, pk=pk)
    active = request.POST.get("active") == "1"
    problem = set_active(target, active, by=request.user)
    if problem:
        messages.error(request, problem)
    else:
        state = "reactivated" if active else "deactivated"
        messages.success(request, f"{target} was {state}.")
    return redirect("web:users")


@admin_required
@require_POST
def user_mail_lock(request: HttpRequest, pk: int) -> HttpResponse:
    """Lock (or unlock) a user's mail configuration, e.g. before they leave (SPEC F1)."""
    target = get_object_or_404(User, pk=pk)
    locked = request.POST.get("locked") == "1"
    count = mailbox_actions.set_locked(request.user, target, locked)
    if not count:
        messages.error(request, f"{target} has no mailbox to lock.")
    elif locked:
        messages.success(
            request, f"The mail configuration of {target} is locked: only administrators change it."
        )
    else:
        messages.success(request, f"The mail configuration of {target} is unlocked.")
    return redirect("web:users")


# Roles


@admin_required
def roles(request: HttpRequest) -> HttpResponse:
    all_roles = list(Role.objects.select_related("parent").order_by("path"))
    counts: dict[int, int] = {}
    for role_id in User.objects.filter(is_active=True).values_list("role_id", flat=True):
        if role_id:
            counts[role_id] = counts.get(role_id, 0) + 1
    children: dict[int | None, list[Role]] = {}
    for role in all_roles:
        role.user_count = counts.get(role.pk, 0)
        children.setdefault(role.parent_id, []).append(role)
    for siblings in children.values():
        siblings.sort(key=lambda r: r.name.lower())

    def tree(parent_id: int | None) -> list[dict[str, Any]]:
        return [{"role": r, "children": tree(r.pk)} for r in children.get(parent_id, [])]

    return render(request, "web/settings/roles.html", {"tree": tree(None)})


@admin_required
@require_http_methods(["GET", "POST"])
def role_create(request: HttpRequest) -> HttpResponse:
    initial = {}
    parent = request.GET.get("parent")
    if parent and parent.isdigit():
        initial["parent"] = Role.objects.filter(pk=int(parent)).first()
    form = RoleForm(request.POST or None, initial=initial, acting=request.user)
    return _edit_page(
        request,
        form,
        template="web/settings/role_form.html",
        done="web:roles",
        message="The role {} was added.",
    )


@admin_required
@require_http_methods(["GET", "POST"])
def role_edit(request: HttpRequest, pk: int) -> HttpResponse:
    role = get_object_or_404(Role, pk=pk)
    form = RoleForm(request.POST or None, instance=role, acting=request.user)
    return _edit_page(
        request,
        form,
        template="web/settings/role_form.html",
        done="web:roles",
        message="The role {} was saved.",
        context={"target": Role.objects.get(pk=pk)},
    )


# Profiles


@admin_required
def profiles(request: HttpRequest) -> HttpResponse:
    rows = Profile.objects.annotate(
        user_count=Count("users", filter=Q(users__is_active=True))
    ).order_by("name")
    table = [
        {
            "profile": p,
            "allowed": [
                (module.title(), [a for a in ACTIONS if p.allows(module, a)]) for module in MODULES
            ],
        }
        for p in rows
    ]
    return render(request, "web/settings/profiles.html", {"rows": table})


def _profile_page(request: HttpRequest, profile: Profile | None) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        try:
            saved = people_actions.save_profile(profile, form.changes(), by=request.user)
        except people_actions.Invalid as exc:
            form.add_action_errors(exc)
        except people_actions.NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        else:
            verb = "saved" if profile else "added"
            messages.success(request, f"The profile {saved} was {verb}.")
            return redirect("web:profiles")
    context = {"form": form, "target": profile, "actions": [a.title() for a in ACTIONS]}
    return render(request, "web/settings/profile_form.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def profile_create(request: HttpRequest) -> HttpResponse:
    return _profile_page(request, None)


@admin_required
@require_http_methods(["GET", "POST"])
def profile_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _profile_page(request, get_object_or_404(Profile, pk=pk))


# Groups


@admin_required
def groups(request: HttpRequest) -> HttpResponse:
    rows = Group.objects.prefetch_related("users", "roles")
    return render(request, "web/settings/groups.html", {"groups": rows})


@admin_required
@require_http_methods(["GET", "POST"])
def group_create(request: HttpRequest) -> HttpResponse:
    return _edit_page(
        request,
        GroupForm(request.POST or None, acting=request.user),
        template="web/settings/group_form.html",
        done="web:groups",
        message="The group {} was added.",
    )


@admin_required
@require_http_methods(["GET", "POST"])
def group_edit(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(Group, pk=pk)
    return _edit_page(
        request,
        GroupForm(request.POST or None, instance=group, acting=request.user),
        template="web/settings/group_form.html",
        done="web:groups",
        message="The group {} was saved.",
        context={"target": Group.objects.get(pk=pk)},
    )


@admin_required
@require_POST
def group_remove(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(Group, pk=pk)
    people_actions.delete_group(group, by=request.user)  # type: ignore[arg-type]
    messages.success(request, f"The group {group.name} was removed; sharing with it stopped.")
    return redirect("web:groups")


# Default access


@admin_required
@require_http_methods(["GET", "POST"])
def access_defaults(request: HttpRequest) -> HttpResponse:
    form = AccessDefaultsForm(request.POST or None, acting=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "The default access was saved.")
        return redirect("web:access_defaults")
    return render(request, "web/settings/access.html", {"form": form})
