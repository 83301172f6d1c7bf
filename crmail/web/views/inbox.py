"""``/inbox/``: the sales inbox (SPEC F14): the user's own mail as conversations, by stream.

Read through ``crmail.mailboxes.inbox`` (the signed-in user's active mailboxes only). The
bulk bar acts through ``crmail.mailboxes.twoway`` on every message of each chosen
conversation in its folder: the server first, then crmail; a refusal is reported for that
conversation in words and changes nothing of it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from crmail.config import dates
from crmail.config.words import count
from crmail.intelligence import queries as intelligence
from crmail.mailboxes import inbox, twoway
from crmail.mailboxes.models import Folder, Location
from crmail.people.models import MODULES, User
from crmail.web.inbox_forms import ACTIONS, InboxActionForm, InboxForm
from crmail.web.views import intelligence as intelligence_pages

PAGE = 50
ADD = (("contacts", "Add as contact"), ("leads", "Add as lead"))
DONE = {
    "read": "Marked {n} read.",
    "unread": "Marked {n} unread.",
    "flag": "Flagged {n}.",
    "unflag": "Removed the flag from {n}.",
    "archive": "Archived {n}.",
    "move": "Moved {n}.",
    "delete": "Deleted {n}.",
}


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


class _Links:
    """The links of a page's rows (about eight a row): each kind reversed once, with a
    stand-in id that each row's id then replaces (reversing every link took a fifth of the
    page's time)."""

    STAND_IN = "2147483000"

    def __init__(self) -> None:
        stand_in = int(self.STAND_IN)
        self.message = reverse("web:message", args=[stand_in])
        self.compose = reverse("web:compose")
        self.sender = {
            m: reverse("web:message_sender_create", args=[stand_in, m])
            for m in ("contacts", "leads")
        }
        self.records = {m: reverse("web:record_detail", args=[m, stand_in]) for m in MODULES}

    def row(self, entry: inbox.Entry) -> dict[str, Any]:
        m = entry.message
        pk = str(m.pk)
        compose = f"{self.compose}?message={pk}&mode="
        return {
            "e": entry,
            "m": m,
            "open": self.message.replace(self.STAND_IN, pk),
            "reply": compose + "reply",
            "all": compose + "all",
            "forward": compose + "forward",
            "records": [
                (r, self.records[r.module].replace(self.STAND_IN, str(r.id))) for r in entry.records
            ],
            "add": [(label, self.sender[mod].replace(self.STAND_IN, pk)) for mod, label in ADD]
            if m.from_address and not entry.sender_known
            else [],
            "iso": timezone.localtime(m.date).isoformat() if m.date else "",
            "when": dates.when(m.date),
        }


