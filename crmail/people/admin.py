"""Back-office registrations for people: users, roles, profiles, groups, tokens, defaults."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from crmail.people.models import ApiToken, Group, LoginFailure, ModuleDefault, Profile, Role, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["name", "email"]
    list_display = ["email", "name", "role", "profile", "manager", "is_active", "is_staff"]
    list_filter = ["is_active", "is_staff", "is_superuser", "role", "profile"]
    search_fields = ["email", "name"]
    list_select_related = ["role", "profile", "manager"]
    autocomplete_fields = ["manager"]
    readonly_fields = ["date_joined", "deactivated_at", "last_login"]
    filter_horizontal = ["groups", "user_permissions"]
    fieldsets = [
        (None, {"fields": ["email", "name", "password"]}),
        ("Organisation", {"fields": ["role", "profile", "manager"]}),
        (
            "Status",
            {"fields": ["is_active", "is_staff", "is_superuser", "deactivated_at"]},
        ),
        (
            "Back-office permissions",
            {"classes": ["collapse"], "fields": ["groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["date_joined", "last_login"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "name", "role", "profile", "password1", "password2"],
            },
        )
    ]


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "share_with_peers", "path"]
    search_fields = ["name"]
    list_select_related = ["parent"]
    readonly_fields = ["path"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "is_admin", "mail_integration", "description"]
    search_fields = ["name", "description"]


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "include_subordinate_roles"]
    search_fields = ["name", "description"]
    filter_horizontal = ["users", "roles"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["hint", "user", "name", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["user__email", "name", "hint"]
    list_select_related = ["user"]
    readonly_fields = ["key_hash", "hint", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False  # a token's secret is shown once, by the command line or the API


@admin.register(ModuleDefault)
class ModuleDefaultAdmin(admin.ModelAdmin):
    list_display = ["module", "level"]


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    list_display = ["at", "account_key", "client_key"]
    readonly_fields = ["at", "account_key", "client_key"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
