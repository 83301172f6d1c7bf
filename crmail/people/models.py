"""Users, roles in a hierarchy, groups, profiles and API tokens (SPEC F18)."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

# Modules whose records have owners and go through the access layer, and the actions
# a profile may allow on each.
MODULES = ("leads", "contacts", "accounts", "deals")
ACTIONS = ("view", "create", "edit", "delete")


def full_permissions() -> dict[str, list[str]]:
    return {module: list(ACTIONS) for module in MODULES}


class Role(models.Model):
    """A place in the role hierarchy. Users above a role see what its users own."""

    name = models.CharField(max_length=100, unique=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The role this one reports to. Empty for the top of the hierarchy.",
    )
    share_with_peers = models.BooleanField(
        default=False,
        help_text="Users with this role see each other's records.",
    )
    # Materialised path of primary keys, "/1/4/9/": descendants share the prefix, so
    # "owned by someone below me" is one indexed LIKE in SQL.
    path = models.CharField(max_length=1000, db_index=True, editable=False, default="")

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        with transaction.atomic():
            if not self.pk:
                super().save(*args, **kwargs)
                kwargs = {}
            old_path = self.path
            parent_path = self.parent.path if self.parent_id else "/"
            self.path = f"{parent_path}{self.pk}/"
            super().save(*args, **{**kwargs, "force_insert": False})
            if old_path and old_path != self.path:
                for child in Role.objects.filter(path__startswith=old_path).exclude(pk=self.pk):
                    child.path = self.path + child.path[len(old_path) :]
                    Role.objects.filter(pk=child.pk).update(path=child.path)

    def clean(self) -> None:
        if self.pk and self.parent_id:
            parent = self.parent
            while parent is not None:
                if parent.pk == self.pk:
                    raise ValidationError(
                        {"parent": "A role cannot report to itself or to a role below it."}
                    )
                parent = parent.parent

    @property
    def depth(self) -> int:
        return max(self.path.count("/") - 2, 0)

    def is_above(self, other: Role) -> bool:
        """True when ``other`` is strictly below this role."""
        return other.path.startswith(self.path) and other.pk != self.pk


class Profile(models.Model):
    """What a user may do: per-module actions, Mail Integration, administration."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    is_admin = models.BooleanField(
        default=False, help_text="Administrators see and change every record and setting."
    )
    mail_integration = models.BooleanField(
        default=True, help_text="May connect a mailbox (Mail Integration)."
    )
    permissions = models.JSONField(default=full_permissions)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def allows(self, module: str, action: str) -> bool:
        if self.is_admin:
            return True
        return action in (self.permissions or {}).get(module, [])

    def clean(self) -> None:
        problems = permission_problems(self.permissions)
        if problems:
            raise ValidationError({"permissions": problems})


def permission_problems(permissions: object) -> list[str]:
    """What is wrong with a profile's ``{module: [actions]}`` (empty when nothing): the one
    check behind the back office and ``people.actions.save_profile``."""
    if not isinstance(permissions, dict):
        return ["Give the actions allowed on each module."]
    problems = []
    for module, allowed in permissions.items():
        if module not in MODULES:
            problems.append(f"There is no module {module!r}: {', '.join(MODULES)}.")
        elif not isinstance(allowed, list | tuple) or any(a not in ACTIONS for a in allowed):
            problems.append(f"The actions on {module} are among {', '.join(ACTIONS)}.")
    return problems


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:  # type: ignore[no-untyped-def]
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:  # type: ignore[no-untyped-def]
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=(username or "").strip())


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Email is the sign-in name."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150)
    role = models.ForeignKey(
        Role, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    profile = models.ForeignKey(
        Profile, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    manager = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
        help_text="Reports to.",
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the back-office admin.")
    date_joined = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    signature = models.TextField(
        blank=True,
        max_length=5000,
        help_text="Added below each new email written in crmail (plain text).",
    )
    mark_read_on_open = models.BooleanField(
        default=True,
        help_text="Opening a message in crmail marks the user's own copy read on the server.",
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["name", "email"]

    def __str__(self) -> str:
        return self.name or self.email

    def clean(self) -> None:
        self.email = (self.email or "").strip().lower()
        if self.manager_id and self.manager_id == self.pk:
            raise ValidationError({"manager": "A user cannot report to themselves."})

    @property
    def is_admin(self) -> bool:
        """Administrators: superusers and users whose profile is an administrator profile."""
        return self.is_active and (
            self.is_superuser or bool(self.profile and self.profile.is_admin)
        )

    def may(self, module: str, action: str) -> bool:
        """Whether this user's profile allows ``action`` on ``module`` at all."""
        if not self.is_active:
            return False
        if self.is_admin:
            return True
        return bool(self.profile and self.profile.allows(module, action))


class Group(models.Model):
    """A named set of users and roles, used to share with several people at once."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    users = models.ManyToManyField(User, blank=True, related_name="crm_groups")
    roles = models.ManyToManyField(Role, blank=True, related_name="groups")
    include_subordinate_roles = models.BooleanField(
        default=False, help_text="Users in roles below the chosen roles belong too."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def member_ids(self) -> set[int]:
        """Ids of the active users who belong to this group, directly or by role."""
        ids = set(self.users.filter(is_active=True).values_list("pk", flat=True))
        roles = list(self.roles.all())
        if roles:
            q = models.Q(role__in=roles)
            if self.include_subordinate_roles:
                for role in roles:
                    q |= models.Q(role__path__startswith=role.path)
            ids |= set(User.objects.filter(q, is_active=True).values_list("pk", flat=True))
        return ids


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the REST API. Only its hash is stored."""

    PREFIX = "crm_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="The first characters, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.hint}… ({self.user})"

    @classmethod
    def issue(cls, user: User, name: str = "") -> tuple[ApiToken, str]:
        """Create a token for ``user``; returns the row and the secret, shown only once."""
        secret = cls.PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(
            user=user, name=name, key_hash=hash_token(secret), hint=secret[:10]
        )
        return row, secret

    @classmethod
    def authenticate(cls, secret: str) -> User | None:
        """The active user behind ``secret``, or None."""
        if not secret or not secret.startswith(cls.PREFIX):
            return None
        row = (
            cls.objects.select_related("user", "user__role", "user__profile")
            .filter(key_hash=hash_token(secret), revoked_at__isnull=True)
            .first()
        )
        if row is None or not row.user.is_active:
            return None
        now = timezone.now()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            cls.objects.filter(pk=row.pk).update(last_used_at=now)
        return row.user


class LoginFailure(models.Model):
    """A failed sign-in, kept for the rate limit (address hashed, never stored plain)."""

    account_key = models.CharField(max_length=64, db_index=True)
    client_key = models.CharField(max_length=64, db_index=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"failed sign-in at {self.at:%Y-%m-%d %H:%M:%S}"


class AccessLevel(models.TextChoices):
    PRIVATE = "private", "Private"
    PUBLIC_READ = "public_read", "Public read-only"
    PUBLIC_READ_WRITE = "public_read_write", "Public read/write"


class ModuleDefault(models.Model):
    """The organisation-wide default access to one module's records."""

    module = models.CharField(max_length=20, unique=True, choices=[(m, m.title()) for m in MODULES])
    level = models.CharField(
        max_length=20, choices=AccessLevel.choices, default=AccessLevel.PRIVATE
    )

    class Meta:
        ordering = ["module"]

    def __str__(self) -> str:
        return f"{self.module}: {self.get_level_display()}"
