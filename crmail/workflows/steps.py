"""What each action of a rule does, one function per kind; each safe to do twice.

``do`` runs one action of one run and returns its outcome (``{"state", "detail", …}``),
or raises ``StepFailed`` with the reason in words (the run retries it later). Outcomes
that retrying cannot change (no record to act on, a person who may not see the mail)
are "skipped", with the reason.

Who acts: a user's rule acts as that user (their access to records decides); an
organisation's rule acts as the system, except that changing a record's fields goes
through the record writers as the administrator who last saved the rule. Nobody is told
of mail they may not see (``sharing.visibility``).

The actions on the mailbox's copy (read, flag, move, archive, trash) talk to the mail
server: they run after the commit, from ``engine.work``, never inside the outbox's
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from crmail.config import dates
from crmail.crm import actions as crm_actions
from crmail.crm import task_actions
from crmail.crm.models import Deal, Stage
from crmail.linking import links
from crmail.mail import tags
from crmail.mail.models import Message
from crmail.mailboxes import twoway
from crmail.mailboxes.models import Folder
from crmail.notifications import actions as notifications
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.visibility import visible_messages
from crmail.webhooks import actions as webhooks
from crmail.webhooks.models import Endpoint
from crmail.workflows.conditions import MessageFacts, RecordFacts
from crmail.workflows.facts import PLURAL, access_model
from crmail.workflows.models import ActionState, Workflow, WorkflowRun
from crmail.workflows.spec import MAILBOX_ACTIONS, ActionKind

WEBHOOK_KIND = "workflow.matched"
TASK_ORDER = ("deal", "contact", "lead", "account")
NO_SUBJECT = "(no subject)"


class StepFailed(Exception):
    """The action could not be done now; the message says why (it is retried)."""


@dataclass
class Context:
    """One run as its actions see it."""

    workflow: Workflow
    run: WorkflowRun
    facts: MessageFacts
    records: list[RecordFacts]  # those the rule sees
    owners: list[int]  # the mailbox owners whose mail it is (for this rule)

    @property
    def actor(self) -> User | None:
        """The user a personal rule acts as; None for an organisation's rule."""
        return self.workflow.owner

    def message(self) -> Message:
        return Message.objects.get(pk=self.facts.id)


def done(detail: str, **made: Any) -> dict[str, Any]:
    return {"state": ActionState.DONE, "detail": detail, **made}


def skipped(detail: str) -> dict[str, Any]:
    return {"state": ActionState.SKIPPED, "detail": detail}


def is_mailbox_action(action: dict[str, Any]) -> bool:
    return action.get("kind") in MAILBOX_ACTIONS


def do(ctx: Context, index: int, action: dict[str, Any]) -> dict[str, Any]:
    """Do action number ``index`` of the run (as the rule had it when the run began)."""
    if ctx.actor is not None and not ctx.actor.is_active:
        raise StepFailed("The rule's owner is deactivated.")
    kind = ActionKind(action["kind"])
    params = action.get("params", {})
    handler = HANDLERS[kind]
    return handler(ctx, index, params)


# --- records ------------------------------------------------------------------------------


def _first(ctx: Context, modules: tuple[str, ...]) -> RecordFacts | None:
    for module in modules:
        for record in ctx.records:
            if record.module == module:
                return record
    return None


def _user(value: Any, ctx: Context, record: RecordFacts | None) -> list[User]:
    """The people ``value`` names: a user id, "record_owner" or "mailbox_owner"."""
    if value == "record_owner":
        ids = [record.owner_id] if record is not None else [r.owner_id for r in ctx.records]
    elif value == "mailbox_owner":
        ids = list(ctx.owners)
    else:
        ids = [int(value)]
    found = {u.pk: u for u in User.objects.filter(pk__in=ids, is_active=True)}
    return [found[pk] for pk in dict.fromkeys(ids) if pk in found]


def create_task(ctx: Context, index: int, params: dict[str, Any]) -> dict[str, Any]:
    wanted = params.get("record")
    target = _first(ctx, (wanted,) if wanted else TASK_ORDER)
    if target is None:
        where = f"a {wanted}" if wanted else "a record"
        return skipped(f"The message is not on {where} to put the task on.")
    owners = _user(params.get("assignee", "record_owner"), ctx, target)
    if not owners:
        raise StepFailed("The person the task is for is not an active user.")
    module = PLURAL[target.module]
    try:
        task = task_actions.create_task(
            actor=ctx.actor,
            module=module,
            record_id=target.id,
            title=params["title"],
            due=due_date(ctx.facts, int(params.get("due_in_days", 0))),
            owner=owners[0],
            message_id=ctx.facts.id,
        )
    except crm_actions.NotAllowed as exc:
        return skipped(str(exc))
    except crm_actions.RecordInvalid as exc:
        raise StepFailed("; ".join(e["message"] for e in exc.errors)) from None
    who = owners[0].name or owners[0].email
    return done(
        f"Task “{task.title}” on the {target.module} {target.name}, for {who}, "
        f"due {dates.day(task.due)}",
        task_id=task.pk,
    )


