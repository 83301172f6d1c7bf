"""The writers of users, roles, groups and access defaults: the web admin pages, the API
and the command line all write through here.

Each function validates everything it is given, reports every problem at once as
``Invalid`` (``{"field", "message"}`` items, like ``crm.actions.RecordInvalid``), and writes
in one transaction. ``by`` is the acting user: ``None`` means the operator at the command
line, who may do anything; otherwise only administrators may write.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crmail.events import outbox
from crmail.events.kinds import UserCreated, UserUpdated
from crmail.people import access, ratelimit
from crmail.people.models import (
    ACTIONS,
    MODULES,
    AccessLevel,
    ApiToken,
    Group,
    ModuleDefault,
    Profile,
    Role,
    User,
    permission_problems,
)

DEFAULT_ROLE = "Sales Representative"
DEFAULT_PROFILE = "Standard"
ADMIN_ROLE = "CEO"
ADMIN_PROFILE = "Administrator"


class Invalid(Exception):
    """The input does not make a valid user or role; ``errors`` lists ``{"field", "message"}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class NotAllowed(Exception):
    """The acting user may not change people, roles, groups or access defaults."""


def _check_actor(by: User | None) -> None:
    if by is not None and not by.is_admin:
        raise NotAllowed("Only administrators may change users, roles, groups and access.")


def _names(model: type[Role] | type[Profile]) -> str:
    return ", ".join(model.objects.order_by("name").values_list("name", flat=True)) or "none yet"


def find_role(name: str) -> Role | None:
    return Role.objects.filter(name__iexact=name.strip()).first()


def find_profile(name: str) -> Profile | None:
    return Profile.objects.filter(name__iexact=name.strip()).first()


def find_user(email: str) -> User | None:
    return User.objects.filter(email__iexact=(email or "").strip()).first()


def first_admin() -> User | None:
    """The earliest active administrator (a superuser or a user with an admin profile)."""
    return (
        User.objects.filter(Q(is_superuser=True) | Q(profile__is_admin=True), is_active=True)
        .order_by("pk")
        .first()
    )


def password_problems(password: str, user: User | None = None) -> list[str]:
    """The password validators' messages for ``password`` (empty when it is acceptable)."""
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        return list(exc.messages)
    return []


def new_user_problems(email: str, *, name: str, password: str | None) -> list[dict[str, str]]:
    """What is wrong with a new user's address, name and password (empty when nothing)."""
    errors: list[dict[str, str]] = []
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        errors.append({"field": "email", "message": f"{email!r} is not a valid email address."})
    else:
        if User.objects.filter(email__iexact=email).exists():
            errors.append(
                {"field": "email", "message": f"A user with the email {email} already exists."}
            )
    name = (name or "").strip()
    if not name:
        errors.append({"field": "name", "message": "A name is required."})
    if password is not None:
        candidate = User(email=email, name=name)
        for message in password_problems(password, candidate):
            errors.append({"field": "password", "message": message})
    return errors


