"""Leads, Contacts, Accounts and Deals: list, detail, create, edit, delete.

A record the user may not see answers 404, whatever the address (its existence never
shows); one the user sees but may not change answers 403 with a message.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from crmail.crm import actions
from crmail.crm.forms import FORMS
from crmail.crm.models import Record
from crmail.insights import queries as insight_queries
from crmail.intelligence import queries as intelligence
from crmail.linking.links import link_progress
from crmail.linking.models import JobState, LinkJob
from crmail.linking.models import Module as LinkModule
from crmail.mail.models import Message
from crmail.mail.tags import TagInvalid, clean_name
from crmail.mailboxes import live
from crmail.people import access
from crmail.people.models import User
from crmail.sharing import emails
from crmail.sharing import live as live_emails
from crmail.sharing.live import LiveItem
from crmail.sharing.visibility import LiveAccess
from crmail.web import modules
from crmail.web.modules import MODULES, Module
from crmail.web.views import intelligence as intelligence_pages
from crmail.web.views.insights import best_time_context
from crmail.web.views.sharing import record_sharing_context
from crmail.web.views.tasks import tasks_context


def _visible_record(request: HttpRequest, module: Module, pk: int) -> Record:
    """The record when the user may see it; 404 otherwise."""
    qs = access.visible(request.user, module.model).select_related(*module.select_related)
    return get_object_or_404(qs, pk=pk)


def _is_partial(request: HttpRequest, target: str = "results") -> bool:
    """An htmx request for one part of the page only (not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Target") == target
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


@login_required
def record_list(request: HttpRequest, module: str) -> HttpResponse:
    mod = MODULES[module]
    q = request.GET.get("q", "").strip()[:200]
    sort = modules.parse_sort(mod, request.GET.get("sort"))
    page = Paginator(modules.listing(request.user, mod, q, sort), modules.PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = list(page.object_list)
    if mod.name in ("contacts", "deals"):
        modules.hide_invisible_accounts(request.user, rows)
    context = {
        "mod": mod,
        "module": module,
        "q": q,
        "sort": sort,
        "page": page,
        "rows": rows,
        "can_create": access.can_create(request.user, mod.model),
    }
    template = "web/records/_results.html" if _is_partial(request) else "web/records/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


EMAILS_PAGE_SIZE = 20
THREAD_LIMIT = 200


def _email_view(request: HttpRequest) -> tuple[str, int | None, str | None]:
    """The Emails list's view, user and tag from the address (unknown values: all, none;
    a tag that cannot be one: none)."""
    view = request.GET.get("view", "all")
    if view not in emails.VIEWS:
        view = "all"
    raw_user = request.GET.get("user", "")
    user_id = int(raw_user) if raw_user.isdigit() and len(raw_user) < 19 else None
    try:
        tag = clean_name(request.GET["tag"]) if request.GET.get("tag", "").strip() else None
    except TagInvalid:
        tag = None
    return view, user_id if view == "user" else None, tag


def _email_rows(
    viewer: User, module: str, record: Record, messages_: list[Message]
) -> list[dict[str, object]]:
    """Rows for the template: the message, its page's address and why it is here."""
    found = emails.extras(module, record.pk, [m.pk for m in messages_])
    opened = insight_queries.summaries(m.pk for m in messages_)
    intel = intelligence_pages.badges([m.pk for m in messages_])
    return [
        {
            "message": m,
            "insight": opened.get(m.pk),
            "intel": intel.get(m.pk),
            "url": f"{reverse('web:message', args=[m.pk])}?on={module}/{record.pk}",
            "reasons": [r.explanation for r in found.reasons.get(m.pk, [])],
            "tags": found.tags.get(m.pk, []),
            "count": getattr(m, "thread_count", 1),
        }
        for m in messages_
    ]


def _live_rows(
    viewer: User, module: str, record: Record, items: list[Message | LiveItem]
) -> list[dict[str, object]]:
    """Rows of a list with live mail: stored messages as ``_email_rows`` makes them, and the
    live ones with their page's address."""
    stored = {
        row["message"].pk: row  # type: ignore[attr-defined]
        for row in _email_rows(viewer, module, record, [m for m in items if isinstance(m, Message)])
    }
    rows: list[dict[str, object]] = []
    for item in items:
        if isinstance(item, Message):
            rows.append(stored[item.pk])
            continue
        url = reverse("web:live_message", args=[item.mailbox.pk, item.message.remote_id])
        rows.append({"live": item, "url": f"{url}?on={module}/{record.pk}"})
    return rows


def _mixed_context(
    request: HttpRequest,
    module: str,
    record: Record,
    stored: QuerySet[Message],
    mailboxes: list[LiveAccess],
) -> dict[str, object]:
    """A page of the Emails list with the mail of mailboxes asked live, from ``?after=``."""
    user: User = request.user  # type: ignore[assignment]
    cursor = request.GET.get("after") or None
    notices: list[str] = []
    try:
        mixed = live_emails.merged_page(
            user, module, record.pk, stored, mailboxes, cursor=cursor, limit=EMAILS_PAGE_SIZE
        )
    except live_emails.BadCursor as exc:
        notices.append(str(exc))
        mixed = live_emails.merged_page(
            user, module, record.pk, stored, mailboxes, cursor=None, limit=EMAILS_PAGE_SIZE
        )
        cursor = None
    providers = sorted({live.provider_name(a.mailbox) for a in mailboxes})
    return {
        "rows": _live_rows(user, module, record, mixed.items),
        "mixed": True,
        "stored_count": stored.count(),
        "providers": " and ".join(providers),
        "notices": notices + mixed.notices,
        "next_cursor": mixed.next_cursor,
        "after": cursor,
    }


def _emails_context(request: HttpRequest, module: str, record: Record) -> dict[str, object]:
    """The record's Emails list: one view, one page of threads (a fixed number of queries),
    with the live mail of mailboxes that keep no copy merged in (``sharing.live``)."""
    view, user_id, tag = _email_view(request)
    user: User = request.user  # type: ignore[assignment]
    choosing = view == "user" and user_id is None
    wanted, intel = intelligence_pages.filter_context(request)
    qs = emails.record_emails(user, module, record.pk, view, user_id, tag)
    qs = intelligence.narrowed(user, qs, wanted)
    # Live mail has no intelligence: a list filtered by it shows stored mail only.
    mailboxes = (
        []
        if choosing or wanted
        else live_emails.mailboxes_for(user, module, record.pk, view, user_id, tag)
    )
    view_query = f"view={view}" + (f"&user={user_id}" if user_id is not None else "")
    base = view_query + (f"&{urlencode({'tag': tag})}" if tag else "")
    query = base + (f"&{urlencode(wanted.params())}" if wanted else "")
    if mailboxes:
        page = None
        extra = _mixed_context(request, module, record, emails.thread_heads(qs), mailboxes)
    else:
        page = Paginator(
            emails.thread_heads(qs) if not choosing else qs.none(), EMAILS_PAGE_SIZE
        ).get_page(request.GET.get("page"))
        extra = {
            "rows": _email_rows(user, module, record, list(page.object_list)),
            "mixed": False,
        }
    return {
        "emails": extra
        | {
            "view": view,
            "user_id": user_id,
            "tag": tag,
            "view_query": view_query,
            "choosing": choosing,
            "views": [(key, label) for key, label in emails.VIEWS.items() if key != "user"],
            "users": list(emails.mail_users(request.user, module, record.pk)),  # type: ignore[arg-type]
            "page": page,
            "query": query,
            "base": base,
        }
        | intel
    }


def _linking(module: str, pk: int) -> LinkJob | None:
    """The background linking of a Lead's or Contact's past mail, while it runs."""
    if module not in (LinkModule.LEADS, LinkModule.CONTACTS):
        return None
    job = link_progress(module, pk)
    return job if job is not None and job.state in (JobState.QUEUED, JobState.RUNNING) else None


@login_required
def record_detail(request: HttpRequest, module: str, pk: int) -> HttpResponse:
    mod = MODULES[module]
    record = _visible_record(request, mod, pk)
    prefetch_related_objects([record], *mod.prefetch)  # its addresses: read four times
    context = {"mod": mod, "module": module, "record": record}
    context |= _emails_context(request, module, record)
    context |= record_sharing_context(request.user, module, record)  # type: ignore[arg-type]
    if _is_partial(request, "emails"):  # a view or page of the Emails list, switched in place
        template = "web/records/_emails.html"
    else:
        template = "web/records/detail.html"
        context |= {
            "fields": modules.details(mod, record),
            "linked": modules.linked(request.user, record),
            "related": modules.related(request.user, mod, record),
            "can_edit": (can_edit := access.can(request.user, record, "edit")),
            "can_delete": access.can(request.user, record, "delete"),
            "linking": _linking(module, record.pk),
        }
        context |= tasks_context(request.user, module, record, can_edit=can_edit)  # type: ignore[arg-type]
        context |= best_time_context(request.user, record)  # type: ignore[arg-type]
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@login_required
def record_email_thread(
    request: HttpRequest, module: str, pk: int, message_pk: int
) -> HttpResponse:
    """The messages of one conversation in the record's Emails list (its expanded row)."""
    mod = MODULES[module]
    record = _visible_record(request, mod, pk)
    view, user_id, tag = _email_view(request)
    if view == "user" and user_id is None:
        raise Http404("Choose a user.")
    qs = emails.record_emails(request.user, module, record.pk, view, user_id, tag)  # type: ignore[arg-type]
    head = qs.filter(pk=message_pk).first()
    if head is None:
        raise Http404("No such message on this record.")
    messages_ = list(emails.thread_messages(qs, head)[:THREAD_LIMIT])
    rows = _email_rows(request.user, module, record, messages_)  # type: ignore[arg-type]
    return render(request, "web/records/_email_thread.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def record_create(request: HttpRequest, module: str) -> HttpResponse:
    mod = MODULES[module]
    if not access.can_create(request.user, mod.model):
        raise PermissionDenied(f"Your profile does not allow creating {mod.plural}.")
    if request.method == "POST":
        form = actions.bind_form(request.user, module, request.POST.dict())
        try:
            record = actions.save_form(request.user, form)
        except actions.RecordInvalid:
            pass  # the bound form holds the errors
        except actions.NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        else:
            messages.success(request, f"The {mod.singular} {record} was created.")
            return redirect("web:record_detail", module=module, pk=record.pk)
    else:
        form = FORMS[module](user=request.user, initial={"owner": request.user.pk})
    return _form_page(request, mod, form, None)


@login_required
@require_http_methods(["GET", "POST"])
def record_edit(request: HttpRequest, module: str, pk: int) -> HttpResponse:
    mod = MODULES[module]
    record = _visible_record(request, mod, pk)
    if not access.can(request.user, record, "edit"):
        raise PermissionDenied(f"You can see this {mod.singular} but not change it.")
    if request.method == "POST":
        form = actions.bind_form(request.user, module, request.POST.dict(), instance=record)
        try:
            record = actions.save_form(request.user, form)
        except actions.RecordInvalid:
            pass
        except actions.NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        else:
            messages.success(request, f"The {mod.singular} {record} was saved.")
            return redirect("web:record_detail", module=module, pk=record.pk)
        record.refresh_from_db()  # the form wrote its input into the instance
    else:
        form = FORMS[module](user=request.user, instance=record)
    return _form_page(request, mod, form, record)


def _form_page(
    request: HttpRequest, mod: Module, form: object, record: Record | None
) -> HttpResponse:
    context = {"mod": mod, "module": mod.name, "form": form, "record": record}
    return render(request, "web/records/form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def record_delete(request: HttpRequest, module: str, pk: int) -> HttpResponse:
    mod = MODULES[module]
    record = _visible_record(request, mod, pk)
    if not access.can(request.user, record, "delete"):
        raise PermissionDenied(f"You can see this {mod.singular} but not delete it.")
    if request.method == "POST":
        name = str(record)
        try:
            actions.delete_record(request.user, record)
        except actions.NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        messages.success(request, f"The {mod.singular} {name} was deleted.")
        return redirect("web:record_list", module=module)
    return render(
        request, "web/records/confirm_delete.html", {"mod": mod, "module": module, "record": record}
    )
