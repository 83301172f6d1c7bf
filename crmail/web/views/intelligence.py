"""Email intelligence in the web app (SPEC F15, decision 061): the administrators' switch
and tier (``/settings/intelligence/``), the Intelligence panel of a message page (reply
text, summary, and the suggestions with Accept and Dismiss), and the badges and filters
other pages show. Results come through ``intelligence.queries`` (only for messages the
viewer may open); answers through ``intelligence.suggestions``. htmx swaps the panel in
place; without script the page reloads with a message saying what was done.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from crmail.crm.actions import NotAllowed, RecordInvalid
from crmail.intelligence import pipeline, queries, suggestions, switch
from crmail.intelligence.models import Result, Tier
from crmail.mail.models import Message
from crmail.people.models import User
from crmail.text_forms import CheckedTextForm
from crmail.web.views.message_deals import visible_message
from crmail.web.views.settings import admin_required

TARGET = "intelligence"


class SwitchForm(CheckedTextForm, forms.Form):
    enabled = forms.BooleanField(
        label="Analyse mail on this server: sentiment, intent, summaries, signatures, "
        "meeting times",
        required=False,
    )
    tier = forms.ChoiceField(label="Analysis", choices=Tier.choices)

    def __init__(self, *args: Any, tiers: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [(k, v) for k, v in Tier.choices if k in tiers]


@admin_required
@require_http_methods(["GET", "POST"])
def intelligence_settings(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    now = switch.state()
    if request.method == "POST":
        form = SwitchForm(request.POST, tiers=now.tiers)
        if form.is_valid():
            now = switch.set_state(
                user, enabled=form.cleaned_data["enabled"], tier=form.cleaned_data["tier"]
            )
            messages.success(
                request,
                "Email intelligence is on." if now.enabled else "Email intelligence is off.",
            )
            return redirect("web:intelligence_settings")
    else:
        form = SwitchForm(initial={"enabled": now.enabled, "tier": now.tier}, tiers=now.tiers)
    context = {"form": form, "state": now, "outdated": _outdated(now.enabled)}
    return render(request, "web/settings/intelligence.html", context)


def _outdated(enabled: bool) -> str:
    """How many messages have results of an earlier analysis, as the sentence starts
    ("12 messages have"); "" when none (or while it is off: nothing is computed)."""
    n = pipeline.outdated_count() if enabled else 0
    if n > pipeline.OUTDATED_LIMIT:
        return f"More than {pipeline.OUTDATED_LIMIT:,} messages have"
    return f"{n:,} message{'s have' if n > 1 else ' has'}" if n else ""


# --- the message page's panel ------------------------------------------------------------


def panel_context(
    user: User, message: Message, *, done: str = "", problem: str = ""
) -> dict[str, Any]:
    """The Intelligence panel of a message page (the page checked the viewer may open
    the message): nothing while no result may be shown."""
    rows = queries.rows_for(user, [message.pk])
    if message.pk not in rows:
        return {"intelligence": None}
    row, summary_ok = rows[message.pk]
    return {
        "intelligence": {
            "row": row,
            "summary": row.summary if summary_ok else "",
            "signature": suggestions.signature_offers(user, message),
            "meetings": suggestions.meeting_offers(user, message),
            "targets": suggestions.meeting_targets(user, message),
            "done": done,
            "problem": problem,
        }
    }


def _answer(request: HttpRequest, message: Message, done: str, problem: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == TARGET:
        context = {"message": message} | panel_context(user, message, done=done, problem=problem)
        return render(request, "web/messages/_intelligence.html", context)
    if problem:
        messages.error(request, problem)
    else:
        messages.success(request, done)
    return redirect(reverse("web:message", args=[message.pk]) + "#intelligence")


def _record_of(post: QueryDict) -> tuple[str, int] | None:
    module = post.get("module", "")
    try:
        record_id = int(post.get("record_id", ""))
    except ValueError:
        return None
    return (module, record_id) if record_id > 0 else None


def _refused(exc: Exception) -> str:
    """An answer refused, in words."""
    if isinstance(exc, RecordInvalid):
        return "The record refused it: " + "; ".join(e["message"] for e in exc.errors)
    return str(exc)


ANSWER_ERRORS = (
    suggestions.NoSuchSuggestion,
    suggestions.AlreadyDecided,
    suggestions.BadAnswer,
    NotAllowed,
    RecordInvalid,
)


@login_required
@require_POST
def signature_answer(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept the ticked details (``field``, repeated) or dismiss (``answer=dismiss``)."""
    message = visible_message(request, pk)
    user: User = request.user  # type: ignore[assignment]
    record = _record_of(request.POST)
    if record is None:
        return _answer(request, message, "", "Choose the record to update.")
    try:
        if request.POST.get("answer") == "dismiss":
            suggestions.dismiss_signature(user, message, *record)
            return _answer(request, message, "Dismissed: the record stays as it is.", "")
        fields = request.POST.getlist("field")
        updated = suggestions.accept_signature(user, message, *record, fields)
    except ANSWER_ERRORS as exc:
        return _answer(request, message, "", _refused(exc))
    names = ", ".join(suggestions.LABELS.get(f, f).lower() for f in dict.fromkeys(fields))
    return _answer(request, message, f"Updated {updated}: {names}.", "")


@login_required
@require_POST
def meeting_answer(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """Make the meeting a task on the chosen record (``record``: ``module:id``), or dismiss."""
    message = visible_message(request, pk)
    user: User = request.user  # type: ignore[assignment]
    try:
        if request.POST.get("answer") == "dismiss":
            suggestions.dismiss_meeting(user, message, index)
            return _answer(request, message, "Dismissed the meeting time.", "")
        module, _, record_id = request.POST.get("record", "").partition(":")
        if not record_id.isdigit():
            return _answer(request, message, "", "Choose the record the task goes on.")
        task = suggestions.accept_meeting(user, message, index, module, int(record_id))
    except ANSWER_ERRORS as exc:
        return _answer(request, message, "", _refused(exc))
    return _answer(request, message, f"Added the task “{task.title}”, due {task.due:%d %B %Y}.", "")


# --- badges and filters of lists -----------------------------------------------------------


def badges(message_ids: list[int]) -> dict[int, Result]:
    """Badges of a list's rows (ids the list read through visibility)."""
    return queries.badges(message_ids)


def filter_context(request: HttpRequest) -> tuple[queries.Filter, dict[str, Any]]:
    """The filter a list page's query string asks, and what its filter bar shows; a value
    crmail does not know is dropped with a message in words."""
    try:
        wanted = queries.from_params(request.GET)
        problem = ""
    except queries.BadFilter as exc:
        wanted, problem = queries.Filter(), str(exc)
    return wanted, {
        "intel_filter": wanted,
        "intel_problem": problem,
        "intel_on": switch.enabled(),
        "sentiments": queries.SENTIMENTS,
        "intents": queries.INTENTS,
        "presets": [(key, label) for key, (label, _) in queries.PRESETS.items()],
        "preset": request.GET.get("preset", ""),
    }
