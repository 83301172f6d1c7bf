"""Linking a message to deals by hand, as one user: the checks and the read side (SPEC F4).

Synced mail never reaches a Deal by itself: a user links it, unlinks it, or moves the
link to another deal. The web page (``web/views/message_deals.py``) and the API
(``api/messages.py``) both come here, so they refuse the same things for the same reasons:

- the message must be one the user may see (``sharing.visibility``): the caller's check,
  since it answers 404 before anything else;
- a deal the user may not view is, to them, no deal at all (``NoSuchDeal``);
- a deal they may view but not edit refuses the change (``crm.actions.NotAllowed``);
- a change that makes no sense for the links as they are (already linked, the same deal,
  not linked, mail sent from the deal) is a ``links.LinkError`` subclass naming the case.

The writes themselves are ``linking.links``' (``link_to_deal``, ``unlink_from_record``,
``move_deal_link``); this module only decides whether to call them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from crmail.crm.actions import NotAllowed
from crmail.crm.models import Account, Contact, Deal, StageKind
from crmail.linking import links
from crmail.linking.links import MOVABLE_REASONS, AlreadyLinked, NotLinked, StaysLinked
from crmail.linking.models import Link, Module, Reason
from crmail.linking.queries import explanations
from crmail.mail.models import Message
from crmail.people import access
from crmail.people.models import User

# Deals offered at once in a picker (suggestions or search results).
CHOICES_LIMIT = 20
MAX_QUERY = 200


class NoSuchDeal(LookupError):
    """No deal with this id that the user may view (the two are never told apart)."""


@dataclass
class DealLink:
    """One deal a message is on, as the user sees it on the message page."""

    deal: Deal
    reasons: list[str] = field(default_factory=list)  # codes: manual, sent_from_record, …
    explanations: list[str] = field(default_factory=list)  # "linked because…", in words
    can_edit: bool = False

    @property
    def movable(self) -> bool:
        """Whether a link the user may take back or move is among them."""
        return bool(set(self.reasons) & set(MOVABLE_REASONS))

    @property
    def sent_from(self) -> bool:
        return Reason.SENT_FROM_RECORD in self.reasons


# --- reading -----------------------------------------------------------------------------


def on_open_deals(viewer: User) -> QuerySet[Link, Any]:
    """The ids of the messages on a deal in an open stage that ``viewer`` may view (a
    subquery: what the "mail from open deals" filters of lists and search read)."""
    scope = access.record_scope(viewer, Deal, "view")
    if scope is None:
        return Link.objects.none().values("message_id")
    deals = Deal.objects.filter(scope, stage__kind=StageKind.OPEN).values("pk")
    return Link.objects.filter(module=Module.DEALS, record_id__in=deals).values("message_id")


def visible_deal(user: User, deal_id: int | None) -> Deal:
    """The deal ``deal_id`` when ``user`` may view it; ``NoSuchDeal`` otherwise."""
    deal = None
    if deal_id is not None and 0 < deal_id < 2**63:
        deal = access.visible(user, Deal).select_related("stage").filter(pk=deal_id).first()
    if deal is None:
        raise NoSuchDeal(f"There is no deal {deal_id}.")
    return deal


def check_may_edit(user: User, deal: Deal) -> None:
    """``NotAllowed`` unless ``user`` may edit ``deal`` (which they may view)."""
    if not access.can(user, deal, "edit"):
        raise NotAllowed(f"You can see the deal {deal} but not change its mail.")


def _deal_link_rows(message: Message) -> QuerySet[Link]:
    return Link.objects.filter(message=message, module=Module.DEALS).order_by("pk")


def deal_links(user: User, message: Message) -> list[DealLink]:
    """The deals ``message`` is on that ``user`` may view, each with why and what they may
    do (four queries, whatever the number of deals)."""
    rows = list(_deal_link_rows(message))
    if not rows:
        return []
    ids = {row.record_id for row in rows}
    deals = {
        d.pk: d
        for d in access.visible(user, Deal)
        .filter(pk__in=ids)
        .select_related("stage", "account", "contact")
    }
    editable = set(
        access.visible(user, Deal, "edit").filter(pk__in=list(deals)).values_list("pk", flat=True)
    )
    rows = [row for row in rows if row.record_id in deals]
    found: dict[int, DealLink] = {}
    for row, words in zip(rows, explanations(rows, Module.DEALS), strict=True):
        item = found.setdefault(
            row.record_id, DealLink(deals[row.record_id], can_edit=row.record_id in editable)
        )
        if row.reason not in item.reasons:
            item.reasons.append(row.reason)
        if words not in item.explanations:
            item.explanations.append(words)
    return list(found.values())


def _linked_deal_ids(message: Message) -> QuerySet[Link]:
    return _deal_link_rows(message).order_by().values("record_id")


def _editable_deals(user: User) -> QuerySet[Deal]:
    return access.visible(user, Deal, "edit").select_related("stage", "account", "contact")


def suggested_deals(
    user: User, message: Message, exclude: set[int] | None = None, limit: int = CHOICES_LIMIT
) -> list[Deal]:
    """Open deals ``user`` may edit of the contacts and accounts ``message`` is on (the
    contacts and accounts the user may view), most recently changed first; not the deals
    it is on already, nor ``exclude``. One query."""
    on = Link.objects.filter(message=message).order_by()
    contacts = access.visible(user, Contact).filter(
        pk__in=on.filter(module=Module.CONTACTS).values("record_id")
    )
    accounts = access.visible(user, Account).filter(
        Q(pk__in=on.filter(module=Module.ACCOUNTS).values("record_id"))
        | Q(pk__in=contacts.exclude(account=None).values("account_id"))
    )
    qs = (
        _editable_deals(user)
        .filter(stage__kind=StageKind.OPEN)
        .filter(Q(contact__in=contacts.values("pk")) | Q(account__in=accounts.values("pk")))
        .exclude(pk__in=_linked_deal_ids(message))
    )
    if exclude:
        qs = qs.exclude(pk__in=exclude)
    return list(qs.order_by("-modified_at", "pk")[:limit])


def search_deals(
    user: User,
    message: Message,
    query: str,
    exclude: set[int] | None = None,
    limit: int = CHOICES_LIMIT,
) -> tuple[list[Deal], bool]:
    """Deals ``user`` may edit whose name contains ``query``, open ones first; not those
    ``message`` is on, nor ``exclude``. Returns up to ``limit`` and whether there are more."""
    query = query.replace("\x00", "").strip()[:MAX_QUERY]
    qs = _editable_deals(user).exclude(pk__in=_linked_deal_ids(message))
    if query:
        qs = qs.filter(name__icontains=query)
    if exclude:
        qs = qs.exclude(pk__in=exclude)
    ordered = qs.order_by("-modified_at", "pk")
    found = list(ordered.filter(stage__kind=StageKind.OPEN)[: limit + 1])
    if len(found) <= limit:
        closed = ordered.exclude(stage__kind=StageKind.OPEN)
        found += list(closed[: limit + 1 - len(found)])
    return found[:limit], len(found) > limit


# --- changing ----------------------------------------------------------------------------


def link(user: User, message: Message, deal: Deal) -> Link:
    """Link ``message`` to ``deal`` by hand (reason "manual")."""
    check_may_edit(user, deal)
    with transaction.atomic():
        if _deal_link_rows(message).filter(record_id=deal.pk).exists():
            raise AlreadyLinked(f"This message is already linked to the deal {deal}.")
        return links.link_to_deal(user, message, deal)


def unlink(user: User, message: Message, deal: Deal) -> int:
    """Take ``message`` off ``deal``: the links a user can take back (manual, BCC dropbox,
    same thread). Mail sent from the deal stays on it (``StaysLinked``)."""
    check_may_edit(user, deal)
    reasons = set(
        _deal_link_rows(message).filter(record_id=deal.pk).values_list("reason", flat=True)
    )
    if not reasons:
        raise NotLinked(f"This message is not linked to the deal {deal}.")
    if not reasons & set(MOVABLE_REASONS):
        raise StaysLinked(
            f"This message was sent from the deal {deal} in crmail, so it stays linked there."
        )
    with transaction.atomic():
        return links.unlink_from_record(user, message, deal)


def move(user: User, message: Message, from_deal: Deal, to_deal: Deal) -> Link:
    """Move ``message``'s link from ``from_deal`` to ``to_deal`` (it becomes the user's
    manual link there); ``links.move_deal_link`` refuses what makes no sense, saying why
    (``SameDeal``, ``NotLinked``, ``StaysLinked``, ``AlreadyLinked``)."""
    check_may_edit(user, from_deal)
    check_may_edit(user, to_deal)
    with transaction.atomic():
        return links.move_deal_link(user, message, from_deal, to_deal)
