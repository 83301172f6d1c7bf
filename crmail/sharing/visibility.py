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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.expressions import RawSQL

from crmail.config.bulk import values_sql
from crmail.crm.models import Account, Contact, Deal, Lead, Record
from crmail.linking.links import LINK_ROLES
from crmail.linking.models import Link, Module
from crmail.linking.queries import record_links
from crmail.mail.models import Message, Participant
from crmail.mailboxes import live
from crmail.mailboxes.models import Location, Mailbox, SentMessage
from crmail.mailboxes.replies import own_addresses_of
from crmail.people import access
from crmail.people.models import Group, Role, User
from crmail.sharing import classes
from crmail.sharing.models import (
    Audience,
    ExcludedDomain,
    MessageClass,
    Mode,
    SharedRecord,
    ShareTarget,
    SharingSetting,
    VisibilityChange,
    backup_keeps_mail_sql,
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
            Exists(model._default_manager.filter(scope, pk=record_id)),
            is_active=True,
            keeps_copy=False,
            owner__is_active=True,
        )
        .annotate(shared_here=ExpressionWrapper(Q(owner_id__in=custom), BooleanField()))
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
        elif mailbox.shared_here:
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
    return LiveAccess(mailbox, "public", excluded, frozenset(own_addresses_of([owner])[owner]))


# --- the viewer and the owners whose mail reaches them (uncorrelated subqueries) ---------


def _may_read(viewer: User | None) -> bool:
    return bool(viewer is not None and viewer.is_authenticated and viewer.is_active)


def _role_path(viewer: User) -> str | None:
    return viewer.role.path if viewer.role_id and viewer.role else None


def _sharers_sql(
    viewer: User, modes: Sequence[str], *, record: tuple[str, int] | None = None
) -> tuple[str, tuple[Any, ...]]:
    """``SELECT u.id, s.mode``: the users whose synced mail may reach ``viewer`` by a
    setting in ``modes``, once each. Never the viewer; active users, and deactivated ones
    whose mail a backup keeps (``backup_keeps_mail_sql``: SPEC F12, a deactivated user's
    mail leaves the lists without a backup and returns on reactivation). Public ones share
    with the viewer: with everyone, with the viewer or a group the viewer belongs to (as
    ``Group.member_ids`` counts members: by user, by role, or by a role above theirs when
    the group takes subordinate roles), or from below the viewer in the role tree
    (managers see what their subordinates share, even with chosen peers only). Custom
    ones, with ``record`` (module, id), only those who shared that record.

    Written out as one statement from the viewer's own ids: the ORM took about 5 ms to
    build and compile it as nested querysets, on every list, search and report."""
    q = connection.ops.quote_name
    users, settings_ = q(User._meta.db_table), q(SharingSetting._meta.db_table)
    roles, targets = q(Role._meta.db_table), q(ShareTarget._meta.db_table)
    groups, shared = q(Group._meta.db_table), q(SharedRecord._meta.db_table)
    members, group_roles = (
        q(Group.users.through._meta.db_table),
        q(Group.roles.through._meta.db_table),
    )
    params: list[Any] = [viewer.pk]
    paths: list[str] = []
    if Mode.PUBLIC in modes:
        own_groups = f"SELECT gu.group_id FROM {members} gu WHERE gu.user_id = %s"  # noqa: S608
        params_public: list[Any] = [Mode.PUBLIC, Audience.EVERYONE, viewer.pk, viewer.pk]
        path = _role_path(viewer)
        below = ""
        if path:
            ancestors_and_self = [int(part) for part in path.strip("/").split("/") if part]
            own_groups += (
                f" UNION SELECT gr.group_id FROM {group_roles} gr JOIN {groups} g"  # noqa: S608
                " ON g.id = gr.group_id WHERE gr.role_id = %s OR"
                f" (g.include_subordinate_roles AND gr.role_id IN ({_ids(ancestors_and_self)}))"
            )
            params_public.append(viewer.role_id)
            below = f" OR (SUBSTR(r.path, 1, {len(path)}) = %s AND u.role_id <> %s)"
            params_public += [path, viewer.role_id]
        paths.append(
            "(s.mode = %s AND (s.audience = %s OR EXISTS (SELECT 1"  # noqa: S608
            f" FROM {targets} t WHERE t.setting_id = u.id"
            f" AND (t.user_id = %s OR t.group_id IN ({own_groups}))){below}))"
        )
        params += params_public
    if Mode.CUSTOM in modes:
        if record is None:
            paths.append("s.mode = %s")
            params.append(Mode.CUSTOM)
        else:
            paths.append(
                f"(s.mode = %s AND EXISTS (SELECT 1 FROM {shared} h"  # noqa: S608
                " WHERE h.setting_id = u.id AND h.module = %s AND h.record_id = %s))"
            )
            params += [Mode.CUSTOM, record[0], record[1]]
    if not paths:
        raise ValueError("Name at least one sharing mode.")
    return (
        f"SELECT u.id, s.mode FROM {users} u JOIN {settings_} s ON s.user_id = u.id"  # noqa: S608
        f" LEFT JOIN {roles} r ON r.id = u.role_id WHERE u.id <> %s"
        f" AND (u.is_active OR {backup_keeps_mail_sql('u', connection)})"
        f" AND ({' OR '.join(paths)})"
    ), tuple(params)


