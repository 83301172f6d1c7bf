"""Mail stored before crmail dated a message when first seen whose Date header is more
than a day after that (``mail.ingest._fill_headers``) is dated again by the same rule,
so a spam dated years ahead stops heading every list. Everything that copied the old
date follows: the message's locations and links, its thread's newest date, the inbox's
conversations and the search document's date tokens. ``sent_at`` keeps the header.

It lives with the search index, the layer that may reach every one of those."""

from django.db import migrations
from django.db.models import DateTimeField, ExpressionWrapper, F, Max, OuterRef, Subquery

BATCH = 500


def redate(apps, schema_editor):  # type: ignore[no-untyped-def]
    from crmail.mail.ingest import FUTURE_SLACK
    from crmail.mailboxes import conversations
    from crmail.mailboxes.models import Location as CurrentLocation
    from crmail.search.index import index_messages

    Message = apps.get_model("mail", "Message")
    Thread = apps.get_model("mail", "Thread")
    Location = apps.get_model("mailboxes", "Location")
    Link = apps.get_model("linking", "Link")
    latest = ExpressionWrapper(F("first_seen_at") + FUTURE_SLACK, output_field=DateTimeField())
    ahead = list(
        Message.objects.filter(date__gt=latest).order_by("pk").values_list("pk", flat=True)
    )
    for start in range(0, len(ahead), BATCH):
        ids = ahead[start : start + BATCH]
        Message.objects.filter(pk__in=ids).update(date=F("first_seen_at"))
        own = Subquery(Message.objects.filter(pk=OuterRef("message_id")).values("date")[:1])
        Location.objects.filter(message_id__in=ids).update(date=own)
        Link.objects.filter(message_id__in=ids).update(date=own)
        threads = Message.objects.filter(pk__in=ids, thread__isnull=False).values("thread_id")
        newest = (
            Message.objects.filter(thread_id=OuterRef("pk"))
            .order_by()
            .values("thread_id")
            .annotate(newest=Max("date"))
            .values("newest")
        )
        Thread.objects.filter(pk__in=threads).update(last_message_at=Subquery(newest))
        conversations.refresh(conversations.keys(CurrentLocation.objects.filter(message_id__in=ids)))
        index_messages(ids)


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0008_tokens_column"),
        ("mail", "0008_processing_state"),
        ("mailboxes", "0015_location_fk_indexes_covered"),
        ("linking", "0002_link_reason_workflow"),
    ]

    operations = [migrations.RunPython(redate, migrations.RunPython.noop)]
