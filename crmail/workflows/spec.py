"""What a workflow rule says, as plain data: when it runs, what it checks, what it does.

A rule is stored as the JSON of ``RuleSpec.dump()`` and read back with ``RuleSpec.load``.
The rule editor, the API, the engine and the filter import (Gmail's ``mailFilters.xml``,
Sieve) all speak this one shape, so an imported filter is an ordinary rule.

Conditions are one flat list joined by ``match`` ("all" or "any"). A condition with several
``values`` holds when any of them does (``from contains a OR b``); the negated operators
(``not_contains``, ``is_not``) hold when none does. Nested groups are not part of the shape:
an importer lists a filter that needs them as one it cannot express.

This module imports nothing of Django: it is checked and tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from crmail.intelligence.analysis import INTENTS, SENTIMENTS
from crmail.text import text_problem


class Trigger(StrEnum):
    INCOMING = "incoming"  # mail a synced mailbox received
    OUTGOING = "outgoing"  # mail a user sent (from crmail, or found in a Sent folder)
    DROPBOX = "dropbox"  # mail that reached a user's BCC Dropbox address


class Match(StrEnum):
    ALL = "all"
    ANY = "any"


class Field(StrEnum):
    FROM = "from"  # the sender's address
    FROM_DOMAIN = "from_domain"  # the sender's domain, without "@"
    TO = "to"  # any recipient (To, Cc, Bcc as crmail knows them)
    SUBJECT = "subject"
    BODY = "body"  # the message's text (its HTML part as text when it has no text part)
    HEADER = "header"  # a header named by ``Condition.name``, e.g. "List-Id"
    HAS_ATTACHMENT = "has_attachment"  # values: [true] or [false]
    SIZE = "size"  # the raw message's size in bytes
    RECORD_TYPE = "record_type"  # a module the message is linked to: lead|contact|account|deal
    RECORD_FIELD = "record_field"  # ``name`` = "module.field", e.g. "deal.amount", "deal.stage"
    SENTIMENT = "sentiment"  # email intelligence: positive | neutral | negative
    INTENT = "intent"  # email intelligence: request | question | complaint | scheduling | …


class Op(StrEnum):
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    IS = "is"
    IS_NOT = "is_not"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    MATCHES = "matches"  # a wildcard pattern: * any run of characters, ? one character
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


TEXT_OPS = frozenset(
    {Op.CONTAINS, Op.NOT_CONTAINS, Op.IS, Op.IS_NOT, Op.STARTS_WITH, Op.ENDS_WITH, Op.MATCHES}
)
NUMBER_OPS = frozenset({Op.IS, Op.IS_NOT, Op.GT, Op.GTE, Op.LT, Op.LTE})
OPS_BY_FIELD: dict[Field, frozenset[Op]] = {
    Field.FROM: TEXT_OPS,
    Field.FROM_DOMAIN: TEXT_OPS,
    Field.TO: TEXT_OPS,
    Field.SUBJECT: TEXT_OPS,
    Field.BODY: frozenset({Op.CONTAINS, Op.NOT_CONTAINS}),
    Field.HEADER: TEXT_OPS,
    Field.HAS_ATTACHMENT: frozenset({Op.IS}),
    Field.SIZE: frozenset({Op.GT, Op.LT}),
    Field.RECORD_TYPE: frozenset({Op.IS, Op.IS_NOT}),
    # Text or number, by the field: the engine compares numbers as numbers.
    Field.RECORD_FIELD: TEXT_OPS | NUMBER_OPS,
    Field.SENTIMENT: frozenset({Op.IS, Op.IS_NOT}),
    Field.INTENT: frozenset({Op.IS, Op.IS_NOT}),
}
# What email intelligence finds (``intelligence.analysis``): the values of SENTIMENT, INTENT.
CHOICES: dict[Field, tuple[str, ...]] = {Field.SENTIMENT: SENTIMENTS, Field.INTENT: INTENTS}
INTELLIGENCE_FIELDS = frozenset(CHOICES)
MODULES = ("lead", "contact", "account", "deal")


class ActionKind(StrEnum):
    # params: title, due_in_days (int, default 0), assignee, and optionally record (the
    # module the task goes on: deal, contact, lead or account; default: the first there is)
    CREATE_TASK = "create_task"
    UPDATE_FIELD = "update_field"  # params: module, field, value (on the linked records)
    NOTIFY = "notify"  # params: users (list of ids and/or "record_owner", "mailbox_owner"), text
    CALL_WEBHOOK = "call_webhook"  # params: endpoint_id (a registered webhook endpoint)
    TAG = "tag"  # params: tags (list of names)
    LINK_OPEN_DEAL = "link_open_deal"  # no params: the sender contact's open deal
    # Acting on the mailbox's copy (through two-way sync): only in a user's own rules.
    MARK_READ = "mark_read"
    FLAG = "flag"
    MOVE_TO_FOLDER = "move_to_folder"  # params: folder (the folder's path on the server)
    ARCHIVE = "archive"  # out of the Inbox, into the mailbox's archive folder
    TRASH = "trash"
    STOP = "stop"  # no later rule runs on this message


MAILBOX_ACTIONS = frozenset(
    {
        ActionKind.MARK_READ,
        ActionKind.FLAG,
        ActionKind.MOVE_TO_FOLDER,
        ActionKind.ARCHIVE,
        ActionKind.TRASH,
    }
)
ASSIGNEES = ("record_owner", "mailbox_owner")  # or a user id


class SpecError(ValueError):
    """A rule that cannot be stored, with the reason in words."""


@dataclass(frozen=True)
class Condition:
    field: Field
    op: Op
    values: tuple[str | int | float | bool, ...]
    name: str = ""  # the header for HEADER, "module.field" for RECORD_FIELD

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": str(self.field), "op": str(self.op)}
        out["values"] = list(self.values)
        if self.name:
            out["name"] = self.name
        return out


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    params: dict[str, Any] = field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "params": dict(self.params)}


@dataclass(frozen=True)
class RuleSpec:
    triggers: frozenset[Trigger]
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    match: Match = Match.ALL

    def dump(self) -> dict[str, Any]:
        return {
            "triggers": sorted(str(t) for t in self.triggers),
            "match": str(self.match),
            "conditions": [c.dump() for c in self.conditions],
            "actions": [a.dump() for a in self.actions],
        }

    @classmethod
    def load(cls, data: Any, *, personal: bool = True) -> RuleSpec:
        """The rule ``data`` describes, checked; ``SpecError`` says what is wrong.

        ``personal``: a user's own rule, which may act on the mailbox's copy; an
        organisation's rule may not (it runs on everyone's mail)."""
        if not isinstance(data, dict):
            raise SpecError("A rule is an object with triggers, conditions and actions.")
        problem = text_problem(data)
        if problem:
            raise SpecError(problem)
        triggers = _enum_list(data.get("triggers"), Trigger, "trigger")
        if not triggers:
            raise SpecError("Choose when the rule runs: incoming, outgoing or dropbox mail.")
        match = _enum(data.get("match", "all"), Match, "match")
        raw_conditions = data.get("conditions", [])
        if not isinstance(raw_conditions, list):
            raise SpecError("Conditions are a list.")
        conditions = tuple(_condition(c, i + 1) for i, c in enumerate(raw_conditions))
        raw_actions = data.get("actions", [])
        if not isinstance(raw_actions, list) or not raw_actions:
            raise SpecError("A rule needs at least one action.")
        actions = tuple(_action(a, i + 1, personal=personal) for i, a in enumerate(raw_actions))
        return cls(
            triggers=frozenset(triggers), conditions=conditions, actions=actions, match=match
        )


def _enum(value: Any, enum: type[StrEnum], what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(str(m) for m in enum)
        raise SpecError(f"Unknown {what} {value!r}: choose one of {choices}.") from None


def _enum_list(value: Any, enum: type[StrEnum], what: str) -> list[Any]:
    if not isinstance(value, list):
        raise SpecError(f"The {what}s are a list.")
    return [_enum(v, enum, what) for v in value]


def _condition(data: Any, number: int) -> Condition:
    if not isinstance(data, dict):
        raise SpecError(f"Condition {number} is not an object.")
    fld = _enum(data.get("field"), Field, f"field in condition {number}:")
    op = _enum(data.get("op"), Op, f"operator in condition {number}:")
    if op not in OPS_BY_FIELD[fld]:
        allowed = ", ".join(sorted(str(o) for o in OPS_BY_FIELD[fld]))
        raise SpecError(f"Condition {number}: {fld} can be compared with {allowed}, not {op}.")
    values = data.get("values")
    if not isinstance(values, list) or not values:
        raise SpecError(f"Condition {number} needs at least one value.")
    for v in values:
        if not isinstance(v, str | int | float | bool) or v == "":
            raise SpecError(f"Condition {number}: values are non-empty text, numbers or yes/no.")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise SpecError(f"Condition {number}: the name is text.")
    if fld == Field.HEADER and not name.strip():
        raise SpecError(f"Condition {number}: say which header to look at.")
    if fld == Field.HEADER and any(c in name for c in ":\r\n "):
        raise SpecError(f"Condition {number}: {name!r} is not a header name.")
    if fld == Field.RECORD_FIELD:
        module, _, attr = name.partition(".")
        if module not in MODULES or not attr:
            raise SpecError(
                f"Condition {number}: name the record field as module.field, e.g. deal.amount."
            )
    if fld == Field.RECORD_TYPE and any(v not in MODULES for v in values):
        raise SpecError(f"Condition {number}: record types are {', '.join(MODULES)}.")
    if fld in CHOICES:
        values = [v.strip().lower() if isinstance(v, str) else v for v in values]
    if fld in CHOICES and any(v not in CHOICES[fld] for v in values):
        raise SpecError(f"Condition {number}: {fld} is one of {', '.join(CHOICES[fld])}.")
    if fld == Field.HAS_ATTACHMENT and any(not isinstance(v, bool) for v in values):
        raise SpecError(f"Condition {number}: has attachment is true or false.")
    if op in NUMBER_OPS - TEXT_OPS or fld == Field.SIZE:
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise SpecError(f"Condition {number}: {op} compares numbers.")
    return Condition(field=fld, op=op, values=tuple(values), name=name.strip())


def _action(data: Any, number: int, *, personal: bool) -> Action:
    if not isinstance(data, dict):
        raise SpecError(f"Action {number} is not an object.")
    kind = _enum(data.get("kind"), ActionKind, f"action in step {number}:")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise SpecError(f"Action {number}: its parameters are an object.")
    if kind in MAILBOX_ACTIONS and not personal:
        raise SpecError(
            f"Action {number}: an organisation's rule cannot change mail in people's "
            "mailboxes; a user's own rule can."
        )
    _check_params(kind, params, number)
    return Action(kind=kind, params=dict(params))


def _check_params(kind: ActionKind, params: dict[str, Any], number: int) -> None:
    def text(key: str) -> str:
        value = params.get(key)
        if not isinstance(value, str) or not value.strip():
            raise SpecError(f"Action {number} ({kind}) needs {key.replace('_', ' ')}.")
        return value

    if kind == ActionKind.CREATE_TASK:
        text("title")
        due = params.get("due_in_days", 0)
        if isinstance(due, bool) or not isinstance(due, int) or not 0 <= due <= 3650:
            raise SpecError(f"Action {number}: a task is due 0 to 3650 days after the mail.")
        _check_assignee(params.get("assignee", "record_owner"), number)
        if params.get("record", "deal") not in MODULES:
            raise SpecError(f"Action {number}: a task goes on a {', '.join(MODULES)}.")
    elif kind == ActionKind.UPDATE_FIELD:
        if params.get("module") not in MODULES:
            raise SpecError(f"Action {number}: choose the record type to update.")
        text("field")
        if "value" not in params:
            raise SpecError(f"Action {number}: say what the field becomes.")
    elif kind == ActionKind.NOTIFY:
        users = params.get("users")
        if not isinstance(users, list) or not users:
            raise SpecError(f"Action {number}: choose whom to notify.")
        for user in users:
            _check_assignee(user, number)
        text("text")
    elif kind == ActionKind.CALL_WEBHOOK:
        endpoint = params.get("endpoint_id")
        if isinstance(endpoint, bool) or not isinstance(endpoint, int):
            raise SpecError(f"Action {number}: choose a webhook endpoint.")
    elif kind == ActionKind.TAG:
        tags = params.get("tags")
        if not isinstance(tags, list) or not tags:
            raise SpecError(f"Action {number}: name at least one tag.")
        for tag in tags:
            if not isinstance(tag, str) or not tag.strip() or len(tag) > 100:
                raise SpecError(f"Action {number}: a tag is 1 to 100 characters of text.")
    elif kind == ActionKind.MOVE_TO_FOLDER:
        text("folder")


def _check_assignee(value: Any, number: int) -> None:
    if value in ASSIGNEES:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(
            f"Action {number}: a person is a user id, the record's owner or the mailbox's owner."
        )
