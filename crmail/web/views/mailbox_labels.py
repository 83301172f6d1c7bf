"""A mailbox's customer alerts and labels by deal state (SPEC F7, F8) on its page: the two
switches, the choice to remove the labels when switching them off, the log of the moves
the labels made, and undoing one. The actions decide (``mailboxes.actions``,
``mailboxes.labels``); this module shapes the form and says how it went."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from crmail.mailboxes import actions
from crmail.mailboxes.connect import can
from crmail.mailboxes.drivers.base import AppliesLabels, DriverError
from crmail.mailboxes.labels import sorting, tasks
from crmail.mailboxes.models import LabelCategory, LabelMove, Mailbox
from crmail.people.actions import Invalid, NotAllowed
from crmail.sharing.visibility import may_list_mailbox

LOG_LENGTH = 50
CHOOSE = "Choose whether to keep the three labels on the server or to remove them."
LABEL_NAMES = [str(c.label) for c in LabelCategory]


def labels_context(request: HttpRequest, mailbox: Mailbox, **extra: Any) -> dict[str, Any]:
    """What the labels card of the mailbox page shows."""
    shows_log = may_list_mailbox(request.user, mailbox)
    moves = (
        list(LabelMove.objects.filter(mailbox=mailbox).select_related("message")[:LOG_LENGTH])
        if shows_log
        else []
    )
    undoable = sorting.undoable(moves)
    return {
        "label_names": LABEL_NAMES,
        "can_label": sorting.can_label(mailbox),
        "label_word": "labels" if can(mailbox, AppliesLabels) else "folders",
        "nothing_to_sort": not mailbox.keeps_copy and not mailbox.customer_alerts,
        "shows_log": shows_log,
        "moves": [(m, undoable[m.pk] and m.mailbox.owner_id == request.user.pk) for m in moves],
        **extra,
    }


def _back(pk: int) -> HttpResponse:
    return redirect(reverse("web:mailbox_detail", args=[pk]) + "#labels")


@login_required
@require_POST
def mailbox_labels(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the two switches; switching labels off needs the choice to keep or remove."""
    mailbox = get_object_or_404(actions.mailboxes_for(request.user), pk=pk)
    alerts = request.POST.get("customer_alerts") == "on"
    labels = request.POST.get("deal_labels") == "on"
    when_off = request.POST.get("when_off", "")
    switching_off = mailbox.deal_labels and not labels
    if switching_off and when_off not in ("keep", "remove"):
        messages.error(request, CHOOSE)
        return _back(pk)
    remove = switching_off and when_off == "remove"
    try:
        actions.update_mailbox(
            request.user,
            mailbox,
            {"customer_alerts": alerts, "deal_labels": labels},
            remove_labels=remove,
        )
    except Invalid as exc:
        messages.error(request, " ".join(e["message"] for e in exc.errors))
        return _back(pk)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    if remove:
        note = "Labels are off: the three labels are being removed, their mail back to the Inbox."
    elif switching_off:
        note = "Labels are off: the three labels and the mail in them stay on the server."
    elif labels:
        note = "Labels are on: mail from your contacts is being sorted, then every ten minutes."
    else:
        note = f"Customer mail alerts are {'on' if alerts else 'off'}."
    messages.success(request, note)
    return _back(pk)


@login_required
@require_POST
def mailbox_label_undo(request: HttpRequest, pk: int, move_pk: int) -> HttpResponse:
    """Move one message back where the labels took it from."""
    mailbox = get_object_or_404(actions.mailboxes_for(request.user), pk=pk)
    move = get_object_or_404(
        LabelMove.objects.select_related("mailbox"), pk=move_pk, mailbox=mailbox
    )
    try:
        tasks.undo(request.user, move)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except (sorting.CannotUndo, tasks.Busy) as exc:
        messages.error(request, str(exc))
    except DriverError as exc:
        messages.error(request, f"The mail server did not move the message back: {exc}")
    else:
        messages.success(
            request, f"The message is back in {move.source_name}; the labels leave it there."
        )
    return _back(pk)
