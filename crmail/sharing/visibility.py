"""The one visibility layer: which messages a user may see (SPEC F5, F12).

Every reader of mail — a record's Emails list, the message page, attachments, the API,
search and reports — asks ``visible_messages`` (or ``may_see_message`` for one message).
The answer is a lazy query: no message is loaded to decide, so lists paginate, count and
filter in the database. The rules are in ``docs/decisions/013-mail-visibility.md``:

- mail on a record is seen only by those who can view the record (``people.access``);
- the viewer's own mail (a location in a mailbox they own, or sent by them from crmail);
- mail sent from crmail, by anyone, whatever their setting;
- another active user's synced mail (or a deactivated one's, backed up since) when their
  setting shares it: public (to everyone, or to chosen users/groups and the owner's
  superiors in the role tree) unless every other participant is at one of their excluded
  domains; custom when they shared the record; never when private. Administrators get
  nothing more here.

On a record, which *copies* (``Location`` rows) the viewer may see is one condition,
``visible_copies``: the record's list uses it, and so do the Emails list's views (IMAP,
POP, by user), so a view never reveals that someone holds a message privately. A
mailbox's own message list (``mailbox_copies``) is its owner's alone.

Counts that say how much a mailbox holds (its status, its folders, the departed users'
page) are operational data for whoever may manage the mailbox, administrators included,
and are counted beside this layer, not through it: they name no message (decision 020).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.db.models import (
    BooleanField,
    Exists,
    Expression,
    F,
    OuterRef,
    Q,
    QuerySet,
)

from crmail.crm.models import Account, Contact, Deal, Lead, Record
from crmail.linking.links import LINK_ROLES
from crmail.linking.models import Link, Module
from crmail.linking.queries import record_links
from crmail.mail.models import Message, Participant
from crmail.mailboxes import live
from crmail.mailboxes.models import Location, Mailbox, SentMessage
from crmail.people import access
from crmail.people.models import Group, User
from crmail.sharing.models import (
    Audience,
    ExcludedDomain,
    Mode,
    SharedRecord,
    ShareTarget,
    backups_keeping_mail,
)

MODELS: dict[str, type[Record]] = {
    Module.LEADS: Lead,
    Module.CONTACTS: Contact,
    Module.ACCOUNTS: Account,
    Module.DEALS: Deal,
}


def record_model(module: str) -> type[Record]:
    """The record class of ``module`` ("leads", "contacts", "accounts", "deals")."""
    try:
        return MODELS[module]
    except KeyError:
        raise ValueError(f"No such module: {module!r}.") from None


def visible_messages(
    viewer: User, module: str | None = None, record_id: int | None = None
) -> QuerySet[Message]:
    """The messages ``viewer`` may see: on one record (``module``, ``record_id``), or overall.

    On a record: the record's Emails list as the viewer may see it, newest first; empty
    when the viewer cannot view the record (own mail included). Overall: the viewer's own
    mail, linked or not, and every message the viewer may see on at least one record.
    """
    if (module is None) != (record_id is None):
        raise ValueError("Give both module and record_id, or neither.")
    if not _may_read(viewer):
        return Message.objects.none()
    if module is not None and record_id is not None:
        return _on_record(viewer, module, record_id, copies=Q(), sends=Q())
    return _overall(viewer)


def visible_through(
    viewer: User,
    module: str,
    record_id: int,
    *,
    copies: Q | None,
    sends: Q | None,
) -> QuerySet[Message]:
    """The messages on the record that ``viewer`` may see through a visible copy that also
    meets ``copies`` (a condition on ``Location``), or through a ``SentMessage`` that meets
    ``sends``; a path given as None is not taken. ``visible_messages(viewer, module,
    record_id)`` is both paths with no further condition: ``copies=Q(), sends=Q()``.

    The Emails list's views are these (``sharing.emails``): by protocol, copies only; by
    user, that user's copies or sends. One ``EXISTS`` per path, as in the plain list.
    """
    if not _may_read(viewer):
        return Message.objects.none()
    return _on_record(viewer, module, record_id, copies=copies, sends=sends)


def visible_copies(viewer: User, module: str, record_id: int) -> Q:
    """Condition on ``Location`` rows: the copies of messages on the record (``module``,
    ``record_id``) that ``viewer`` may see — in the viewer's own mailbox, or in the mailbox
    of an active owner who shares it with the viewer for this record (public to the viewer
    and not internal by the owner's excluded domains; custom and the record shared).

    It says nothing about the record itself (access, links): combine it with
    ``visible_messages(viewer, module, record_id)``, which uses it (or ask
    ``visible_through``). A message on the record the viewer may see is one with a visible
    copy, or one sent from crmail.
    """
    if not _may_read(viewer):
        return Q(pk__in=[])
    record_model(module)
    return (
        Q(mailbox__owner_id=viewer.pk)
        | Q(mailbox__owner_id__in=_custom_sharers_of(viewer, module, record_id))
        | _shared_publicly(viewer)
    )


def own_messages(viewer: User, copies: Q | None = None) -> QuerySet[Message]:
    """The messages with a copy in ``viewer``'s own mailboxes (meeting ``copies``, a
    condition on ``Location``): a part of ``visible_messages(viewer)``, the viewer's own
    mail, as a query that starts from those copies. Filters on the viewer's own copies
    (a folder, a mailbox, unread) start here rather than test every visible message."""
    if not _may_read(viewer):
        return Message.objects.none()
    own = Location.objects.filter(copies or Q(), mailbox__owner_id=viewer.pk)
    return Message.objects.filter(pk__in=own.values("message_id")).order_by("-date", "-pk")


def may_see_message(viewer: User, message: Message | int) -> bool:
    """Whether ``viewer`` may open ``message`` (its page, attachments): the overall query."""
    pk = message.pk if isinstance(message, Message) else message
    return visible_messages(viewer).filter(pk=pk).exists()


def seen_of(viewer: User, message_ids: Iterable[int | None]) -> set[int]:
    """Of these messages (None left out), the ids of those ``viewer`` may see: one query."""
    ids = {pk for pk in message_ids if pk}
    if not ids:
        return set()
    return set(visible_messages(viewer).filter(pk__in=ids).values_list("pk", flat=True))


def may_list_mailbox(viewer: User, mailbox: Mailbox) -> bool:
    """Whether ``viewer`` may list the messages of ``mailbox``: its owner only.

    Whoever else may see the mailbox (administrators: its settings, sync state, folders and
    counts) does not see what it holds: which messages lie in a colleague's mailbox, and in
    which folders, is that colleague's mail, even for a message the viewer sees on a record
    for another reason (decision 020). Shared mail is read through the records it is on.
    """
    return _may_read(viewer) and mailbox.owner_id == viewer.pk


def mailbox_copies(viewer: User, mailbox: Mailbox) -> QuerySet[Location]:
    """The copies (``Location`` rows) a mailbox's message list shows ``viewer``: every copy
    in it for its owner, none for anyone else (``may_list_mailbox``)."""
    if not may_list_mailbox(viewer, mailbox):
        return Location.objects.none()
    return Location.objects.filter(mailbox_id=mailbox.pk, mailbox__owner_id=viewer.pk)


# --- mail asked for live (mailboxes that keep no copy: privacy mode) -------------------


@dataclass(frozen=True)
class LiveAccess:
    """A mailbox whose mail a viewer may be shown live on one record, and how: its owner's
    own mail, mail the owner shared for this record (custom), or public mail, which is
    not shown when it is internal by the owner's excluded domains (``_internal``)."""

    mailbox: Mailbox
    path: str  # "own", "custom" or "public"
    excluded: tuple[str, ...] = ()  # the owner's excluded domains (public path)
    owner_addresses: frozenset[str] = frozenset()

    def shows(self, participants: Iterable[str]) -> bool:
        """Whether a message with these From/To/Cc addresses may be shown: the same rule
        as ``_InternalCopy`` for stored copies, in Python."""
        if self.path != "public" or not self.excluded:
            return True
        others = [a.lower() for a in participants if a and a.lower() not in self.owner_addresses]
        return not all(
            any(a.endswith("@" + d) or a.endswith("." + d) for d in self.excluded) for a in others
        )