@login_required
def inbox_page(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = InboxForm(request.GET)
    if not form.is_valid():
        problems = [str(e) for errors in form.errors.values() for e in errors]
        return render(request, "web/inbox.html", {"problems": problems, "form": form}, status=400)
    data = form.cleaned_data
    folder = None
    if data["folder"]:
        try:
            folder = inbox.own_folder(user, data["folder"])
        except inbox.NoSuchFolder:
            raise Http404("No such folder in your mailboxes.") from None
    stream = data["stream"] or None
    unread = True if data["unread"] else None
    tag = data["tag"] or None
    number = data["page"] or 1
    wanted, intel = intelligence_pages.filter_context(request)
    within = intelligence.within(user, wanted)
    got = inbox.page(
        user,
        stream=stream,
        folder=folder,
        unread=unread,
        tag=tag,
        limit=PAGE,
        offset=(number - 1) * PAGE,
        tabs=True,
        within=within,
    )
    folder_counts = inbox.folders(user)
    shown = folder or next((c.folder for c in folder_counts if c.folder.role == "inbox"), None)
    query = {
        k: v
        for k, v in (("folder", data["folder"]), ("unread", "1" if unread else None), ("tag", tag))
        if v
    }
    plain = dict(query)  # without the intelligence filters (the ready-made ones add theirs)
    query |= wanted.params()
    tabs = [
        {
            "stream": s.stream,
            "label": s.stream.capitalize(),
            "unread": s.unread,
            "total": s.total,
            "href": "?" + urlencode({**query, "stream": s.stream}),
        }
        for s in got.streams or inbox.stream_counts(user, folder, tag, within)
    ]
    here = {**query, **({"stream": stream} if stream else {})}
    links = _Links()
    intel_rows = intelligence_pages.badges([e.message.pk for e in got.items])
    context = intel | {
        "form": form,
        "rows": [links.row(e) | {"intel": intel_rows.get(e.message.pk)} for e in got.items],
        "here": here,
        "base": urlencode({**plain, **({"stream": stream} if stream else {})}),
        "count": got.count,
        "count_words": count(got.count, "conversation"),
        "stream": stream,
        "tabs": tabs,
        "all_href": "?" + urlencode(query),
        "folders": folder_counts,
        "folder": shown,
        "unread": unread,
        "tag": tag,
        "untagged_href": "?" + urlencode({k: v for k, v in here.items() if k != "tag"}),
        "tag_query": urlencode({k: v for k, v in here.items() if k not in ("tag", "stream")}),
        "unread_href": "?" + urlencode({**here, "unread": "1"}),
        "everything_href": "?" + urlencode({k: v for k, v in here.items() if k != "unread"}),
        "page": Paginator(range(got.count), PAGE).get_page(number) if got.count else None,
        "page_query": urlencode(here),
        "back": request.get_full_path(),
        "targets": [
            c.folder
            for c in folder_counts
            if shown is None or c.folder.mailbox_id == shown.mailbox_id
        ],
        "actions": ACTIONS,
    }
    return render(request, "web/inbox.html", context)


def _conversation(location: Location) -> list[Location]:
    """Every message of ``location``'s conversation in its folder, newest first."""
    if location.thread_id is None:
        return [location]
    return list(
        Location.objects.filter(folder_id=location.folder_id, thread_id=location.thread_id)
        .select_related("folder", "mailbox")
        .order_by("-date", "-pk")
    )


def _archive_of(location: Location) -> Folder | None:
    return (
        Folder.objects.filter(
            mailbox_id=location.mailbox_id, role="archive", selectable=True, exists_on_server=True
        )
        .exclude(pk=location.folder_id)
        .first()
    )


def _act(user: User, action: str, copy: Location, target: int | None) -> None:
    """One message: the server first (``twoway``), then crmail. Raises what twoway raises."""
    if action in ("read", "unread"):
        if copy.seen != (action == "read"):
            twoway.set_seen(user, copy, action == "read")
    elif action in ("flag", "unflag"):
        if copy.flagged != (action == "flag"):
            twoway.set_flagged(user, copy, action == "flag")
    elif action == "delete":
        twoway.delete(user, copy)
    else:
        twoway.move(user, copy, target)  # type: ignore[arg-type]


def _back(raw: str) -> str:
    inbox_url = reverse("web:inbox")
    return raw if raw.startswith(inbox_url) and "\n" not in raw and "\r" not in raw else inbox_url


@login_required
@require_POST
def inbox_act(request: HttpRequest) -> HttpResponse:
    """The bulk bar: read, unread, flag, unflag, archive, move to a folder, delete."""
    user = _user(request)
    form = InboxActionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(_back(request.POST.get("back", "")))
    data = form.cleaned_data
    back = _back(data["back"])
    action = data["action"]
    chosen = list(
        Location.objects.filter(
            pk__in=data["conversation"], mailbox__owner_id=user.pk, mailbox__is_active=True
        ).select_related("folder", "mailbox", "message")
    )
    if not chosen:
        messages.error(request, "Choose one or more conversations first (tick their boxes).")
        return redirect(back)
    if action == "move" and not data["target"]:
        messages.error(request, "Choose a folder to move the conversations to.")
        return redirect(back)
    with twoway.batch():  # one server connection for the whole selection
        done = _act_on_all(request, user, action, chosen, data["target"])
    if done:
        messages.success(request, DONE[action].format(n=count(done, "conversation")))
    return redirect(back)


def _act_on_all(
    request: HttpRequest, user: User, action: str, chosen: list[Location], target: int | None
) -> int:
    """Each chosen conversation in turn; a refusal is reported and the rest go on. The
    number of conversations done."""
    done = 0
    for newest in chosen:
        subject = newest.message.subject or "(no subject)"
        goal = target
        if action == "archive":
            archive = _archive_of(newest)
            if archive is None:
                messages.error(
                    request,
                    f"“{subject}”: this mailbox has no Archive folder, so nothing was archived. "
                    "Choose one on the mailbox's page, or use Move.",
                )
                continue
            goal = archive.pk
        try:
            for copy in _conversation(newest):
                _act(user, action, copy, goal)
        except (twoway.Refused, twoway.BadFolder, twoway.NotYours) as exc:
            messages.error(request, f"“{subject}”: {exc}")
            continue
        done += 1
    return done
