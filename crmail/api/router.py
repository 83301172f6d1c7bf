"""The REST API under /api/v1: records, users and pipelines, described at /api/v1/openapi.json
and browsable at /api/v1/docs."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Swagger
from ninja.openapi.docs import _csrf_needed

from crmail.api import (
    accounts,
    contacts,
    deals,
    domains,
    dropbox,
    errors,
    groups,
    inbox,
    insights,
    intelligence,
    leads,
    mailboxes,
    messages,
    notifications,
    org_addresses,
    pipelines,
    reports,
    search,
    senders,
    sharing,
    storage,
    tags,
    tasks,
    templates,
    tokens,
    users,
    webhooks,
    workflow_import,
    workflows,
)
from crmail.api.auth import AUTH

DESCRIPTION = """
Leads, contacts, accounts and deals, with the users who own them, their groups, their
tasks, and mail.

**Signing in.** Send an API token in the header `Authorization: Bearer <token>`. Pages of
crmail itself may use the signed-in session instead (changes then need the CSRF token).

**Lists** answer `{"items": [...], "count": N, "limit": L, "offset": O}`: `count` is the
number of matches over all pages. `?limit=` is 50 unless given and at most 200; `?offset=`
skips items. `?ordering=` takes one of the listed keys, `-` first for descending.

**Who sees what.** Lists hold only the records you may see. A record you may not see
answers 404 as if it did not exist; one you may see but not change answers 403.

**Errors** always answer `{"detail": ...}`: a message for 400, 401, 403, 404 and 500, and
for 422 a list of `{"field": "email", "message": "..."}` naming each field at fault.
"""


@csrf_exempt
def unknown_path(request: HttpRequest, rest: str = "") -> JsonResponse:
    return JsonResponse({"detail": errors.NOT_FOUND}, status=404)


class Docs(Swagger):
    """ninja's Swagger page with its own scripts and styles, served by crmail.

    ninja is not an installed app (settings.NINJA_DIR: its templates and static files
    without importing it at start-up), where ninja would fall back to loading Swagger
    from a CDN; this renders the same template as the installed app does.
    """

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        context = {
            "swagger_settings": json.dumps(self.settings, indent=1),
            "api": api,
            "add_csrf": _csrf_needed(api),
        }
        return render(request, self.template, context)


class CrmailAPI(NinjaAPI):
    """The API, whose unknown paths answer JSON 404 like its unknown records."""

    @property
    def urls(self) -> tuple[list[Any], str, str]:
        patterns, app_name, namespace = super().urls
        return [*patterns, re_path(r"^(?P<rest>.*)$", unknown_path)], app_name, namespace


api = CrmailAPI(
    title="crmail API",
    version="1",
    description=DESCRIPTION,
    auth=AUTH,
    urls_namespace="api",
    docs=Docs(),
)
errors.install(api)

api.add_router("/contacts", contacts.router)
api.add_router("/leads", leads.router)
api.add_router("/accounts", accounts.router)
api.add_router("/deals", deals.router)
api.add_router("/pipelines", pipelines.router)
api.add_router("/users", users.router)
api.add_router("/groups", groups.router)
api.add_router("/mailboxes", mailboxes.router)
api.add_router("/sharing", sharing.router)
api.add_router("/notifications", notifications.router)
api.add_router("/messages", messages.router)
api.add_router("/messages", senders.router)
api.add_router("/messages", tags.message_router)
api.add_router("/messages", insights.message_router)
api.add_router("/messages", intelligence.router)
api.add_router("/contacts", insights.contact_router)
api.add_router("/insights", insights.router)
api.add_router("/scheduled", insights.scheduled_router)
api.add_router("/tags", tags.router)
api.add_router("/tasks", tasks.router)
api.add_router("/tokens", tokens.router)
api.add_router("/templates", templates.router)
api.add_router("/search", search.router)
api.add_router("/dropbox", dropbox.router)
api.add_router("/organisation-addresses", org_addresses.router)
api.add_router("/domains", domains.router)
api.add_router("/storage", storage.router)
api.add_router("/reports", reports.router)
api.add_router("/inbox", inbox.router)
api.add_router("/webhooks", webhooks.router)
api.add_router("/workflows", workflow_import.router)  # before /workflows/{id}
api.add_router("/workflows", workflows.router)
