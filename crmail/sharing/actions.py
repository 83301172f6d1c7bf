"""The writers of sharing settings (SPEC F5), shared by the command line, web and API.

Each function checks who acts and validates everything it is given, reporting every
problem at once as ``Invalid`` (``{"field", "message"}`` items, as ``people.actions``),
then writes in one transaction. ``actor`` is the acting user: ``None`` means the operator
at the command line, who may do anything; a user may change their own setting unless an
administrator locked it; administrators may change anyone's.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from crmail.events import outbox
from crmail.events.kinds import SharingChanged
from crmail.linking.models import Module
from crmail.mail import mbox
from crmail.mail.models import Message
from crmail.mailboxes import actions as mailbox_actions
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.queries import user_mail
from crmail.people.actions import Invalid, NotAllowed, find_user
from crmail.people.models import Group, User
from crmail.sharing.models import (
    Audience,
    ExcludedDomain,
    MailBackup,
    MessageOpen,
    Mode,
    OrganisationSharing,
    SharedRecord,
    ShareTarget,
    SharingSetting,
)

log = logging.getLogger(__name__)

# Domains of public mail providers: excluding them would hide every customer writing from
# them, so they are never suggested as "your own domain".
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "ymail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "zoho.com",
        "zohomail.com",
        "fastmail.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.net",
        "gmx.de",
        "web.de",
        "mail.com",
        "yandex.com",
        "yandex.ru",
    }
)
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)

Target = User | Group | str


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def suggested_excluded_domains(user: User) -> list[str]:
    """The user's own domains (their address's, then their mailboxes'), first to exclude.

    Public mail providers (gmail.com, outlook.com, …) are left out.
    """
    addresses = [user.email, *user.mailboxes.order_by("pk").values_list("email", flat=True)]
    found: list[str] = []
    for address in addresses:
        domain = _domain_of(address or "")
        if domain and domain not in PUBLIC_MAIL_DOMAINS and domain not in found:
            found.append(domain)
    return found


def normalise_domain(text: str) -> str:
    """``" @Acme.COM. "`` → ``"acme.com"`` (IDN domains in their xn-- form)."""
    domain = (text or "").strip().lower().lstrip("@").rstrip(".")
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return domain


MODE_MEANINGS = {
    Mode.PRIVATE: "Only its owner sees synced mail, whatever the hierarchy: not even managers.",
    Mode.PUBLIC: "Colleagues who can open a record see the synced mail on it (all of them, or "
    "only those chosen), managers included; mail only with people at excluded domains, such "
    "as the owner's own, stays private.",
    Mode.CUSTOM: "Private, except on the records where the owner chooses to share it.",
}


def organisation_default() -> str:
    """The mode new users start with and the connect form preselects (private when unset)."""
    row = OrganisationSharing.objects.filter(pk=1).first()
    return row.default_mode if row else Mode.PRIVATE


def set_organisation_default(actor: User | None, mode: str) -> OrganisationSharing:
    """Set the organisation's default mode; administrators only. Existing users' settings
    stay as they are."""
    if actor is not None and not actor.is_admin:
        raise NotAllowed("Only administrators set the organisation's default mail sharing.")
    if mode not in Mode.values:
        raise Invalid(
            [
                {
                    "field": "mode",
                    "message": f"Choose one of: {', '.join(Mode.values)} (not {mode!r}).",
                }
            ]
        )
    with transaction.atomic():
        row, _ = OrganisationSharing.objects.update_or_create(
            pk=1, defaults={"default_mode": mode, "updated_by": actor}
        )
    return row


def ensure_setting(user: User) -> SharingSetting:
    """The user's setting, created when missing with the organisation's default mode (public
    to everyone who can access the record; the user's own domain excluded)."""
    setting, created = SharingSetting.objects.get_or_create(
        user=user, defaults={"mode": organisation_default()}
    )
    if created:
        ExcludedDomain.objects.bulk_create(
            [ExcludedDomain(setting=setting, domain=d) for d in suggested_excluded_domains(user)]
        )
    return setting


def connect_choice_problems(actor: User | None, user: User, mode: str | None) -> list[dict]:
    """What is wrong with choosing ``mode`` while connecting ``user``'s mailbox (empty when
    nothing): an unknown mode, or a change to a setting an administrator locked."""
    if mode is None:
        return []
    if mode not in Mode.values:
        return [
            {
                "field": "sharing",
                "message": f"Choose one of: {', '.join(Mode.values)} (not {mode!r}).",
            }
        ]
    setting = SharingSetting.objects.filter(user=user).first()
    current = setting.mode if setting else Mode.PRIVATE
    if setting and setting.locked and mode != current and actor is not None and not actor.is_admin:
        return [
            {
                "field": "sharing",
                "message": f"An administrator locked your mail sharing at "
                f"{Mode(current).label}: ask them to change it.",
            }
        ]
    return []


def choose_on_connect(actor: User | None, user: User, mode: str | None) -> None:
    """Connecting a mailbox: ``user``'s sharing becomes ``mode`` (None: unchanged). Check
    ``connect_choice_problems`` first; a locked setting chosen as it is stays untouched."""
    if mode is None:
        return
    setting = SharingSetting.objects.filter(user=user).first()
    if setting is not None and setting.mode == mode:
        return
    set_sharing(actor, user, mode=mode)


def connect_mailbox(
    actor: User,
    owner: User,
    fields: dict[str, Any],
    *,
    test: bool = True,
    sharing: str | None = None,
) -> Mailbox:
    """Connect ``owner``'s mailbox (``mailboxes.actions.connect_mailbox``) with the choice of
    who sees its synced mail: ``sharing`` (private, public, custom; None: unchanged) becomes
    the owner's setting in the transaction that saves the mailbox."""
    mailbox_actions.check_may_connect(actor, owner)
    problems = connect_choice_problems(actor, owner, sharing)
    if problems:
        raise Invalid(problems)
    return mailbox_actions.connect_mailbox(
        actor, owner, fields, test=test, on_save=lambda: choose_on_connect(actor, owner, sharing)
    )


def _check_may_change(actor: User | None, user: User, setting: SharingSetting | None) -> None:
    if actor is None or actor.is_admin:
        return
    if actor.pk != user.pk or not actor.is_active:
        raise NotAllowed("Only administrators change another user's mail sharing.")
    if setting is not None and setting.locked:
        raise NotAllowed(
            "An administrator locked your mail sharing setting: ask them to change it."
        )


def _resolve_targets(
    owner: User, targets: Iterable[Target], errors: list[dict[str, str]]
) -> tuple[list[User], list[Group]]:
    users: list[User] = []
    groups: list[Group] = []
    for target in targets:
        if isinstance(target, str):
            text = target.strip()
            if "@" in text:
                found_user = find_user(text)
                if found_user is None:
                    errors.append({"field": "share_with", "message": f"There is no user {text!r}."})
                    continue
                target = found_user
            else:
                found_group = Group.objects.filter(name__iexact=text).first()
                if found_group is None:
                    errors.append(
                        {
                            "field": "share_with",
                            "message": f"There is no group named {text!r} (a user is named "
                            "by email address).",
                        }
                    )
                    continue
                target = found_group
        if isinstance(target, User):
            if target.pk == owner.pk:
                errors.append(
                    {"field": "share_with", "message": "Sharing with yourself changes nothing."}
                )
            elif not target.is_active:
                errors.append({"field": "share_with", "message": f"{target.email} is deactivated."})
            elif target not in users:
                users.append(target)
        elif isinstance(target, Group):
            if target not in groups:
                groups.append(target)
        else:
            errors.append({"field": "share_with", "message": f"Not a user or group: {target!r}."})
    return users, groups


def _clean_domains(domains: Iterable[str], errors: list[dict[str, str]]) -> list[str]:
    cleaned: list[str] = []
    for text in domains:
        domain = normalise_domain(text)
        if not _DOMAIN.match(domain):
            errors.append(
                {
                    "field": "excluded_domains",
                    "message": f"{text!r} is not a domain (write it like example.com).",
                }
            )
        elif domain not in cleaned:
            cleaned.append(domain)
    return cleaned


def set_sharing(
    actor: User | None,
    user: User,
    *,
    mode: str | None = None,
    audience: str | None = None,
    share_with: Sequence[Target] | None = None,
    excluded_domains: Sequence[str] | None = None,
) -> SharingSetting:
    """Change ``user``'s sharing; what is ``None`` stays as it is.

    ``share_with`` (users, groups, emails or group names) replaces the chosen people; when
    given without ``audience``, the audience becomes "chosen" (or "everyone" for an empty
    list). ``excluded_domains`` replaces the excluded domains.
    """
    setting = SharingSetting.objects.filter(user=user).first()
    _check_may_change(actor, user, setting)
    errors: list[dict[str, str]] = []
    if mode is not None and mode not in Mode.values:
        errors.append(
            {"field": "mode", "message": f"Choose one of: {', '.join(Mode.values)} (not {mode!r})."}
        )
    if audience is None and share_with is not None:
        audience = Audience.CHOSEN if share_with else Audience.EVERYONE
    if audience is not None and audience not in Audience.values:
        errors.append(
            {
                "field": "audience",
                "message": f"Choose one of: {', '.join(Audience.values)} (not {audience!r}).",
            }
        )
    users: list[User] = []
    groups: list[Group] = []
    if share_with is not None:
        users, groups = _resolve_targets(user, share_with, errors)
    domains = _clean_domains(excluded_domains, errors) if excluded_domains is not None else None
    if not errors:
        final_mode = mode or (setting.mode if setting else Mode.PRIVATE)
        final_audience = audience or (setting.audience if setting else Audience.EVERYONE)
        has_targets = (
            bool(users or groups)
            if share_with is not None
            else bool(setting and setting.targets.exists())
        )
        if final_mode == Mode.PUBLIC and final_audience == Audience.CHOSEN and not has_targets:
            errors.append(
                {
                    "field": "share_with",
                    "message": "Choose at least one user or group to share with, or share "
                    "with everyone who can access the record.",
                }
            )
    if errors:
        raise Invalid(errors)
    with transaction.atomic():
        if setting is None:
            setting = SharingSetting(user=user, mode=Mode.PRIVATE)
        if mode is not None:
            setting.mode = mode
        if audience is not None:
            setting.audience = audience
        setting.updated_by = actor
        setting.save()
        if share_with is not None:
            setting.targets.all().delete()
            ShareTarget.objects.bulk_create(
                [ShareTarget(setting=setting, user=u) for u in users]
                + [ShareTarget(setting=setting, group=g) for g in groups]
            )
        if domains is not None:
            setting.excluded_domains.all().delete()
            ExcludedDomain.objects.bulk_create(
                [ExcludedDomain(setting=setting, domain=d) for d in domains]
            )
        outbox.record(
            SharingChanged(user_id=user.pk, actor_id=actor.pk if actor else None, mode=setting.mode)
        )
    return setting


def set_locked(actor: User | None, user: User, locked: bool) -> SharingSetting:
    """Lock (or unlock) ``user``'s setting; administrators only. A user without a setting
    is locked at private, which is what a missing setting already means."""
    if actor is not None and not actor.is_admin:
        raise NotAllowed("Only administrators lock mail sharing settings.")
    with transaction.atomic():
        setting, _ = SharingSetting.objects.get_or_create(
            user=user, defaults={"mode": Mode.PRIVATE}
        )
        setting.locked = locked
        setting.updated_by = actor
        setting.save(update_fields=["locked", "updated_by", "updated_at"])
    return setting


def share_record(
    actor: User | None, user: User, module: str, record_id: int, shared: bool = True
) -> bool:
    """Custom mode: share all of ``user``'s synced mail on one record (or stop).

    The choice is kept in every mode and applies while the mode is custom. To share,
    ``user`` must be able to view the record; stopping is always allowed. Returns whether
    anything changed.
    """
    from crmail.people import access
    from crmail.sharing.visibility import record_model

    setting = SharingSetting.objects.filter(user=user).first()
    _check_may_change(actor, user, setting)
    if module not in Module.values:
        raise Invalid(
            [{"field": "module", "message": f"Choose one of: {', '.join(Module.values)}."}]
        )
    model = record_model(module)
    record = model.objects.filter(pk=record_id).first()
    # Stopping needs no access: an owner who lost the record must still be able to stop
    # sharing their mail on it.
    if shared and (record is None or not access.can(user, record, "view")):
        raise Invalid(
            [{"field": "record_id", "message": f"{user.email} cannot see {module} {record_id}."}]
        )
    with transaction.atomic():
        if setting is None:
            setting = SharingSetting.objects.create(user=user, mode=Mode.PRIVATE)
        if shared:
            _, created = SharedRecord.objects.get_or_create(
                setting=setting, module=module, record_id=record_id
            )
            return created
        deleted, _ = SharedRecord.objects.filter(
            setting=setting, module=module, record_id=record_id
        ).delete()
        return bool(deleted)


def forget_record(module: str, record_id: int) -> int:
    """A record was deleted: its custom sharing choices go with it."""
    deleted, _ = SharedRecord.objects.filter(module=module, record_id=record_id).delete()
    return deleted


def record_open(
    viewer: User, message: Message, *, module: str = "", record_id: int | None = None
) -> MessageOpen:
    """Audit that ``viewer`` opened ``message`` (from a record, when given).

    Callers check ``visibility.may_see_message`` first; this only writes the fact.
    """
    return _opened(viewer, module, record_id, message=message, message_sha256=message.sha256)


def record_live_open(
    viewer: User,
    mailbox: Mailbox,
    remote_id: str,
    *,
    module: str = "",
    record_id: int | None = None,
) -> MessageOpen:
    """Audit that ``viewer`` opened a message of ``mailbox`` asked live (from a record,
    when given): its Mail ID only, as crmail keeps of such mail nothing else.

    Callers open it through ``live.open_message`` first, which decides who may."""
    return _opened(viewer, module, record_id, mailbox=mailbox, remote_id=remote_id)


def _opened(viewer: User, module: str, record_id: int | None, **message: Any) -> MessageOpen:
    """The audit row of one open by ``viewer``, from a record or not; ``message`` names
    what was opened (a stored message, or a live one's mailbox and Mail ID)."""
    return MessageOpen.objects.create(
        viewer=viewer,
        viewer_email=viewer.email,
        module=module,
        record_id=record_id,
        at=timezone.now(),
        **message,
    )


def take_backup(
    actor: User | None,
    user: User,
    on_progress: Callable[[mbox.Progress], None] | None = None,
) -> Iterator[bytes]:
    """``user``'s whole mail as an mbox file (``mail.mbox``), one message at a time.

    Once the last byte has been handed over, the backup is recorded (``MailBackup``): a
    deactivated user's synced mail, hidden from the records' lists until then, shows
    again as their setting shares it (SPEC F12). A download that stops half-way records
    nothing. Administrators only (``actor`` None: the operator at the command line).
    """
    if actor is not None and not actor.is_admin:
        raise NotAllowed("Only administrators back up a user's mail.")
    return _backup(actor, user, on_progress)


def _backup(
    actor: User | None, user: User, on_progress: Callable[[mbox.Progress], None] | None
) -> Iterator[bytes]:
    messages = size = 0
    for chunk in mbox.write_mbox(user_mail(user), on_progress):
        messages += 1
        size += len(chunk)
        yield chunk
    MailBackup.objects.create(
        user=user, taken_by=actor, taken_at=timezone.now(), messages=messages, size=size
    )
    # Ids only: no addresses in the log.
    log.info(
        "mail backup of user %s taken by %s: %d messages",
        user.pk,
        f"user {actor.pk}" if actor else "the operator",
        messages,
    )
