"""What sharing does when users are created and records deleted."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from crmail.crm.actions import record_deleted
from crmail.people.models import User
from crmail.sharing import actions


@receiver(post_save, sender=User, dispatch_uid="sharing.user_created")
def on_user_created(
    sender: Any, instance: User, created: bool, raw: bool = False, **_: Any
) -> None:
    """Every new user starts with the organisation's default mode (own domain excluded)."""
    if created and not raw:
        actions.ensure_setting(instance)


@receiver(record_deleted, dispatch_uid="sharing.record_deleted")
def on_record_deleted(sender: Any, *, module: str, record_id: int, **_: Any) -> None:
    actions.forget_record(module, record_id)
