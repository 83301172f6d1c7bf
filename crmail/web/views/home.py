"""The page after signing in: what the user may see, at a glance."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from crmail.people import access
from crmail.web import modules


@login_required
def home(request: HttpRequest) -> HttpResponse:
    cards = [
        {"module": m, "count": count, "can_create": access.can_create(request.user, m.model)}
        for m, count in modules.counts(request.user)
    ]
    return render(request, "web/home.html", {"cards": cards})