def create_user(
    email: str,
    *,
    name: str,
    role: Role | str | None = None,
    profile: Profile | str | None = None,
    manager: User | str | None = None,
    admin: bool = False,
    password: str | None = None,
    by: User | None = None,
) -> User:
    """Add a user; without ``password`` the user cannot sign in until one is set.

    ``role`` and ``profile`` are objects or names (defaults: Sales Representative and
    Standard; for an administrator CEO and Administrator). ``manager`` is a user or an
    email address. ``admin`` also makes the user a superuser with back-office access.
    """
    _check_actor(by)
    errors = new_user_problems(email, name=name, password=password)

    def problem(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    email = (email or "").strip().lower()
    name = (name or "").strip()

    if role is None:
        role = ADMIN_ROLE if admin else DEFAULT_ROLE
    if isinstance(role, str):
        found_role = find_role(role)
        if found_role is None:
            problem("role", f"There is no role named {role!r}. Roles: {_names(Role)}.")
        role = found_role

    if profile is None:
        profile = ADMIN_PROFILE if admin else DEFAULT_PROFILE
    if isinstance(profile, str):
        found_profile = find_profile(profile)
        if found_profile is None:
            problem(
                "profile", f"There is no profile named {profile!r}. Profiles: {_names(Profile)}."
            )
        profile = found_profile

    if isinstance(manager, str):
        found_manager = find_user(manager)
        if found_manager is None:
            problem("manager", f"There is no user with the email {manager.strip()!r}.")
        manager = found_manager
    if manager is not None and not manager.is_active:
        problem("manager", f"{manager.email} is deactivated and cannot be a manager.")

    if errors:
        raise Invalid(errors)

    extra = {"is_staff": True, "is_superuser": True} if admin else {}
    try:
        with transaction.atomic():
            made = User.objects.create_user(
                email,
                password or None,
                name=name,
                role=role,
                profile=profile,
                manager=manager,
                **extra,
            )
            outbox.record(UserCreated(user_id=made.pk, actor_id=by.pk if by else None))
            return made
    except ValidationError as exc:
        raise Invalid(_validation_errors(exc)) from None


# What ``update_user`` may change; passwords are set by their owner or on creation.
USER_FIELDS = ("name", "email", "role", "profile", "manager", "is_active")


def update_user(target: User, changes: dict[str, Any], *, by: User | None) -> User:
    """Change ``target``'s fields among ``USER_FIELDS``; ``is_active=False`` deactivates.

    ``role``/``profile`` are objects or names, ``manager`` a user, an email or None. Every
    problem is reported at once as ``Invalid``; nothing is written unless all is well.
    """
    _check_actor(by)
    errors: list[dict[str, str]] = []

    def problem(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    unknown = set(changes) - set(USER_FIELDS)
    for field in sorted(unknown):
        problem(field, "This field cannot be changed here.")
    fields: dict[str, Any] = {}
    if "name" in changes:
        fields["name"] = (changes["name"] or "").strip()
        if not fields["name"]:
            problem("name", "A name is required.")
    if "email" in changes:
        email = (changes["email"] or "").strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            problem("email", f"{email!r} is not a valid email address.")
        else:
            if User.objects.filter(email__iexact=email).exclude(pk=target.pk).exists():
                problem("email", f"A user with the email {email} already exists.")
        fields["email"] = email
    for field, model, find in (("role", Role, find_role), ("profile", Profile, find_profile)):
        if field not in changes:
            continue
        value = changes[field]
        if isinstance(value, str):
            value = find(value)
            if value is None:
                problem(field, f"There is no {field} named {changes[field]!r}: {_names(model)}.")
        elif value is None:
            problem(field, f"A {field} is required.")
        fields[field] = value
    if "manager" in changes:
        manager = changes["manager"]
        if isinstance(manager, str):
            manager = find_user(manager)
            if manager is None:
                problem("manager", f"There is no user with the email {changes['manager']!r}.")
        if manager is not None and manager.pk == target.pk:
            problem("manager", "A user cannot report to themselves.")
        elif manager is not None and not manager.is_active:
            problem("manager", f"{manager.email} is deactivated and cannot be a manager.")
        fields["manager"] = manager
    if "is_active" in changes:
        active = bool(changes["is_active"])
        if not active and by is not None and by.pk == target.pk:
            problem("is_active", "You cannot deactivate yourself.")
        if active != target.is_active:
            fields["is_active"] = active
            fields["deactivated_at"] = None if active else timezone.now()
    if errors:
        raise Invalid(errors)
    for name, value in fields.items():
        setattr(target, name, value)
    if fields:
        with transaction.atomic():
            target.save(update_fields=list(fields))
            outbox.record(
                UserUpdated(
                    user_id=target.pk,
                    actor_id=by.pk if by else None,
                    fields=sorted(f for f in fields if f != "deactivated_at"),
                )
            )
    return target


def _role_problems(
    name: str, parent: Role | None, *, role: Role | None = None
) -> list[dict[str, str]]:
    """What is wrong with ``name`` and ``parent`` for a new role, or for ``role`` changed."""
    errors: list[dict[str, str]] = []
    if not name:
        errors.append({"field": "name", "message": "A name is required."})
    elif len(name) > Role._meta.get_field("name").max_length:
        errors.append({"field": "name", "message": "A role's name has at most 100 characters."})
    else:
        clash = Role.objects.filter(name__iexact=name)
        if role is not None:
            clash = clash.exclude(pk=role.pk)
        if clash.exists():
            errors.append({"field": "name", "message": f"A role named {name!r} already exists."})
    if role is not None and parent is not None and (parent.pk == role.pk or role.is_above(parent)):
        errors.append(
            {
                "field": "parent",
                "message": f"{role.name} cannot report to {parent.name}: "
                "a role cannot report to itself or to a role below it.",
            }
        )
    return errors


def _find_parent(parent: Role | str | None, errors: list[dict[str, str]]) -> Role | None:
    if not isinstance(parent, str):
        return parent
    found = find_role(parent)
    if found is None:
        errors.append(
            {
                "field": "parent",
                "message": f"There is no role named {parent!r}. Roles: {_names(Role)}.",
            }
        )
    return found


def create_role(
    name: str,
    *,
    parent: Role | str | None,
    share_with_peers: bool = False,
    by: User | None = None,
) -> Role:
    """Add a role reporting to ``parent`` (an object or a name; None: a top of the hierarchy)."""
    _check_actor(by)
    errors: list[dict[str, str]] = []
    name = (name or "").strip()
    parent = _find_parent(parent, errors)
    errors = _role_problems(name, parent) + errors
    if errors:
        raise Invalid(errors)
    role = Role(name=name, parent=parent, share_with_peers=share_with_peers)
    with transaction.atomic():
        role.save()
    return role


ROLE_FIELDS = ("name", "parent", "share_with_peers")


def update_role(role: Role, changes: dict[str, Any], *, by: User | None) -> Role:
    """Change ``role``'s fields among ``ROLE_FIELDS``; moving it moves the roles below it."""
    _check_actor(by)
    errors: list[dict[str, str]] = [
        {"field": field, "message": "This field cannot be changed here."}
        for field in sorted(set(changes) - set(ROLE_FIELDS))
    ]
    name = (changes["name"] or "").strip() if "name" in changes else role.name
    parent = _find_parent(changes["parent"], errors) if "parent" in changes else role.parent
    errors = _role_problems(name, parent, role=role) + errors
    if errors:
        raise Invalid(errors)
    role.name, role.parent = name, parent
    if "share_with_peers" in changes:
        role.share_with_peers = bool(changes["share_with_peers"])
    role.save()  # atomic, with the paths of the roles below
    return role


GROUP_FIELDS = ("name", "description", "users", "roles", "include_subordinate_roles")


def _group_problems(changes: dict[str, Any], group: Group | None) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = [
        {"field": field, "message": "This field cannot be changed here."}
        for field in sorted(set(changes) - set(GROUP_FIELDS))
    ]
    if group is None or "name" in changes:
        name = (changes.get("name") or "").strip()
        if not name:
            errors.append({"field": "name", "message": "A name is required."})
        elif len(name) > Group._meta.get_field("name").max_length:
            errors.append(
                {"field": "name", "message": "A group's name has at most 100 characters."}
            )
        else:
            clash = Group.objects.filter(name__iexact=name)
            if group is not None:
                clash = clash.exclude(pk=group.pk)
            if clash.exists():
                errors.append(
                    {"field": "name", "message": f"A group named {name!r} already exists."}
                )
    limit = Group._meta.get_field("description").max_length
    if len(changes.get("description") or "") > limit:
        errors.append({"field": "description", "message": f"At most {limit} characters."})
    return errors


def _members(
    changes: dict[str, Any], errors: list[dict[str, str]]
) -> tuple[list[User] | None, list[Role] | None]:
    """``users`` (users, emails or ids) and ``roles`` (roles, names or ids) of ``changes``
    as rows, each once."""
    users: list[User] | None = None
    roles: list[Role] | None = None
    if "users" in changes:
        users = []
        for given in changes["users"] or []:
            if isinstance(given, str):
                found = find_user(given)
            elif isinstance(given, int):
                found = User.objects.filter(pk=given).first()
            else:
                found = given
            if found is None:
                errors.append({"field": "users", "message": f"There is no user {given!r}."})
            elif not found.is_active:
                errors.append({"field": "users", "message": f"{found.email} is deactivated."})
            elif found not in users:
                users.append(found)
    if "roles" in changes:
        roles = []
        for given in changes["roles"] or []:
            if isinstance(given, str):
                found_role = find_role(given)
            elif isinstance(given, int):
                found_role = Role.objects.filter(pk=given).first()
            else:
                found_role = given
            if found_role is None:
                errors.append(
                    {
                        "field": "roles",
                        "message": f"There is no role {given!r}. Roles: {_names(Role)}.",
                    }
                )
            elif found_role not in roles:
                roles.append(found_role)
    return users, roles


def create_group(changes: dict[str, Any], *, by: User | None) -> Group:
    """Add a group: ``name``, ``description``, ``users`` (users or emails), ``roles`` (roles
    or names), ``include_subordinate_roles``."""
    return _save_group(None, changes, by=by)


def update_group(group: Group, changes: dict[str, Any], *, by: User | None) -> Group:
    """Change ``group``'s fields among ``GROUP_FIELDS``; ``users`` and ``roles`` replace
    the members."""
    return _save_group(group, changes, by=by)


def _save_group(group: Group | None, changes: dict[str, Any], *, by: User | None) -> Group:
    _check_actor(by)
    errors = _group_problems(changes, group)
    users, roles = _members(changes, errors)
    if errors:
        raise Invalid(errors)
    with transaction.atomic():
        if group is None:
            group = Group()
        if "name" in changes:
            group.name = changes["name"].strip()
        if "description" in changes:
            group.description = (changes["description"] or "").strip()
        if "include_subordinate_roles" in changes:
            group.include_subordinate_roles = bool(changes["include_subordinate_roles"])
        group.save()
        if users is not None:
            group.users.set(users)
        if roles is not None:
            group.roles.set(roles)
    return group


def delete_group(group: Group, *, by: User | None) -> None:
    """Remove ``group``; sharing with it stops (its share targets go with it)."""
    _check_actor(by)
    with transaction.atomic():
        group.delete()


def set_module_defaults(levels: dict[str, str], *, by: User | None) -> None:
    """Set the organisation-wide default access of the modules named in ``levels``."""
    _check_actor(by)
    errors: list[dict[str, str]] = []
    for module, level in levels.items():
        if module not in MODULES:
            errors.append(
                {"field": module, "message": f"No such module; modules: {', '.join(MODULES)}."}
            )
        elif level not in AccessLevel.values:
            errors.append(
                {
                    "field": module,
                    "message": f"{level!r} is not an access level: "
                    f"{', '.join(AccessLevel.values)}.",
                }
            )
    if errors:
        raise Invalid(errors)
    with transaction.atomic():
        for module, level in levels.items():
            ModuleDefault.objects.update_or_create(module=module, defaults={"level": level})
    access.forget_remembered()


# Profiles: what each module allows, Mail Integration, administration.

PROFILE_FIELDS = ("name", "description", "is_admin", "mail_integration", "permissions")


def _other_admins_remain(profile: Profile) -> bool:
    """Someone active stays an administrator if ``profile`` stops making administrators."""
    return (
        User.objects.filter(Q(is_superuser=True) | Q(profile__is_admin=True), is_active=True)
        .exclude(Q(profile=profile) & Q(is_superuser=False))
        .exists()
    )


def save_profile(
    profile: Profile | None, changes: dict[str, Any], *, by: User | None = None
) -> Profile:
    """Add a profile (``profile`` None) or change one; ``changes`` holds fields among
    ``PROFILE_FIELDS`` (``permissions``: ``{module: [actions]}``, modules left out allow
    nothing). Administrators only. A change that would leave no active administrator is
    refused."""
    if by is not None and not by.is_admin:
        raise NotAllowed("Only administrators may add and change profiles.")
    errors: list[dict[str, str]] = []
    for field in sorted(set(changes) - set(PROFILE_FIELDS)):
        errors.append({"field": field, "message": "This field cannot be changed here."})
    target = profile or Profile(permissions={})
    values = {k: v for k, v in changes.items() if k in PROFILE_FIELDS}
    if "name" in values or profile is None:
        name = (values.get("name") or "").strip()
        values["name"] = name
        clash = Profile.objects.filter(name__iexact=name)
        if profile is not None:
            clash = clash.exclude(pk=profile.pk)
        if not name:
            errors.append({"field": "name", "message": "A name is required."})
        elif len(name) > 100:
            errors.append({"field": "name", "message": "A name has at most 100 characters."})
        elif clash.exists():
            errors.append({"field": "name", "message": f"A profile named {name!r} already exists."})
    if "description" in values:
        values["description"] = (values["description"] or "").strip()
        if len(values["description"]) > 300:
            errors.append(
                {"field": "description", "message": "A description has at most 300 characters."}
            )
    if "permissions" in values:
        errors += [
            {"field": "permissions", "message": m}
            for m in permission_problems(values["permissions"])
        ]
        if isinstance(values["permissions"], dict):
            values["permissions"] = {
                module: [a for a in ACTIONS if a in (values["permissions"].get(module) or [])]
                for module in MODULES
            }
    if (
        profile is not None
        and profile.is_admin
        and "is_admin" in values
        and not values["is_admin"]
        and not _other_admins_remain(profile)
    ):
        errors.append(
            {
                "field": "is_admin",
                "message": f"Everyone who administers crmail has the profile {profile.name}: "
                "give someone another administrator profile first.",
            }
        )
    if errors:
        raise Invalid(errors)
    for field, value in values.items():
        setattr(target, field, bool(value) if field in ("is_admin", "mail_integration") else value)
    with transaction.atomic():
        target.save()
    return target


# A user's own account: name, signature, password.

SIGNATURE_MAX = 5000
NAME_MAX = 150


def update_account(user: User, *, name: str, signature: str) -> User:
    """``user`` changes their own name and email signature."""
    errors: list[dict[str, str]] = []
    name = (name or "").strip()
    if not name:
        errors.append({"field": "name", "message": "A name is required."})
    elif len(name) > NAME_MAX:
        errors.append({"field": "name", "message": f"A name has at most {NAME_MAX} characters."})
    signature = (signature or "").replace("\r\n", "\n").strip("\n")
    if len(signature) > SIGNATURE_MAX:
        errors.append(
            {
                "field": "signature",
                "message": f"A signature has at most {SIGNATURE_MAX} characters.",
            }
        )
    if "\x00" in signature:
        errors.append({"field": "signature", "message": "The signature holds a NUL character."})
    if errors:
        raise Invalid(errors)
    user.name, user.signature = name, signature
    with transaction.atomic():
        user.save(update_fields=["name", "signature"])
    return user


def set_mark_read_on_open(user: User, value: bool) -> User:
    """``user`` chooses whether opening a message in crmail marks it read on the server."""
    user.mark_read_on_open = bool(value)
    with transaction.atomic():
        user.save(update_fields=["mark_read_on_open"])
    return user


def change_password(user: User, *, current: str, new: str, again: str, client: str = "") -> User:
    """``user`` changes their own password, giving the current one first. The current one
    is checked through the sign-in limiter (``people.ratelimit``, ``client`` the address
    asked from): a session is no way round the limit on guessing a password."""
    errors: list[dict[str, str]] = []
    try:
        attempt = ratelimit.reserve(user.email, client)
    except ratelimit.SignInLocked as exc:
        raise Invalid([{"field": "current", "message": exc.message}]) from None
    if user.check_password(current or ""):
        attempt.succeeded()
    else:
        errors.append({"field": "current", "message": "The current password is not right."})
    if not new:
        errors.append({"field": "new", "message": "Give the new password."})
    elif new != again:
        errors.append({"field": "again", "message": "The two new passwords differ."})
    else:
        errors += [{"field": "new", "message": m} for m in password_problems(new, user)]
    if errors:
        raise Invalid(errors)
    user.set_password(new)
    with transaction.atomic():
        user.save(update_fields=["password"])
    return user


# API tokens: each user makes and revokes their own; administrators (and the operator at
# the command line) anyone's. The secret is returned once, at creation, and never stored.

TOKEN_NAME_MAX = 100


def _check_token_actor(by: User | None, owner: User) -> None:
    if by is not None and by.pk != owner.pk and not by.is_admin:
        raise NotAllowed("Only administrators manage other users' API tokens.")


def create_token(owner: User, *, name: str = "", by: User | None = None) -> tuple[ApiToken, str]:
    """A new API token for ``owner``: the row and the secret, to show only this once."""
    _check_token_actor(by, owner)
    name = (name or "").strip()
    if len(name) > TOKEN_NAME_MAX:
        raise Invalid(
            [
                {
                    "field": "name",
                    "message": f"A token's name has at most {TOKEN_NAME_MAX} characters.",
                }
            ]
        )
    if not owner.is_active:
        raise Invalid([{"field": "user", "message": f"{owner.email} is deactivated."}])
    with transaction.atomic():
        return ApiToken.issue(owner, name=name)


def tokens_of(owner: User) -> list[ApiToken]:
    """``owner``'s tokens, newest first, revoked ones included (never their secrets)."""
    return list(ApiToken.objects.filter(user=owner).order_by("-created_at", "-pk"))


def revoke_token(token: ApiToken, *, by: User | None = None) -> bool:
    """Revoke ``token`` at once; False when it was revoked already."""
    _check_token_actor(by, token.user)
    if token.revoked_at is not None:
        return False
    with transaction.atomic():
        done = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    token.refresh_from_db(fields=["revoked_at"])
    return bool(done)


def _validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    if hasattr(exc, "error_dict"):
        return [
            {"field": field, "message": message}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    return [{"field": "__all__", "message": message} for message in exc.messages]