def _sharer_ids(viewer: User, mode: str, *, record: tuple[str, int] | None = None) -> RawSQL:
    """The ids of ``_sharers_sql`` in one mode, as a subquery for ``__in``."""
    sql, params = _sharers_sql(viewer, (mode,), record=record)
    return RawSQL(f"SELECT sr.id FROM ({sql}) sr", params)  # noqa: S608, S611


def _public_sharers(viewer: User) -> RawSQL:
    """Ids of the users whose public mail reaches ``viewer`` (before excluded domains)."""
    return _sharer_ids(viewer, Mode.PUBLIC)


def _custom_sharers_of(viewer: User, module: str, record_id: int) -> RawSQL:
    """Ids of the custom sharers who shared the record (``module``, ``record_id``)."""
    return _sharer_ids(viewer, Mode.CUSTOM, record=(module, record_id))


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

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.message, self.owner = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        message, message_params = compiler.compile(self.message)
        owner, owner_params = compiler.compile(self.owner)
        if message_params or owner_params:
            raise ValueError("_InternalCopy takes columns, not values.")
        return internal_sql(message, owner, connection), ()


def internal_sql(message: str, owner: str, connection: Any) -> str:
    """The SQL of ``_InternalCopy`` for the columns ``message`` and ``owner`` (neither
    may name the aliases it uses: e, p, u, b, x)."""
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
    return (
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


def _internal() -> Q:
    """The location's message is internal for its mailbox's owner: the owner excludes some
    domain and every From/To/Cc participant besides the owner is at an excluded domain.
    The owner's addresses: their user email, their mailboxes' addresses, and the extra
    addresses those mailboxes send as (``Mailbox.extra_from_addresses``)."""
    return Q(_InternalCopy())


def _shared_publicly(viewer: User) -> Q:
    return Q(mailbox__owner_id__in=_public_sharers(viewer)) & ~_internal()


# --- on one record ------------------------------------------------------------------------


def _on_record(
    viewer: User, module: str, record_id: int, *, copies: Q | None, sends: Q | None
) -> QuerySet[Message]:
    model = record_model(module)
    scope = access.record_scope(viewer, model, "view")
    if scope is None or (copies is None and sends is None):
        return Message.objects.none()
    may_view_record = Exists(model._default_manager.filter(scope, pk=record_id))
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


def _overall(viewer: User) -> QuerySet[Message]:
    return Message.objects.filter(_overall_rules(viewer)).order_by("-date", "-pk")


def every_visible_message(viewer: User) -> QuerySet[Message]:
    """The messages of ``visible_messages(viewer)``, unordered, written for reading every
    one of them (counting, reports): through their visibility classes (``visible_rows``),
    the rules asked directly only of messages changed since their class was worked out."""
    if not _may_read(viewer):
        return Message.objects.none()
    rows = visible_rows(viewer)
    return Message.objects.filter(pk__in=RawSQL(rows.ids, rows.params))  # noqa: S611


@dataclass(frozen=True)
class VisibleRows:
    """``visible_rows``: an SQL query of rows ``(message_id, visibility_class_id, date,
    from_address, sent)`` (``COLUMNS``), each message the viewer may see once, with the
    class it is seen by (NULL: asked directly, or seen through a custom sharer's copy),
    its date, its From address in lower case and whether crmail sent it (or received it
    at a dropbox) (``sql``); ``ids``, the same query of the ids only; ``through``, what
    each class is seen through. ``custom``: the definition of ``visible_custom``, the
    copies through which the custom path shows the viewer their message (rows
    ``(message_id, protocol, location_id)``), or None; ``body`` and ``ids_body``, the
    queries without it, for a statement that defines it once for more than the rows
    (``seen_copies``); ``rules``, the viewer's (None: they may read nothing)."""

    COLUMNS = ("message_id", "visibility_class_id", "date", "from_address", "sent")

    body: str
    ids_body: str
    params: tuple[Any, ...]
    through: dict[int, classes.Through]
    custom: str | None = None
    rules: _Overall | None = None

    @property
    def sql(self) -> str:
        return self._defined(self.body)

    @property
    def ids(self) -> str:
        return self._defined(self.ids_body)

    def _defined(self, query: str) -> str:
        return f"WITH visible_custom AS ({self.custom}) {query}" if self.custom else query

    def seen_copies(self) -> Q:
        """Condition on ``Location`` rows, in a statement that defines ``visible_custom``
        when these rows have one: the copies through which the viewer sees their message
        (``visible_copies_anywhere``), the custom path's read from ``visible_custom``
        rather than asked copy by copy."""
        if self.rules is None:
            return Q(pk__in=[])
        if self.custom is None:
            return Q(_OverallCopy(self.rules))
        listed = RawSQL("SELECT vc.location_id FROM visible_custom vc", ())
        return Q(pk__in=listed) | Q(_OverallCopy(self.rules, custom=False))  # the set first


def visible_rows(viewer: User, protocol: str | None = None) -> VisibleRows:
    """The messages ``viewer`` may see (``visible_messages``), as ``VisibleRows``; with
    ``protocol``, only those seen through a copy in a mailbox of that protocol (crmail's
    own sources, sent and BCC Dropbox, are not protocols).

    Three parts (decision 063): the messages of a class the viewer sees
    (``classes.seen_through``) and changed since by no write; the messages changed since
    (``VisibilityChange``), asked the rules directly; those a custom sharer's copy lets
    the viewer see, always asked directly (which records a sharer shared is no class). A
    message of the first part also in the third is given in the third only: what it is
    seen through is then asked directly too. Written flat (SQLite's parser allows only
    so many nested queries)."""
    t = _Tables(connection)
    if not _may_read(viewer):  # no row, of the columns' types
        columns = ", ".join(f"mc.{c}" for c in VisibleRows.COLUMNS)
        nothing = f"SELECT {columns} FROM {t.message_class} mc WHERE 1 = 0"  # noqa: S608
        return VisibleRows(nothing, "SELECT NULL AS message_id WHERE 1 = 0", (), {})
    rules = _overall_rules(viewer, many=True)
    through = classes.seen_through(rules.viewer_id, rules.reaches, rules.public)
    if protocol is not None:
        through = {pk: seen for pk, seen in through.items() if protocol in seen.sources}
    in_classes, class_params = values_sql(sorted(through))
    # SQLite reads the messages of many classes faster by scanning every row against
    # the set than by the index, class by class (0.24 s against 0.97 s for 734,000 of
    # 1,000,000 rows); ``+`` keeps the index out. PostgreSQL's planner chooses itself.
    class_column = (
        "+mc.visibility_class_id"
        if _many_classed(t, in_classes, class_params)
        else "mc.visibility_class_id"
    )
    custom = rules.shared_copies(connection)
    asked_rules = rules.sql("vm.id", connection)

    def through_protocol(message: str, *, custom: bool = True) -> tuple[str, tuple[Any, ...]]:
        """`` AND …``: the message at the column ``message`` is seen through a copy in a
        mailbox of ``protocol`` (nothing without one); without ``custom``, through its
        own or public path (``visible_custom`` lists the custom path's copies)."""
        if protocol is None:
            return "", ()
        copy = _OverallCopy(rules, custom=custom).sql("vp.id", connection)
        return (
            f" AND EXISTS (SELECT 1 FROM {t.location} vp JOIN {t.mailbox} vq"  # noqa: S608
            f" ON vq.id = vp.mailbox_id WHERE vp.message_id = {message}"
            f" AND vq.protocol = %s AND {copy})"
        ), (protocol,)

    def parts(ids_only: bool) -> tuple[str, tuple[Any, ...]]:
        facts, asked_facts = "", ""
        if not ids_only:
            facts = ", mc.visibility_class_id, mc.date, mc.from_address, mc.sent"
            asked_facts = (
                ", CAST(NULL AS bigint), vm.date, LOWER(vm.from_address), EXISTS (SELECT 1"  # noqa: S608
                f" FROM {t.sent} vs2 WHERE vs2.message_id = vm.id)"
            )
        not_custom = " AND mc.message_id NOT IN (SELECT vc.message_id FROM visible_custom vc)"
        not_custom = not_custom if custom else ""
        # NOT IN, not an anti join: a set hashed once whatever the planner guesses of
        # the custom path's size (a nested loop over it took 0.7 s at 15,000 messages).
        by_class = (
            f"SELECT mc.message_id{facts} FROM {t.message_class} mc"  # noqa: S608
            f" WHERE {class_column} {in_classes} AND NOT EXISTS (SELECT 1"
            f" FROM {t.changes} ch WHERE ch.message_id = mc.message_id)"
            f"{not_custom}"
        )
        protocol_sql, protocol_params = through_protocol("vm.id")
        asked = (
            f"SELECT vm.id{asked_facts} FROM {t.message} vm"  # noqa: S608
            f" WHERE vm.id IN (SELECT ch.message_id FROM {t.changes} ch)"
            f" AND {asked_rules}{protocol_sql}"
        )
        params = (*class_params, *protocol_params)
        if not custom:
            return f"{by_class} UNION ALL {asked}", params
        # The custom path's messages: with a protocol, those of a custom copy in a
        # mailbox of it, and the others seen through an own or public copy of it (each
        # copy asked); each message once, a union of its own.
        of_custom = f"SELECT vm.id{asked_facts} FROM {t.message} vm WHERE vm.id IN"  # noqa: S608
        if protocol is None:
            asked += f" UNION {of_custom} (SELECT vc.message_id FROM visible_custom vc)"  # noqa: S608
        else:
            own_sql, own_params = through_protocol("vm.id", custom=False)
            by_custom = "SELECT vc.message_id FROM visible_custom vc WHERE vc.protocol = %s"
            asked += (
                f" UNION {of_custom} ({by_custom}) UNION {of_custom} (SELECT vc.message_id"  # noqa: S608
                f" FROM visible_custom vc) AND vm.id NOT IN ({by_custom}){own_sql}"
            )
            params = (*params, protocol, protocol, *own_params)
        # the custom sharers' mail, read once for both parts (defined by the caller)
        return f"{by_class} UNION ALL SELECT vw.* FROM ({asked}) vw", params  # noqa: S608

    body, params = parts(ids_only=False)
    ids, _ = parts(ids_only=True)
    return VisibleRows(body, ids, params, through, custom, rules)


SCAN_SHARE = 0.1  # of all messages, from which SQLite reads the classed part by a scan


def _many_classed(t: _Tables, in_classes: str, params: tuple[Any, ...]) -> bool:
    """On SQLite, whether these classes hold more than ``SCAN_SHARE`` of the messages
    (counted in the class index, 0.03 s for 734,000; the highest id as the total)."""
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(message_id) FROM {t.message_class}")  # noqa: S608
        (highest,) = cursor.fetchone()
        if not highest:
            return False
        cursor.execute(
            f"SELECT COUNT(*) FROM {t.message_class} mc"  # noqa: S608
            f" WHERE mc.visibility_class_id {in_classes}",
            params,
        )
        (classed,) = cursor.fetchone()
    return bool(classed > SCAN_SHARE * highest)


def visible_copies_anywhere(viewer: User) -> Q:
    """Condition on ``Location`` rows: the copies through which ``viewer`` sees their
    message overall (``visible_messages(viewer)``) — in the viewer's own mailbox; in the
    mailbox of an owner who shares it publicly with the viewer, not internal, of a message
    on a record the viewer may view; in the mailbox of a custom owner, of a message on a
    record the owner shared and the viewer may view. ``visible_copies`` on no one record:
    what a report grouping mail by the mailbox holding it (its owner, its protocol) may
    count, so that no report reveals who holds a message privately."""
    if not _may_read(viewer):
        return Q(pk__in=[])
    return Q(_OverallCopy(_overall_rules(viewer, many=True)))


def _overall_rules(viewer: User, *, many: bool = False) -> _Overall:
    """The values ``_Overall`` is written from, read now (a few small queries); ``many``:
    written for testing many messages (``visible_rows``)."""
    reaches = access.record_reaches(viewer, MODELS.values(), "view")
    sql, params = _sharers_sql(viewer, (Mode.PUBLIC, Mode.CUSTOM))
    public: list[int] = []
    custom: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ORDER BY u.id", params)
        for pk, mode in cursor.fetchall():
            (public if mode == Mode.PUBLIC else custom).append(pk)
    return _Overall(
        viewer.pk,
        {module: reaches[model] for module, model in MODELS.items()},
        tuple(public),
        tuple(custom),
        many=many,
    )


class _Overall(Expression):
    """On ``Message`` rows: the viewer may see the message somewhere. Written out as SQL
    from values read beforehand (what the viewer may view per module, whose mail reaches
    them) rather than built from nested querysets: the ORM took 15 to 25 ms to build and
    compile that query, on every list and every search (decision 046). The rules, as
    the module's description says:

    - a copy in the viewer's own mailbox, or sent by the viewer from crmail;
    - on a record the viewer may view (a contact's mail also on its account), and sent
      from crmail or held in a mailbox whose owner shares it publicly with the viewer
      (not internal by the owner's excluded domains, ``internal_sql``);
    - held in a mailbox whose owner shares it custom, on a record the viewer may view
      and the owner shared (a shared account also covers its contacts' mail).

    Only table names, compiled columns, module names and integer ids go into the text.
    """

    output_field = BooleanField()

    def __init__(
        self,
        viewer_id: int,
        reaches: dict[str, access.Reach | None],
        public: tuple[int, ...],
        custom: tuple[int, ...],
        message: Any = None,
        *,
        many: bool = False,
    ) -> None:
        super().__init__()
        self.many = many
        self.viewer_id = int(viewer_id)
        self.reaches = reaches
        self.public = tuple(int(pk) for pk in public)
        self.custom = tuple(int(pk) for pk in custom)
        self.message = F("pk") if message is None else message

    def get_source_expressions(self) -> list[Any]:
        return [self.message]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.message,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        message, params = compiler.compile(self.message)
        if params:
            raise ValueError("_Overall takes a column, not a value.")
        return self.sql(message, connection), ()

    def sql(self, message: str, connection: Any) -> str:
        """The condition on the column ``message``; written for many messages (``many``),
        without the custom path, which ``visible_rows`` asks apart (``shared_copies``)."""
        t = _Tables(connection)
        copy = (
            f"SELECT 1 FROM {t.location} vl JOIN {t.mailbox} vb ON vb.id = vl.mailbox_id"  # noqa: S608
            f" WHERE vl.message_id = {message}"
        )
        paths = [
            f"EXISTS ({copy} AND vb.owner_id = {self.viewer_id})",
            f"EXISTS (SELECT 1 FROM {t.sent} vs WHERE vs.message_id = {message}"  # noqa: S608
            f" AND vs.sender_id = {self.viewer_id})",
        ]
        accessible = self._accessible(t)
        if accessible:
            reaching = [f"EXISTS (SELECT 1 FROM {t.sent} vs WHERE vs.message_id = {message})"]  # noqa: S608
            if self.public:
                internal = internal_sql("vl.message_id", "vb.owner_id", connection)
                reaching.append(
                    f"EXISTS ({copy} AND vb.owner_id IN ({_ids(self.public)}) AND NOT {internal})"
                )
            paths.append(
                f"(EXISTS (SELECT 1 FROM {t.link} vk WHERE vk.message_id = {message}"  # noqa: S608
                f" AND ({' OR '.join(accessible)})) AND ({' OR '.join(reaching)}))"
            )
        shared = self._shared(t)
        if self.custom and shared and not self.many:
            paths.append(
                f"EXISTS ({copy} AND vb.owner_id IN ({_ids(self.custom)})"  # noqa: S608
                f" AND EXISTS (SELECT 1 FROM {t.link} vk WHERE vk.message_id = vl.message_id"
                f" AND ({' OR '.join(shared)})))"
            )
        return f"({' OR '.join(paths)})"

    def shared_copies(self, connection: Any) -> str | None:
        """The copies through which the custom path lets the viewer see their message
        (``_shared_copies``), as rows ``(message_id, protocol, location_id)``, or None
        when it can let them see none."""
        t = _Tables(connection)
        if not (self.custom and self._shared(t)):
            return None
        return self._shared_copies(t)

    def _shared_copies(self, t: _Tables) -> str:
        """The custom path of ``many``: the custom sharers' copies (message, mailbox
        protocol, copy) of messages on a record they shared and the viewer may view (one row
        per copy and record; a protocol filter reads the protocol), driven from the shared
        records (a few rows) rather than from every copy those sharers hold (a hash of
        every link, 1.5 s at a million messages, built even for a month's report). The
        same conditions as ``_shared``."""
        held = (
            f" JOIN {t.location} vl ON vl.message_id = vk.message_id"
            f" JOIN {t.mailbox} vb ON vb.id = vl.mailbox_id AND vb.owner_id = vh.setting_id"
            f" WHERE vh.setting_id IN ({_ids(self.custom)})"
        )
        parts = [
            f"SELECT vl.message_id, vb.protocol, vl.id AS location_id FROM {t.shared} vh"  # noqa: S608
            f" JOIN {t.link} vk"
            f" ON vk.module = vh.module AND vk.record_id = vh.record_id{held}"
            f" AND vh.module = '{module}'{self._viewable(t, module, 'vh.record_id')}"
            for module, reach in self.reaches.items()
            if reach is not None
        ]
        if self.reaches[Module.ACCOUNTS] is not None:
            parts.append(
                f"SELECT vl.message_id, vb.protocol, vl.id AS location_id FROM {t.shared} vh"  # noqa: S608
                f" JOIN {t.records[Module.CONTACTS]} vn ON vn.account_id = vh.record_id"
                f" JOIN {t.link} vk ON vk.module = '{Module.CONTACTS}' AND vk.record_id = vn.id"
                f"{held} AND vh.module = '{Module.ACCOUNTS}'"
                f"{self._viewable(t, Module.ACCOUNTS, 'vh.record_id')}"
            )
        return " UNION ALL ".join(parts)

    def _viewable(self, t: _Tables, module: str, key: str) -> str:
        """`` AND …``: the record of ``module`` whose id is ``key`` may be viewed: looked
        up by its id, or, written for many messages (``many``), found among the ids of
        the records in reach, a set read once per statement."""
        reach = self.reaches[module]
        if reach is None or reach.every:
            return ""
        table = t.records[module]
        if self.many:
            return (
                f" AND {key} IN (SELECT vr.id FROM {table} vr"  # noqa: S608
                f" WHERE vr.owner_id IN ({_ids(reach.owners)}))"
            )
        return (
            f" AND EXISTS (SELECT 1 FROM {table} vr WHERE vr.id = {key}"  # noqa: S608
            f" AND vr.owner_id IN ({_ids(reach.owners)}))"
        )

    def _accessible(self, t: _Tables) -> list[str]:
        """Conditions on a link ``vk`` (joined by OR): it puts its message on a record the
        viewer can view (a contact's link, also on the contact's account)."""
        found = [
            f"(vk.module = '{module}'{self._viewable(t, module, 'vk.record_id')})"
            for module, reach in self.reaches.items()
            if reach is not None
        ]
        accounts = self.reaches[Module.ACCOUNTS]
        if accounts is not None:
            in_account = (
                "vn.account_id IS NOT NULL"
                if accounts.every
                else f"vn.account_id IN (SELECT vr.id FROM {t.records[Module.ACCOUNTS]} vr"  # noqa: S608
                f" WHERE vr.owner_id IN ({_ids(accounts.owners)}))"
                if self.many
                else f"EXISTS (SELECT 1 FROM {t.records[Module.ACCOUNTS]} vr"  # noqa: S608
                f" WHERE vr.id = vn.account_id AND vr.owner_id IN ({_ids(accounts.owners)}))"
            )
            found.append(
                f"(vk.module = '{Module.CONTACTS}' AND EXISTS (SELECT 1"  # noqa: S608
                f" FROM {t.records[Module.CONTACTS]} vn WHERE vn.id = vk.record_id"
                f" AND {in_account}))"
            )
        return found

    def _shared(self, t: _Tables) -> list[str]:
        """Conditions on a link ``vk`` of a copy in mailbox ``vb`` (joined by OR): it puts
        the message on a record the viewer can view and the mailbox's owner shared (a
        shared account also covers its contacts' mail). Driven by the message's few links:
        each looks up one SharedRecord row by its key."""
        shared_here = (
            f"EXISTS (SELECT 1 FROM {t.shared} vh WHERE vh.setting_id = vb.owner_id"  # noqa: S608
            " AND vh.module = vk.module AND vh.record_id = vk.record_id)"
        )
        found = [
            f"(vk.module = '{module}'{self._viewable(t, module, 'vk.record_id')} AND {shared_here})"
            for module, reach in self.reaches.items()
            if reach is not None
        ]
        if self.reaches[Module.ACCOUNTS] is not None:
            found.append(
                f"(vk.module = '{Module.CONTACTS}' AND EXISTS (SELECT 1 FROM {t.shared} vh"  # noqa: S608
                f" WHERE vh.setting_id = vb.owner_id AND vh.module = '{Module.ACCOUNTS}'"
                f" AND vh.record_id IN (SELECT vn.account_id FROM {t.records[Module.CONTACTS]}"
                f" vn WHERE vn.id = vk.record_id)"
                f"{self._viewable(t, Module.ACCOUNTS, 'vh.record_id')}))"
            )
        return found


class _OverallCopy(Expression):
    """On ``Location`` rows: the copy is one through which the viewer of ``rules`` sees
    its message (``visible_copies_anywhere``): the copy paths of ``_Overall``, on this
    copy's own mailbox, with the same SQL for their parts; without ``custom``, the own
    and public paths only (``visible_rows`` lists the custom path's copies apart)."""

    output_field = BooleanField()

    def __init__(self, rules: _Overall, location: Any = None, *, custom: bool = True) -> None:
        super().__init__()
        self.rules = rules
        self.custom = custom
        self.location = F("pk") if location is None else location

    def get_source_expressions(self) -> list[Any]:
        return [self.location]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.location,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        location, params = compiler.compile(self.location)
        if params:
            raise ValueError("_OverallCopy takes a column, not a value.")
        return self.sql(location, connection), ()

    def sql(self, location: str, connection: Any) -> str:
        """The condition on the column ``location`` (a ``Location`` id)."""
        rules, t = self.rules, _Tables(connection)
        paths = [f"vb.owner_id = {rules.viewer_id}"]
        linked = f"SELECT 1 FROM {t.link} vk WHERE vk.message_id = vl.message_id"  # noqa: S608
        accessible = rules._accessible(t)
        if rules.public and accessible:
            internal = internal_sql("vl.message_id", "vb.owner_id", connection)
            paths.append(
                f"(vb.owner_id IN ({_ids(rules.public)}) AND NOT {internal}"
                f" AND EXISTS ({linked} AND ({' OR '.join(accessible)})))"
            )
        shared = rules._shared(t) if self.custom else []
        if rules.custom and shared:
            paths.append(
                f"(vb.owner_id IN ({_ids(rules.custom)})"
                f" AND EXISTS ({linked} AND ({' OR '.join(shared)})))"
            )
        return (
            f"EXISTS (SELECT 1 FROM {t.location} vl JOIN {t.mailbox} vb"  # noqa: S608
            f" ON vb.id = vl.mailbox_id WHERE vl.id = {location} AND ({' OR '.join(paths)}))"
        )


class _Tables:
    """The quoted table names ``_Overall`` reads."""

    def __init__(self, connection: Any) -> None:
        q = connection.ops.quote_name
        self.location, self.mailbox = q(Location._meta.db_table), q(Mailbox._meta.db_table)
        self.sent, self.link = q(SentMessage._meta.db_table), q(Link._meta.db_table)
        self.shared = q(SharedRecord._meta.db_table)
        self.message = q(Message._meta.db_table)
        self.message_class = q(MessageClass._meta.db_table)
        self.changes = q(VisibilityChange._meta.db_table)
        self.records = {module: q(model._meta.db_table) for module, model in MODELS.items()}


def _ids(ids: Iterable[int]) -> str:
    """Integer ids as SQL text (each passed through ``int``); ``NULL``, which no id
    equals, for none."""
    return ", ".join(str(int(pk)) for pk in ids) or "NULL"