def live_mailboxes(
    viewer: User, module: str, record_id: int, owner_id: int | None = None
) -> list[LiveAccess]:
    """The mailboxes keeping no copy that a record's Emails list asks live for ``viewer``
    (only ``owner_id``'s when given): the viewer must be able to view the record, and the
    mailbox be active, of an active owner who is the viewer, shares the record with them
    (custom) or shares their mail with them (public). The same owners as
    ``visible_copies``, less deactivated ones (nothing of their live mail is backed up).
    """
    if not _may_read(viewer):
        return []
    model = record_model(module)
    scope = access.record_scope(viewer, model, "view")
    if scope is None:
        return []
    custom = _custom_sharers_of(viewer, module, record_id)
    rows = (
        Mailbox.objects.filter(
            Q(owner_id=viewer.pk)
            | Q(owner_id__in=custom)
            | Q(owner_id__in=_public_sharers(viewer)),
            Exists(model.objects.filter(scope, pk=record_id)),
            is_active=True,
            keeps_copy=False,
            owner__is_active=True,
        )
        .annotate(shared_here=Exists(custom.filter(pk=OuterRef("owner_id"))))
        .order_by("owner_id", "pk")
    )
    if owner_id is not None:
        rows = rows.filter(owner_id=owner_id)
    found: list[LiveAccess] = []
    for mailbox in rows:  # one statement; most organisations have no such mailbox
        if not live.is_live(mailbox):
            continue
        if mailbox.owner_id == viewer.pk:
            found.append(LiveAccess(mailbox, "own"))
        elif mailbox.shared_here:  # type: ignore[attr-defined]
            found.append(LiveAccess(mailbox, "custom"))
        else:
            found.append(_public_access(mailbox))
    return found


