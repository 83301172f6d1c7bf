"""Workflow rules and their runs (SPEC F13, decision 035).

A ``Workflow`` is a rule (``spec.RuleSpec`` as JSON) of one user, acting on that user's
mail only, or of the organisation (no owner: made by an administrator, acting on everyone's
mail as the system). A ``WorkflowRun`` is one rule on one message: unique, so a rule acts
at most once on a message however often the events that bring it are handed out, and
each run keeps its outcome, action by action.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from crmail.workflows.spec import RuleSpec


class Workflow(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # None: an organisation's rule (administrators); else the user whose mail it acts on.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="workflows",
    )
    enabled = models.BooleanField(default=False)
    # Rules run in this order within their chain (the organisation's, then each user's).
    position = models.PositiveIntegerField(default=0)
    spec = models.JSONField(default=dict, help_text="RuleSpec.dump(): triggers, conditions…")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]
        indexes = [models.Index(fields=["owner", "enabled", "position"], name="workflow_chain")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_organisation(self) -> bool:
        return self.owner_id is None

    def rule(self) -> RuleSpec:
        """The stored rule, read back (it was checked when saved)."""
        return RuleSpec.load(self.spec, personal=not self.is_organisation)


class RunState(models.TextChoices):
    MATCHED = "matched", "Matched, actions under way"
    NOT_MATCHED = "not_matched", "Did not match"
    DONE = "done", "Done"
    RETRYING = "retrying", "An action failed, will retry"
    FAILED = "failed", "Failed, waiting for you"


class ActionState(models.TextChoices):
    PENDING = "pending", "Waiting"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Nothing to do"
    FAILED = "failed", "Failed"


class WorkflowRun(models.Model):
    """One rule on one message: whether it matched, and what each action did.

    ``outcomes`` is a list, one entry per action of the rule as it was when the run began:
    ``{"kind", "state", "detail"}`` (and what was made: ``"task_id"``, ``"delivery_id"``…),
    so a retry does again only what is not done."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    message = models.ForeignKey(
        "mail.Message", on_delete=models.CASCADE, related_name="workflow_runs"
    )
    trigger = models.CharField(max_length=10)
    # The mailbox owner whose mail it is (an organisation's rule: the first whose copy
    # brought it); "mailbox_owner" in actions names this user.
    mailbox_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    state = models.CharField(max_length=12, choices=RunState.choices)
    actions = models.JSONField(default=list, help_text="The actions as the rule had them.")
    outcomes = models.JSONField(default=list)
    stopped = models.BooleanField(default=False, help_text="Later rules of its chain skipped.")
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "message"], name="workflow_run_once"),
        ]
        indexes = [
            models.Index(fields=["workflow", "-created_at"], name="workflow_run_log"),
            models.Index(
                fields=["next_try_at"],
                name="workflow_run_due",
                condition=Q(next_try_at__isnull=False),
            ),
            models.Index(
                fields=["state"],
                name="workflow_run_failed",
                condition=Q(state__in=["failed", "retrying"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} on {self.message_id}: {self.state}"

    @property
    def matched(self) -> bool:
        return self.state != RunState.NOT_MATCHED

    def pending(self) -> list[tuple[int, dict[str, Any]]]:
        """(index, action) of the actions not done yet."""
        return [
            (i, action)
            for i, action in enumerate(self.actions)
            if i >= len(self.outcomes)
            or self.outcomes[i].get("state") in (ActionState.PENDING, ActionState.FAILED)
        ]
