"""Read side of mailboxes: the mail that is a user's own."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from crmail.mail.models import Message
from crmail.mailboxes.models import Location, SentMessage
from crmail.people.models import User


def user_mail(user: User) -> QuerySet[Message]:
    """The messages of ``user``'s mail, each once, oldest first: those with a location in a
    mailbox the user owns (any folder, active mailbox or not) and those the user sent from
    crmail. Loads only what the mbox writer needs (the raw bytes come apart). This is what
    a departing user's backup holds (SPEC F12)."""
    located = Location.objects.filter(mailbox__owner_id=user.pk).values("message_id")
    sent = SentMessage.objects.filter(sender_id=user.pk).values("message_id")
    return (
        Message.objects.filter(Q(pk__in=located) | Q(pk__in=sent))
        .annotate(when=Coalesce(F("date"), F("first_seen_at")))
        .only("pk", "size", "date", "first_seen_at", "from_address")
        .order_by("when", "pk")
    )