def own_live_access(viewer: User, mailbox: Mailbox) -> LiveAccess | None:
    """``viewer``'s own mailbox keeping no copy: its mail is theirs to open anywhere."""
    if not _may_read(viewer) or mailbox.owner_id != viewer.pk or not live.is_live(mailbox):
        return None
    return LiveAccess(mailbox, "own")


def _public_access(mailbox: Mailbox) -> LiveAccess:
    owner = mailbox.owner_id
    excluded = tuple(
        ExcludedDomain.objects.filter(setting_id=owner).values_list("domain", flat=True)
    )
    if not excluded:
        return LiveAccess(mailbox, "public")
    addresses = {e.lower() for e in User.objects.filter(pk=owner).values_list("email", flat=True)}
    for address, extra in Mailbox.objects.filter(owner_id=owner).values_list(
        "email", "extra_from_addresses"
    ):
        addresses.add(address.lower())
        if isinstance(extra, list):
            addresses |= {a.lower() for a in extra if isinstance(a, str)}
    return LiveAccess(mailbox, "public", excluded, frozenset(addresses))


# --- the viewer and the owners whose mail reaches them (uncorrelated subqueries) ---------


def _may_read(viewer: User | None) -> bool:
    return bool(viewer is not None and viewer.is_authenticated and viewer.is_active)


def _role_path(viewer: User) -> str | None:
    return viewer.role.path if viewer.role_id and viewer.role else None


def _viewer_groups(viewer: User) -> QuerySet[Group]:
    """The groups ``viewer`` belongs to (as ``Group.member_ids`` counts members)."""
    q = Q(users=viewer.pk)
    path = _role_path(viewer)
    if path:
        ancestors_and_self = [int(part) for part in path.strip("/").split("/") if part]
        q |= Q(roles=viewer.role_id) | Q(
            include_subordinate_roles=True, roles__in=ancestors_and_self
        )
    return Group.objects.filter(q).values("pk")


def _active_sharers(viewer: User, mode: str) -> QuerySet[User]:
    """Users in ``mode`` whose synced mail may reach others: active ones, and deactivated
    ones whose mail an administrator backed up since they were deactivated (SPEC F12: a
    deactivated user's mail leaves the lists without a backup, and returns on
    reactivation)."""
    backed_up = Exists(backups_keeping_mail().filter(user_id=OuterRef("pk")))
    kept = Q(is_active=True) | Q(backed_up)
    return User.objects.filter(kept, sharing__mode=mode).exclude(pk=viewer.pk)


def _public_sharers(viewer: User) -> QuerySet[User]:
    """Ids of the users whose public mail reaches ``viewer`` (before excluded domains)."""
    audience = (
        Q(sharing__audience=Audience.EVERYONE)
        | Q(Exists(ShareTarget.objects.filter(setting_id=OuterRef("pk"), user_id=viewer.pk)))
        | Q(
            Exists(
                ShareTarget.objects.filter(
                    setting_id=OuterRef("pk"), group_id__in=_viewer_groups(viewer)
                )
            )
        )
    )
    path = _role_path(viewer)
    if path:  # managers see what their subordinates share, even with chosen peers only
        audience |= Q(role__path__startswith=path) & ~Q(role_id=viewer.role_id)
    return _active_sharers(viewer, Mode.PUBLIC).filter(audience).values("pk")


def _custom_sharers_of(viewer: User, module: str, record_id: int) -> QuerySet[User]:
    return (
        _active_sharers(viewer, Mode.CUSTOM)
        .filter(
            sharing__shared_records__module=module, sharing__shared_records__record_id=record_id
        )
        .values("pk")
    )


# --- conditions on Location rows (the message's place in a mailbox) ---------------------


