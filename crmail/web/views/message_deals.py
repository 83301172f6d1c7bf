"""The Deals section of a message page: link the message to a deal, move the link, unlink.

Synced mail reaches a deal only by hand (SPEC F4). The section lists the deals the message
is on (those the viewer may view), each with "linked because…"; for a deal the viewer may
edit and a link they can take back, "Move to…" and "Unlink". "Link to a deal" and "Move
to…" offer first the open deals of the contacts and accounts the message is on, and a
search by name (htmx, ``message_deal_choices``; without script the search reloads the
page with ``?deal_q=…&move=…``) over the deals the viewer may edit.

The checks are ``linking.deal_links``' (the API's too): a message the viewer may not see
and a deal they may not view answer 404, a deal they may not edit 403; a change that does
not fit the links as they are comes back to the page with the reason. Each change answers
with a redirect to the message page (or, when the viewer can no longer see the message,
to the deal) and a message saying what was done. docs/decisions/016-deals-by-hand.md says
why each answer is what it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from crmail.crm.actions import NotAllowed
from crmail.crm.models import Deal
from crmail.linking import deal_links
from crmail.linking.links import LinkError
from crmail.mail.models import Message
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.visibility import may_see_message


@dataclass
class Picker:
    """A list of deals to choose from, each with a button: link here, or move here."""

    key: str  # "link", or "move-<deal id>": the element ids of this picker
    action: str  # where each choice posts
    field: str  # the name of the posted deal id
    verb: str  # the buttons' label
    from_deal: Deal | None = None
    q: str = ""
    choices: list[Deal] = field(default_factory=list)
    more: bool = False


def visible_message(request: HttpRequest, pk: int) -> Message:
    """The message when the viewer may see it (``sharing.visibility``); 404 otherwise."""
    message = get_object_or_404(Message.objects.defer("body_text"), pk=pk)
    if not may_see_message(request.user, message):  # type: ignore[arg-type]
        raise Http404("No such message.")
    return message


def _deal_id(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def _deal_or_404(user: User, deal_id: int | None) -> Deal:
    try:
        return deal_links.visible_deal(user, deal_id)
    except deal_links.NoSuchDeal:
        raise Http404("No such deal.") from None


def _picker(
    request: HttpRequest,
    message: Message,
    from_deal: Deal | None,
    q: str,
    suggested: list[Deal] | None = None,
) -> Picker:
    user: User = request.user  # type: ignore[assignment]
    if from_deal is None:
        picker = Picker("link", reverse("web:message_deal_link", args=[message.pk]), "deal", "Link")
    else:
        picker = Picker(
            f"move-{from_deal.pk}",
            reverse("web:message_deal_move", args=[message.pk, from_deal.pk]),
            "to_deal",
            "Move here",
            from_deal=from_deal,
        )
    picker.q = q.replace("\x00", "").strip()[: deal_links.MAX_QUERY]
    if picker.q:
        picker.choices, picker.more = deal_links.search_deals(user, message, picker.q)
    elif suggested is not None:
        picker.choices = suggested
    else:
        picker.choices = deal_links.suggested_deals(user, message)
    return picker


def deals_context(request: HttpRequest, message: Message) -> dict[str, object]:
    """The message page's Deals section: a fixed number of queries, whatever the number
    of deals the message is on (the suggestions serve every picker), plus the search asked."""
    user: User = request.user  # type: ignore[assignment]
    items = deal_links.deal_links(user, message)
    searching_in = _deal_id(request.GET.get("move"))  # a search made without script
    q = request.GET.get("deal_q", "")
    suggested = deal_links.suggested_deals(user, message)
    pickers: dict[int, Picker] = {}
    for item in items:
        if item.can_edit and item.movable:
            asked = q if searching_in == item.deal.pk else ""
            pickers[item.deal.pk] = _picker(request, message, item.deal, asked, suggested)
    searching = "deal_q" in request.GET
    link_q = q if searching and searching_in is None else ""
    opened = (f"move-{searching_in}" if searching_in else "link") if searching else ""
    return {
        "deals": {
            "items": [(item, pickers.get(item.deal.pk)) for item in items],
            "link_picker": _picker(request, message, None, link_q, suggested),
            "can_link": access.record_scope(user, Deal, "edit") is not None,
            "open": opened,
        }
    }


@login_required
@require_safe
def message_deal_choices(request: HttpRequest, pk: int) -> HttpResponse:
    """The deals a picker offers for ``?deal_q=`` (and ``?move=``: the deal to move from)."""
    message = visible_message(request, pk)
    from_id = _deal_id(request.GET.get("move"))
    from_deal = _deal_or_404(request.user, from_id) if from_id is not None else None  # type: ignore[arg-type]
    picker = _picker(request, message, from_deal, request.GET.get("deal_q", ""))
    return render(
        request, "web/messages/_deal_choices.html", {"message": message, "picker": picker}
    )


def _back(request: HttpRequest, message: Message, deal: Deal | None = None) -> HttpResponse:
    """To the message's Deals section; to ``deal`` when the message is out of sight now."""
    if deal is not None and not may_see_message(request.user, message):  # type: ignore[arg-type]
        return redirect("web:record_detail", module="deals", pk=deal.pk)
    return redirect(reverse("web:message", args=[message.pk]) + "#deals")


@login_required
@require_POST
def message_deal_link(request: HttpRequest, pk: int) -> HttpResponse:
    message = visible_message(request, pk)
    user: User = request.user  # type: ignore[assignment]
    deal_id = _deal_id(request.POST.get("deal"))
    if deal_id is None:
        messages.error(request, "Choose a deal to link this message to.")
        return _back(request, message)
    deal = _deal_or_404(user, deal_id)
    try:
        deal_links.link(user, message, deal)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except LinkError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Linked to the deal {deal}.")
    return _back(request, message)


@login_required
@require_POST
def message_deal_unlink(request: HttpRequest, pk: int, deal_pk: int) -> HttpResponse:
    message = visible_message(request, pk)
    user: User = request.user  # type: ignore[assignment]
    deal = _deal_or_404(user, deal_pk)
    try:
        deal_links.unlink(user, message, deal)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except LinkError as exc:
        messages.error(request, str(exc))
        return _back(request, message)
    messages.success(request, f"Unlinked from the deal {deal}.")
    return _back(request, message, deal)


@login_required
@require_POST
def message_deal_move(request: HttpRequest, pk: int, deal_pk: int) -> HttpResponse:
    message = visible_message(request, pk)
    user: User = request.user  # type: ignore[assignment]
    from_deal = _deal_or_404(user, deal_pk)
    to_id = _deal_id(request.POST.get("to_deal"))
    if to_id is None:
        messages.error(request, "Choose the deal to move this message to.")
        return _back(request, message)
    to_deal = _deal_or_404(user, to_id)
    try:
        deal_links.move(user, message, from_deal, to_deal)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except LinkError as exc:
        messages.error(request, str(exc))
        return _back(request, message)
    messages.success(request, f"Moved from the deal {from_deal} to the deal {to_deal}.")
    return _back(request, message, to_deal)