def update_field(ctx: Context, index: int, params: dict[str, Any]) -> dict[str, Any]:
    module, name, value = params["module"], params["field"], params["value"]
    targets = [r for r in ctx.records if r.module == module]
    if not targets:
        return skipped(f"The message is not on a {module}.")
    user = _writer(ctx)
    model = access_model(module)
    changed = []
    for target in targets:
        record = model.objects.filter(pk=target.id).first()
        if record is None:
            continue
        data = {name: value}
        if module == "deal" and name == "stage":
            stage = Stage.objects.filter(pipeline_id=record.pipeline_id, name__iexact=value).first()
            if stage is None:
                raise StepFailed(f"The deal {record} has no stage named {value!r}.")
            data = {"stage": stage.pk}
        try:
            crm_actions.update_record(user, record, data)
        except crm_actions.NotAllowed:
            raise StepFailed(f"{user} may not change the {module} {record}.") from None
        except crm_actions.RecordInvalid as exc:
            words = "; ".join(e["message"] for e in exc.errors)
            raise StepFailed(f"The {module} {record} refused {name} = {value!r}: {words}") from None
        changed.append(str(record))
    return done(f"{module}.{name} set to {value!r} on {', '.join(changed)}")


def _writer(ctx: Context) -> User:
    """Who changes records for the rule: its owner, or for an organisation's rule the
    administrator who last saved it."""
    if ctx.actor is not None:
        return ctx.actor
    admin = ctx.workflow.updated_by
    if admin is None or not admin.is_active or not admin.is_admin:
        raise StepFailed(
            "An organisation's rule changes records as the administrator who last saved it, "
            "and that person is no longer an active administrator: save the rule again."
        )
    return admin


def notify(ctx: Context, index: int, params: dict[str, Any]) -> dict[str, Any]:
    people: dict[int, User] = {}
    for value in params["users"]:
        for user in _user(value, ctx, None):
            people[user.pk] = user
    if not people:
        return skipped("Nobody to tell: no active user is named.")
    told, not_told = [], []
    for user in people.values():
        if visible_messages(user).filter(pk=ctx.facts.id).exists():
            told.append(user)
        else:
            not_told.append(user)
    if told:
        subject = " ".join(ctx.facts.subject.split()) or NO_SUBJECT
        notifications.tell(
            [u.pk for u in told],
            ctx.facts.id,
            f"{params['text'].strip()}: {subject}",
            excerpt=ctx.facts.snippet,
            records=_named_records(ctx, told),
        )
    detail = f"Told {', '.join(u.name or u.email for u in told)}." if told else ""
    if not_told:
        names = ", ".join(u.name or u.email for u in not_told)
        detail += f" Not told {names}: they may not see this mail."
    if not told:
        return skipped(detail.strip())
    return done(detail.strip())


def _named_records(ctx: Context, users: list[User]) -> dict[int, tuple[str, int]]:
    """Per user, the first of the message's records they may view."""
    out: dict[int, tuple[str, int]] = {}
    for user in users:
        for record in ctx.records:
            model = access_model(record.module)
            if access.visible(user, model).filter(pk=record.id).exists():
                out[user.pk] = (PLURAL[record.module], record.id)
                break
    return out


def call_webhook(ctx: Context, index: int, params: dict[str, Any]) -> dict[str, Any]:
    endpoint = Endpoint.objects.filter(pk=params["endpoint_id"]).first()
    if endpoint is None:
        raise StepFailed(f"The webhook {params['endpoint_id']} was deleted: choose another.")
    data = {
        "workflow_id": ctx.workflow.pk,
        "workflow": ctx.workflow.name,
        "run_id": ctx.run.pk,
        "message_id": ctx.facts.id,
        "trigger": ctx.run.trigger,
        "records": [{"module": PLURAL[r.module], "record_id": r.id} for r in ctx.records],
    }
    delivery = webhooks.enqueue(endpoint, WEBHOOK_KIND, data, key=f"wfrun_{ctx.run.pk}_{index + 1}")
    state = "" if endpoint.enabled else " (the webhook is off: it waits until it is on)"
    return done(f"Sent to {endpoint.url}{state}", delivery_id=delivery.pk)