_LIKE_ESCAPED = "REPLACE(REPLACE(REPLACE({}, '\\', '\\\\'), '%%', '\\%%'), '_', '\\_')"


class _InternalCopy(Expression):
    """On ``Location`` rows: the copy is internal for its mailbox's owner (see
    ``_internal``), as one ``EXISTS … AND NOT EXISTS …`` written out: the same SQL the
    ORM built from five nested querysets, at a fraction of the cost of building it."""

    output_field = BooleanField()

    def __init__(self, message: Any = None, owner: Any = None) -> None:
        super().__init__()
        self.message = F("message_id") if message is None else message
        self.owner = F("mailbox__owner_id") if owner is None else owner

    def get_source_expressions(self) -> list[Any]:
        return [self.message, self.owner]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        self.message, self.owner = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        message, message_params = compiler.compile(self.message)
        owner, owner_params = compiler.compile(self.owner)
        if message_params or owner_params:
            raise ValueError("_InternalCopy takes columns, not values.")
        if connection.vendor == "sqlite":
            extra = (
                "json_each(CASE WHEN json_type(b.extra_from_addresses) = 'array' "
                "THEN b.extra_from_addresses ELSE '[]' END) AS x"
            )
            extra_match = "x.type = 'text' AND lower(x.value) = p.address"
        elif connection.vendor == "postgresql":
            extra = (
                "jsonb_array_elements_text(CASE WHEN jsonb_typeof(b.extra_from_addresses) = "
                "'array' THEN b.extra_from_addresses ELSE '[]'::jsonb END) AS x(address)"
            )
            extra_match = "lower(x.address) = p.address"
        else:
            raise NotImplementedError(f"No internal-mail test for {connection.vendor}.")
        at = " OR ".join(
            f"p.address LIKE '%%' || {_LIKE_ESCAPED.format(repr(sep) + ' || e.domain')} ESCAPE '\\'"
            for sep in ("@", ".")
        )
        roles = ", ".join(f"'{role}'" for role in LINK_ROLES)
        q = connection.ops.quote_name
        excluded, participants = q(ExcludedDomain._meta.db_table), q(Participant._meta.db_table)
        users, mailboxes = q(User._meta.db_table), q(Mailbox._meta.db_table)
        # Only table names, compiled column references and constants go into the text.
        sql = (
            f"(EXISTS (SELECT 1 FROM {excluded} e WHERE e.setting_id = {owner})"  # noqa: S608
            f" AND NOT EXISTS (SELECT 1 FROM {participants} p"
            f" WHERE p.message_id = {message} AND p.role IN ({roles})"
            f" AND p.address <> (SELECT u.email FROM {users} u WHERE u.id = {owner})"
            " AND p.address NOT IN"
            f" (SELECT lower(b.email) FROM {mailboxes} b WHERE b.owner_id = {owner})"
            f" AND NOT EXISTS (SELECT 1 FROM {mailboxes} b, {extra}"
            f" WHERE b.owner_id = {owner} AND {extra_match})"
            f" AND NOT EXISTS (SELECT 1 FROM {excluded} e"
            f" WHERE e.setting_id = {owner} AND ({at}))))"
        )
        return sql, ()


def _internal() -> Q:
    """The location's message is internal for its mailbox's owner: the owner excludes some
    domain and every From/To/Cc participant besides the owner is at an excluded domain.
    The owner's addresses: their user email, their mailboxes' addresses, and the extra
    addresses those mailboxes send as (``Mailbox.extra_from_addresses``)."""
    return Q(_InternalCopy())


def _shared_publicly(viewer: User) -> Q:
    return Q(mailbox__owner_id__in=_public_sharers(viewer)) & ~_internal()


def _sent_from_crmail() -> Exists:
    return Exists(SentMessage.objects.filter(message_id=OuterRef("pk")))


def _own(viewer: User) -> Q:
    return Q(
        Exists(Location.objects.filter(message_id=OuterRef("pk"), mailbox__owner_id=viewer.pk))
    ) | Q(Exists(SentMessage.objects.filter(message_id=OuterRef("pk"), sender_id=viewer.pk)))


# --- on one record ------------------------------------------------------------------------


