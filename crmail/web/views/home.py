"""The page after signing in: a start to the day, then the records the user may see."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from crmail.mailboxes.actions import may_connect
from crmail.mailboxes.models import Mailbox
from crmail.people import access
from crmail.sharing import today
from crmail.web import modules
from crmail.web.views.tasks import home_context


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    cards = [
        {"module": m, "count": count, "can_create": access.can_create(user, m.model)}
        for m, count in modules.counts(user)
    ]
    has_mailbox = Mailbox.objects.filter(owner=user).exists()
    return render(
        request,
        "web/home.html",
        {
            "cards": cards,
            "now": timezone.now(),
            "connect_prompt": not has_mailbox and may_connect(user),
            "unread": today.unread_customer_mail(user) if has_mailbox else None,
            "waiting": today.awaiting_reply(user) if has_mailbox else None,
            "deal_news": today.deals_with_news(user),
            **home_context(user),
        },
    )
