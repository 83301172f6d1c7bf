"""What sharing does when users are created and records deleted."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from crmail.events.kinds import RecordDeleted
from crmail.events.registry import Delivered, consumer
from crmail.people.models import User
from crmail.sharing import actions


@receiver(post_save, sender=User, dispatch_uid="sharing.user_created")
def on_user_created(
    sender: Any, instance: User, created: bool, raw: bool = False, **_: Any
) -> None:
    """Every new user starts with the organisation's default mode (own domain excluded)."""
    if created and not raw:
        actions.ensure_setting(instance)


@consumer("sharing", ("record.deleted",))
def handle(batch: list[Delivered]) -> None:
    """A deleted record's per-record sharing choices go with it."""
    for item in batch:
        if isinstance(item.data, RecordDeleted):
            actions.forget_record(item.data.module, item.data.record_id)