def _on_record(
    viewer: User, module: str, record_id: int, *, copies: Q | None, sends: Q | None
) -> QuerySet[Message]:
    model = record_model(module)
    scope = access.record_scope(viewer, model, "view")
    if scope is None or (copies is None and sends is None):
        return Message.objects.none()
    may_view_record = Exists(model.objects.filter(scope, pk=record_id))
    paths = []
    if copies is not None:
        synced = Location.objects.filter(
            visible_copies(viewer, module, record_id), copies, message_id=OuterRef("pk")
        )
        paths.append(Q(Exists(synced)))
    if sends is not None:
        sent = SentMessage.objects.filter(sends, message_id=OuterRef("pk"))
        paths.append(Q(Exists(sent)))
    on_record = record_links(module, record_id).order_by().values("message_id")
    return Message.objects.filter(
        Q(pk__in=on_record), may_view_record, reduce(operator.or_, paths)
    ).order_by("-date", "-pk")


# --- overall ------------------------------------------------------------------------------


Scopes = dict[str, Q | None]


def _scopes(viewer: User) -> Scopes:
    """The record access condition per module (None: no access; empty Q: every record)."""
    return {module: access.record_scope(viewer, model, "view") for module, model in MODELS.items()}


def _record_ids(scopes: Scopes, module: str) -> Q | None:
    """Condition on a ``record_id`` column: records of ``module`` the viewer can view.
    None: none of them; an empty Q: all of them.

    A lookup of the one record by its key, not ``record_id IN (every record in scope)``:
    SQLite builds such a list anew for each statement, and a viewer who may view 100,000
    contacts paid 100 ms for it before a single message was tested (decision 045)."""
    scope = scopes[module]
    if scope is None or not scope:
        return scope
    return Q(Exists(MODELS[module].objects.filter(scope, pk=OuterRef("record_id"))))


def _accessible_links(scopes: Scopes) -> Q:
    """Condition on Link rows: the link puts its message on a record the viewer can view
    (for a contact's link, also on the contact's account)."""
    q = Q(pk__in=[])
    for module in MODELS:
        ids = _record_ids(scopes, module)
        if ids is not None:
            q |= Q(module=module) & ids
    accounts = scopes[Module.ACCOUNTS]
    if accounts is not None:
        in_account = Contact.objects.filter(pk=OuterRef("record_id"))
        if accounts:
            viewable = Account.objects.filter(accounts, pk=OuterRef("account_id"))
            in_account = in_account.filter(Exists(viewable))
        else:
            in_account = in_account.filter(account_id__isnull=False)
        q |= Q(module=Module.CONTACTS) & Q(Exists(in_account))
    return q


def _shared_record_links(scopes: Scopes) -> Q:
    """Condition on Link rows inside a Location subquery: the link puts the location's
    message on a record the viewer can view and the location's owner shared (a shared
    account also covers its contacts' mail).

    Driven by the message's few links: each looks up one SharedRecord row by its key. (The
    other way round, from the owner's SharedRecord rows to the message's links, SQLite
    walked every record the viewer may view for each message: seconds at 100,000 records.)
    """
    owner = OuterRef(OuterRef("mailbox__owner_id"))
    shared_here = Q(
        Exists(
            SharedRecord.objects.filter(
                setting_id=owner, module=OuterRef("module"), record_id=OuterRef("record_id")
            )
        )
    )
    q = Q(pk__in=[])
    for module in MODELS:
        ids = _record_ids(scopes, module)
        if ids is not None:
            q |= Q(module=module) & ids & shared_here
    account_ids = _record_ids(scopes, Module.ACCOUNTS)
    if account_ids is not None:
        account_of = Contact.objects.filter(pk=OuterRef(OuterRef("record_id"))).values("account_id")
        shared_account = SharedRecord.objects.filter(
            account_ids, setting_id=owner, module=Module.ACCOUNTS, record_id__in=account_of
        )
        q |= Q(module=Module.CONTACTS) & Q(Exists(shared_account))
    return q


def _overall(viewer: User) -> QuerySet[Message]:
    scopes = _scopes(viewer)
    on_visible_record = Exists(
        Link.objects.filter(message_id=OuterRef("pk")).filter(_accessible_links(scopes))
    )
    shared_publicly = Exists(
        Location.objects.filter(message_id=OuterRef("pk")).filter(_shared_publicly(viewer))
    )
    shared_on_record = Exists(
        Location.objects.filter(
            message_id=OuterRef("pk"),
            mailbox__owner_id__in=_active_sharers(viewer, Mode.CUSTOM).values("pk"),
        ).filter(
            Exists(
                Link.objects.filter(message_id=OuterRef("message_id")).filter(
                    _shared_record_links(scopes)
                )
            )
        )
    )
    return Message.objects.filter(
        _own(viewer)
        | (Q(on_visible_record) & (Q(_sent_from_crmail()) | Q(shared_publicly)))
        | Q(shared_on_record)
    ).order_by("-date", "-pk")
