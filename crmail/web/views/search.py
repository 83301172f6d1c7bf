"""``/search/``: the top bar's search box finds records and mail together.

Records (Leads, Contacts, Accounts, Deals) by name, email, phone or account, as their lists
search them (``web.modules``: through ``people.access``); mail through
``crmail.search.queries`` (the visibility layer), one row per thread, best match first.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crmail.intelligence.queries import week_start
from crmail.mail.tags import tags_of
from crmail.search.queries import Filters, search_messages
from crmail.search.query import QueryError, parse
from crmail.web import modules
from crmail.web.search_forms import SearchForm
from crmail.web.views import intelligence as intelligence_pages

RECORDS_SHOWN = 5
MAIL_PAGE = 20


@login_required
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    context: dict = {"form": form, "q": "", "records": [], "results": None, "problem": ""}
    wanted, intel = intelligence_pages.filter_context(request)
    context |= intel
    if form.is_valid():
        data = form.cleaned_data
        q = data["q"].strip()
        context["q"] = q
        context["base"] = urlencode({"q": q}) if q else ""
        if q:
            context["records"] = [
                {"mod": mod, "rows": rows, "more": len(rows) > RECORDS_SHOWN}
                for mod in modules.MODULES.values()
                if (
                    rows := list(
                        modules.listing(request.user, mod, q, mod.default_sort)[: RECORDS_SHOWN + 1]
                    )
                )
            ]
        filters = Filters(
            sender=data["sender"] or None,
            recipient=data["to"] or None,
            after=data["after"],
            before=data["before"],
            has_attachment=True if data["has_attachment"] else None,
            unread=True if data["unread"] else None,
            sentiment=wanted.sentiment,
            intent=wanted.intent,
            open_deals=wanted.open_deals,
        )
        if wanted.this_week:
            monday = week_start().date()
            filters = replace(filters, after=max(monday, filters.after or monday))
        try:
            page_number = _page_number(request.GET.get("page"))
            results = search_messages(
                request.user,
                parse(q),
                filters,
                limit=MAIL_PAGE,
                offset=(page_number - 1) * MAIL_PAGE,
            )
        except QueryError as exc:
            context["problem"] = str(exc)
        else:
            context["results"] = results
            held = tags_of([h.message.pk for h in results.hits])
            intel_rows = intelligence_pages.badges([h.message.pk for h in results.hits])
            context["hits"] = [
                (h, held.get(h.message.pk, []), intel_rows.get(h.message.pk)) for h in results.hits
            ]
            # More than counted: one page past the count, so Next leads on.
            shown = results.count + (MAIL_PAGE if results.more else 0)
            context["page"] = Paginator(range(shown), MAIL_PAGE).get_page(page_number)
    return render(request, "web/search.html", context)


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 10**6))
    except ValueError:
        return 1
