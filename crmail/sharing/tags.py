"""Which tags a viewer may see: those on mail they may see (``visibility``).

A tag's name says something about the mail it is on, so a list of tags (the API's, the
choices of a record's Emails list) holds only the tags of at least one message the
viewer may see, overall or on one record; on a message, its tags are shown to whoever
may see the message. Tags are written by ``mail.tags``.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from crmail.mail.models import Tag
from crmail.people.models import User
from crmail.sharing.visibility import visible_messages


def visible_tags(
    viewer: User, module: str | None = None, record_id: int | None = None
) -> QuerySet[Tag]:
    """The tags on a message ``viewer`` may see (on the record ``module``, ``record_id``
    when given), by name. Each tag is one probe: its messages (index (tag, message)),
    until one the viewer may see."""
    seen = visible_messages(viewer, module, record_id).filter(tag_rows__tag_id=OuterRef("pk"))
    return Tag.objects.filter(Exists(seen)).order_by("key")