def tag(ctx: Context, index: int, params: dict[str, Any]) -> dict[str, Any]:
    try:
        added = tags.tag_messages([ctx.facts.id], params["tags"], actor=ctx.actor)
    except tags.TagInvalid as exc:
        raise StepFailed(str(exc)) from None
    new = added.get(ctx.facts.id, [])
    if not new:
        return done("It had these tags already.")
    return done(f"Tagged {', '.join(new)}.")


def link_open_deal(ctx: Context, index: int, params: dict[str, Any]) -> dict[str, Any]:
    deal_facts = next((r for r in ctx.records if r.via == "open_deal"), None)
    if deal_facts is None:
        if any(r.module == "deal" for r in ctx.records):
            return skipped("The message is on a deal already.")
        return skipped("No open deal of the contact.")
    deal = Deal.objects.filter(pk=deal_facts.id).first()
    if deal is None:
        return skipped("The deal was deleted meanwhile.")
    if ctx.actor is not None and not access.can(ctx.actor, deal, "edit"):
        return skipped(f"{ctx.actor} may not change the mail of the deal {deal}.")
    made = links.link_by_rule(ctx.message(), deal, ctx.actor)
    return done(f"Linked to the deal {deal}" + ("" if made else " (it was already)"))


def stop(ctx: Context, index: int, params: dict[str, Any]) -> dict[str, Any]:
    ctx.run.stopped = True
    return done("Later rules skip this message.")


# --- the mailbox's copy (after the commit, from engine.work) -------------------------------


def mailbox_action(ctx: Context, index: int, params: dict[str, Any]) -> dict[str, Any]:
    user = ctx.actor
    if user is None:  # refused when saved; an organisation's rule never gets here
        return skipped("An organisation's rule does not change people's mailboxes.")
    kind = ActionKind(ctx.run.actions[index]["kind"])
    copy = twoway.own_copy(user, ctx.facts.id)
    if copy is None:
        return skipped("The message is no longer in your mailboxes.")
    try:
        if kind == ActionKind.MARK_READ:
            if copy.seen:
                return done("Already read.")
            twoway.set_seen(user, copy, True)
            return done("Marked read.")
        if kind == ActionKind.FLAG:
            if copy.flagged:
                return done("Already flagged.")
            twoway.set_flagged(user, copy, True)
            return done("Flagged.")
        if kind == ActionKind.TRASH:
            if copy.folder.role == "trash":
                return done("Already in Trash.")
            twoway.delete(user, copy)
            return done("Moved to Trash.")
        folder = _destination(copy, kind, params)
        if copy.folder_id == folder.pk:
            return done(f"Already in {folder.name}.")
        twoway.move(user, copy, folder.pk)
        return done(f"Moved to {folder.name}.")
    except twoway.OneWay as exc:
        return skipped(str(exc))
    except (twoway.Refused, twoway.BadFolder) as exc:
        raise StepFailed(str(exc)) from None


def _destination(copy: Any, kind: ActionKind, params: dict[str, Any]) -> Folder:
    folders = Folder.objects.filter(mailbox_id=copy.mailbox_id, selectable=True)
    if kind == ActionKind.ARCHIVE:
        found = folders.filter(role="archive").first()
        if found is None:
            raise StepFailed(f"The mailbox {copy.mailbox.email} has no archive folder.")
        return found
    wanted = params["folder"].strip()
    found = (
        folders.filter(remote_id=wanted).first()
        or folders.filter(name__iexact=wanted).first()
        or folders.filter(remote_id__iexact=wanted).first()
    )
    if found is None:
        raise StepFailed(f"The mailbox {copy.mailbox.email} has no folder {wanted!r}.")
    return found


def due_date(facts: MessageFacts, days: int) -> Any:
    """The day a task made for the message is due: ``days`` after the mail's day."""
    when = facts.date or timezone.now()
    return timezone.localdate(when) + timedelta(days=days)


HANDLERS = {
    ActionKind.CREATE_TASK: create_task,
    ActionKind.UPDATE_FIELD: update_field,
    ActionKind.NOTIFY: notify,
    ActionKind.CALL_WEBHOOK: call_webhook,
    ActionKind.TAG: tag,
    ActionKind.LINK_OPEN_DEAL: link_open_deal,
    ActionKind.STOP: stop,
    **{kind: mailbox_action for kind in MAILBOX_ACTIONS},
}
