"""The Tags section of a message page: put a tag on the message, take one off.

Whoever may see the message tags it (``sharing.visibility``; 404 otherwise); the writer is
``mail.tags``. htmx swaps the section in place; without script the page reloads with a
message saying what was done. Each tag links to the search of the mail so tagged.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crmail.mail import tags
from crmail.mail.models import Message
from crmail.people.models import User
from crmail.web.views.message_deals import visible_message

TARGET = "tags"


def tags_context(message: Message, *, done: str = "", problem: str = "") -> dict[str, object]:
    return {
        "tags": {
            "names": tags.tags_of([message.pk]).get(message.pk, []),
            "done": done,
            "problem": problem,
        }
    }


def _answer(request: HttpRequest, message: Message, done: str, problem: str) -> HttpResponse:
    if request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == TARGET:
        context = {"message": message} | tags_context(message, done=done, problem=problem)
        return render(request, "web/messages/_tags.html", context)
    if problem:
        messages.error(request, problem)
    else:
        messages.success(request, done)
    return redirect(reverse("web:message", args=[message.pk]) + "#tags")


@login_required
@require_POST
def message_tag(request: HttpRequest, pk: int) -> HttpResponse:
    """Put the tag named in ``tag`` on the message (made when new)."""
    message = visible_message(request, pk)
    user: User = request.user  # type: ignore[assignment]
    try:
        name = tags.clean_name(request.POST.get("tag", ""))
        added = tags.tag_messages([message.pk], [name], actor=user)
    except tags.TagInvalid as exc:
        return _answer(request, message, "", str(exc))
    found = tags.find(name)  # the tag as first spelt
    name = found.name if found is not None else name
    done = f"Tagged “{name}”." if added else f"It is tagged “{name}” already."
    return _answer(request, message, done, "")


@login_required
@require_POST
def message_untag(request: HttpRequest, pk: int) -> HttpResponse:
    """Take the tag named in ``tag`` off the message."""
    message = visible_message(request, pk)
    user: User = request.user  # type: ignore[assignment]
    try:
        removed = tags.untag_messages([message.pk], [request.POST.get("tag", "")], actor=user)
    except tags.TagInvalid as exc:
        return _answer(request, message, "", str(exc))
    if not removed:
        return _answer(request, message, "", "This message does not have that tag.")
    return _answer(request, message, f"Took “{removed[message.pk][0]}” off.", "")
