"""The one visibility layer: which messages a user may see (SPEC F5, F12).

Every reader of mail — a record's Emails list, the message page, attachments, the API,
search and reports — asks ``visible_messages`` (or ``may_see_message`` for one message).
The answer is a lazy query: no message is loaded to decide, so lists paginate, count and
filter in the database. The rules are in ``docs/decisions/013-mail-visibility.md``:

- mail on a record is seen only by those who can view the record (``people.access``);
- the viewer's own mail (a location in a mailbox they own, or sent by them from crmail);
- mail sent from crmail, by anyone, whatever their setting;
- another active user's synced mail when their setting shares it: public (to everyone,
  or to chosen users/groups and the owner's superiors in the role tree) unless every other
  participant is at one of their excluded domains; custom when they shared the record;
  never when private. Administrators get nothing more here.

On a record, which *copies* (``Location`` rows) the viewer may see is one condition,
``visible_copies``: the record's list uses it, and so do the Emails list's views (IMAP,
POP, by user), so a view never reveals that someone holds a message privately.
"""

from __future__ import annotations

import operator
from functools import reduce
from typing import Any

from django.db.models import (
    BooleanField,
    CharField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Concat, Lower

from crmail.crm.models import Account, Contact, Deal, Lead, Record
from crmail.linking.links import LINK_ROLES
from crmail.linking.models import Link, Module
from crmail.linking.queries import record_links
from crmail.mail.models import Message, Participant
from crmail.mailboxes.models import Location, Mailbox, SentMessage
from crmail.people import access
from crmail.people.models import Group, User
from crmail.sharing.models import Audience, ExcludedDomain, Mode, SharedRecord, ShareTarget

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

    The Emails list's views are these (``linking.emails``): by protocol, copies only; by
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


def may_see_message(viewer: User, message: Message | int) -> bool:
    """Whether ``viewer`` may open ``message`` (its page, attachments): the overall query."""
    pk = message.pk if isinstance(message, Message) else message
    return visible_messages(viewer).filter(pk=pk).exists()


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
    # F12: a deactivated user's synced mail leaves the lists (and returns on reactivation).
    return User.objects.filter(is_active=True, sharing__mode=mode).exclude(pk=viewer.pk)


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


class _AmongJsonStrings(Expression):
    """``value`` is one of the strings of the JSON list ``array``, compared in lower case
    (``Mailbox.extra_from_addresses``: a JSON list of addresses). One ``EXISTS`` over the
    database's JSON table function, ``json_each`` (SQLite) or ``jsonb_array_elements_text``
    (PostgreSQL). Anything but a list counts as empty, and only its strings count."""

    output_field = BooleanField()

    def __init__(self, value: Any, array: Any) -> None:
        super().__init__()
        self.value, self.array = value, array

    def get_source_expressions(self) -> list[Any]:
        return [self.value, self.array]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        self.value, self.array = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        # Only compiled expressions are put in the text; their values stay parameters.
        value, value_params = compiler.compile(self.value)
        array, array_params = compiler.compile(self.array)
        if connection.vendor == "postgresql":
            elements = (
                f"jsonb_array_elements_text(CASE WHEN jsonb_typeof({array}) = 'array' "
                f"THEN {array} ELSE '[]'::jsonb END) AS crmail_extra(address)"
            )
            sql = f"EXISTS (SELECT 1 FROM {elements} WHERE lower(crmail_extra.address) = {value})"  # noqa: S608
            return sql, (*array_params, *array_params, *value_params)
        if connection.vendor == "sqlite":
            elements = (
                f"json_each(CASE WHEN json_type({array}) = 'array' THEN {array} ELSE '[]' END) "
                "AS crmail_extra"
            )
            where = f"crmail_extra.type = 'text' AND lower(crmail_extra.value) = {value}"
            sql = f"EXISTS (SELECT 1 FROM {elements} WHERE {where})"  # noqa: S608
            return sql, (*array_params, *array_params, *value_params)
        raise NotImplementedError(f"No JSON list lookup for {connection.vendor}.")


def _internal() -> Q:
    """The location's message is internal for its mailbox's owner: the owner excludes some
    domain and every From/To/Cc participant besides the owner is at an excluded domain.
    The owner's addresses: their user email, their mailboxes' addresses, and the extra
    addresses those mailboxes send as (``Mailbox.extra_from_addresses``)."""
    owner = OuterRef("mailbox__owner_id")
    address = ExpressionWrapper(OuterRef("address"), output_field=CharField())
    at_excluded = (
        ExcludedDomain.objects.filter(setting_id=OuterRef(owner))
        .annotate(address=address)
        .filter(
            Q(address__endswith=Concat(Value("@"), F("domain")))
            | Q(address__endswith=Concat(Value("."), F("domain")))
        )
    )
    own_mailboxes = (
        Mailbox.objects.filter(owner_id=OuterRef(owner)).annotate(a=Lower("email")).values("a")
    )
    own_extra_addresses = Mailbox.objects.filter(owner_id=OuterRef(owner)).filter(
        _AmongJsonStrings(OuterRef("address"), F("extra_from_addresses"))
    )
    outsiders = (
        Participant.objects.filter(message_id=OuterRef("message_id"), role__in=LINK_ROLES)
        .exclude(address=OuterRef("mailbox__owner__email"))
        .exclude(address__in=own_mailboxes)
        .exclude(Exists(own_extra_addresses))
        .exclude(Exists(at_excluded))
    )
    return Q(Exists(ExcludedDomain.objects.filter(setting_id=owner))) & ~Q(Exists(outsiders))


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
    None: none of them; an empty Q: all of them."""
    scope = scopes[module]
    if scope is None or not scope:
        return scope
    return Q(record_id__in=MODELS[module].objects.filter(scope).values("pk"))


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
        in_accounts = Contact.objects.filter(account__in=Account.objects.filter(accounts))
        q |= Q(module=Module.CONTACTS, record_id__in=in_accounts.values("pk"))
    return q


def _shared_record_is_context(scopes: Scopes) -> Q:
    """Condition on SharedRecord rows inside a Location subquery: the shared record is one
    the viewer can view and the location's message is on it."""
    message = OuterRef(OuterRef("message_id"))
    on_it = Q(
        Exists(
            Link.objects.filter(
                message_id=message, module=OuterRef("module"), record_id=OuterRef("record_id")
            )
        )
    )
    through_contacts = Q(
        Exists(
            Link.objects.filter(
                message_id=message,
                module=Module.CONTACTS,
                record_id__in=Contact.objects.filter(
                    account_id=OuterRef(OuterRef("record_id"))
                ).values("pk"),
            )
        )
    )
    q = Q(pk__in=[])
    for module in MODELS:
        ids = _record_ids(scopes, module)
        if ids is None:
            continue
        linked = on_it | through_contacts if module == Module.ACCOUNTS else on_it
        q |= Q(module=module) & ids & linked
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
                SharedRecord.objects.filter(setting_id=OuterRef("mailbox__owner_id")).filter(
                    _shared_record_is_context(scopes)
                )
            )
        )
    )
    return Message.objects.filter(
        _own(viewer)
        | (Q(on_visible_record) & (Q(_sent_from_crmail()) | Q(shared_publicly)))
        | Q(shared_on_record)
    ).order_by("-date", "-pk")
