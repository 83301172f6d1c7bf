"""The writers of email templates, and who may read them.

Everyone reads shared templates and their own; nobody reads another user's personal ones.
Only the owner or an administrator changes or deletes a template. ``check_*`` validates and
authorises, ``do_*`` writes; the pages and the API call the ``do_*`` functions, which check
first. A template is checked when saved: a name, a subject of one line, and no unknown merge
field (``merge.unknown_fields``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from crmail.emailtemplates import merge
from crmail.emailtemplates.models import BODY_MAX, NAME_MAX, SUBJECT_MAX, EmailTemplate
from crmail.people.models import User

EDITABLE = ("name", "subject", "body", "shared")


class Invalid(Exception):
    """The template is not valid; ``errors`` lists ``{"field", "message"}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class NotAllowed(Exception):
    """The user may read the template but not change it."""


def readable(user: User) -> QuerySet[EmailTemplate]:
    """The templates ``user`` may read and use: their own and the shared ones."""
    if not user.is_authenticated:
        return EmailTemplate.objects.none()
    return EmailTemplate.objects.filter(Q(owner=user) | Q(shared=True)).select_related("owner")


def may_change(user: User, template: EmailTemplate) -> bool:
    return template.owner_id == user.pk or user.is_admin


def check_may_change(user: User, template: EmailTemplate) -> None:
    if not may_change(user, template):
        raise NotAllowed(
            f"Only {template.owner.name or template.owner.email} (who made it) or an "
            "administrator may change this template."
        )


def check_template(name: str, subject: str, body: str) -> list[dict[str, str]]:
    """What is wrong with these values, one entry per field; empty when they are fine."""
    errors: list[dict[str, str]] = []
    if not name.strip():
        errors.append({"field": "name", "message": "Give the template a name."})
    elif len(name) > NAME_MAX:
        errors.append({"field": "name", "message": f"At most {NAME_MAX} characters."})
    if "\r" in subject or "\n" in subject:
        errors.append(
            {"field": "subject", "message": "A subject is one line: remove the line break."}
        )
    elif len(subject) > SUBJECT_MAX:
        errors.append({"field": "subject", "message": f"At most {SUBJECT_MAX} characters."})
    elif unknown := merge.unknown_fields(subject):
        errors.append({"field": "subject", "message": merge.unknown_message(unknown)})
    if len(body) > BODY_MAX:
        errors.append({"field": "body", "message": f"At most {BODY_MAX:,} characters."})
    elif unknown := merge.unknown_fields(body):
        errors.append({"field": "body", "message": merge.unknown_message(unknown)})
    return errors


def _lines(body: str) -> str:
    """A body's line ends as \n, whichever a browser (CR LF) or a client sent."""
    return body.replace("\r\n", "\n").replace("\r", "\n")


def _checked(values: dict[str, Any]) -> None:
    values["body"] = _lines(values["body"])
    errors = check_template(values["name"], values["subject"], values["body"])
    if errors:
        raise Invalid(errors)


def do_create_template(
    user: User, *, name: str, subject: str = "", body: str = "", shared: bool = False
) -> EmailTemplate:
    values = {"name": name.strip(), "subject": subject, "body": body, "shared": bool(shared)}
    _checked(values)
    return EmailTemplate.objects.create(owner=user, **values)


def do_update_template(
    user: User, template: EmailTemplate, changes: dict[str, Any]
) -> EmailTemplate:
    """Change the fields in ``changes`` (name, subject, body, shared); the rest stay."""
    check_may_change(user, template)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise Invalid([{"field": k, "message": "Not a template field."} for k in sorted(unknown)])
    values = {k: getattr(template, k) for k in EDITABLE}
    values.update(changes)
    values["name"] = str(values["name"]).strip()
    values["shared"] = bool(values["shared"])
    _checked(values)
    with transaction.atomic():
        for key, value in values.items():
            setattr(template, key, value)
        template.save(update_fields=[*EDITABLE, "modified_at"])
    return template


def do_delete_template(user: User, template: EmailTemplate) -> None:
    check_may_change(user, template)
    template.delete()
