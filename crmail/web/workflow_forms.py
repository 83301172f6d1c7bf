"""The rule editor: a name, when the rule runs, its condition rows and action rows.

Rows are plain form fields (``c-0-field``, ``a-1-kind``…) read back in order, so the page
works without scripts: "Add a condition", "Remove", a changed field or kind and "Try it"
post the form and the page comes back with the rows changed (htmx swaps only the editor
when it is there). What the rows say becomes a rule (``spec.RuleSpec`` as data) here;
``workflows.actions`` checks it and says what is wrong in words, shown above the rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.http import QueryDict

from crmail.people.models import User
from crmail.text import repaired, text_problem
from crmail.text_forms import CheckedTextForm
from crmail.webhooks.models import Endpoint
from crmail.workflows.fields import FIELDS, NUMBER
from crmail.workflows.models import Workflow
from crmail.workflows.spec import (
    MAILBOX_ACTIONS,
    MODULES,
    OPS_BY_FIELD,
    ActionKind,
    Field,
    Op,
    SpecError,
    Trigger,
)

FIELD_LABELS = {
    Field.FROM: "Sender's address",
    Field.FROM_DOMAIN: "Sender's domain",
    Field.TO: "A recipient (To, Cc)",
    Field.SUBJECT: "Subject",
    Field.BODY: "Text of the message",
    Field.HEADER: "A header",
    Field.HAS_ATTACHMENT: "Has an attachment",
    Field.SIZE: "Size",
    Field.RECORD_TYPE: "It is on a",
    Field.RECORD_FIELD: "A field of its record",
    Field.SENTIMENT: "Its sentiment (positive, neutral, negative)",
    Field.INTENT: "Its intent (request, question, complaint, scheduling, unsubscribe, other)",
}
OP_LABELS = {
    Op.CONTAINS: "contains",
    Op.NOT_CONTAINS: "does not contain",
    Op.IS: "is",
    Op.IS_NOT: "is not",
    Op.STARTS_WITH: "starts with",
    Op.ENDS_WITH: "ends with",
    Op.MATCHES: "matches (* any text, ? one character)",
    Op.GT: "is more than",
    Op.GTE: "is at least",
    Op.LT: "is less than",
    Op.LTE: "is at most",
}
KIND_LABELS = {
    ActionKind.CREATE_TASK: "Create a task on its record",
    ActionKind.UPDATE_FIELD: "Change a field of its record",
    ActionKind.NOTIFY: "Notify people",
    ActionKind.CALL_WEBHOOK: "Call a webhook",
    ActionKind.TAG: "Tag the message",
    ActionKind.LINK_OPEN_DEAL: "Link it to the contact's open deal",
    ActionKind.MARK_READ: "Mark it read",
    ActionKind.FLAG: "Flag it",
    ActionKind.MOVE_TO_FOLDER: "Move it to a folder",
    ActionKind.ARCHIVE: "Archive it",
    ActionKind.TRASH: "Move it to Trash",
    ActionKind.STOP: "Stop: later rules skip it",
}
TRIGGER_LABELS = {
    Trigger.INCOMING: "Mail I receive",
    Trigger.OUTGOING: "Mail I send",
    Trigger.DROPBOX: "Mail sent to my BCC dropbox",
}
ORGANISATION_TRIGGER_LABELS = {
    Trigger.INCOMING: "Mail anyone receives",
    Trigger.OUTGOING: "Mail anyone sends",
    Trigger.DROPBOX: "Mail sent to a BCC dropbox",
}
MODULE_LABELS = {"deal": "Deal", "contact": "Contact", "lead": "Lead", "account": "Account"}
PEOPLE = {"record_owner": "The record's owner", "mailbox_owner": "The mailbox's owner"}
PARAMS = ("title", "due", "assignee", "record", "target", "value", "text", "endpoint", "tags")
PARAMS += ("folder",)
SIZE = re.compile(r"^\s*([0-9]+(?:[.,][0-9]+)?)\s*(b|bytes?|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.I)
UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1, "k": 1024, "kb": 1024, "kib": 1024}
UNITS |= {"m": 1024**2, "mb": 1024**2, "mib": 1024**2, "g": 1024**3, "gb": 1024**3}
UNITS |= {"gib": 1024**3}
MAX_ROWS = 50


class WorkflowForm(CheckedTextForm, forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    enabled = forms.BooleanField(
        label="On: run it on new mail", required=False, help_text="Try it first: see below."
    )
    triggers = forms.MultipleChoiceField(
        label="Runs on",
        choices=[(str(t), label) for t, label in TRIGGER_LABELS.items()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    match = forms.ChoiceField(
        label="The rule matches when",
        choices=[("all", "all of these hold"), ("any", "any of these holds")],
        widget=forms.RadioSelect,
        initial="all",
    )

    def __init__(self, *args: Any, organisation: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if organisation:
            self.fields["triggers"].choices = [  # type: ignore[attr-defined]
                (str(t), label) for t, label in ORGANISATION_TRIGGER_LABELS.items()
            ]


@dataclass
class ConditionRow:
    field: str = Field.SUBJECT
    op: str = Op.CONTAINS
    name: str = ""
    values: str = ""

    def ops(self) -> list[tuple[str, str]]:
        """The operators its field takes (a record field: those its kind takes)."""
        try:
            allowed = set(OPS_BY_FIELD[Field(self.field)])
        except ValueError:
            allowed = set(OPS_BY_FIELD[Field.SUBJECT])
        if self.field == Field.RECORD_FIELD:
            module, _, name = self.name.partition(".")
            found = FIELDS.get(module, {}).get(name)
            if found is not None:
                allowed &= set(found.ops)
        return [(str(op), OP_LABELS[op]) for op in Op if op in allowed]


@dataclass
class ActionRow:
    kind: str = ActionKind.CREATE_TASK
    params: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        return self.params.get(name, "")

    @property
    def users(self) -> list[str]:
        value = self.params.get("users", [])
        return [str(v) for v in value] if isinstance(value, list) else []


class Editor:
    """The rule being edited: the form of its name and triggers, and its rows."""

    def __init__(
        self,
        data: QueryDict | None,
        *,
        user: User,
        workflow: Workflow | None = None,
        organisation: bool = False,
    ) -> None:
        self.user = user
        self.workflow = workflow
        self.organisation = workflow.is_organisation if workflow else organisation
        self.problems: list[str] = []
        if data is not None:
            self.form = WorkflowForm(data, organisation=self.organisation)
            self.conditions = _condition_rows(data, self.problems)
            self.actions = _action_rows(data, self.problems)
            self._edit(data.get("edit", ""))
        else:
            self.form = WorkflowForm(initial=_initial(workflow), organisation=self.organisation)
            spec = workflow.spec if workflow else {}
            self.conditions = [_condition_from(c) for c in spec.get("conditions", [])]
            self.actions = [_action_from(a) for a in spec.get("actions", [])] or [ActionRow()]
            if workflow is None:
                self.conditions = [ConditionRow()]

    # -- what the buttons do ----------------------------------------------------------------

    def _edit(self, command: str) -> None:
        if command == "add-condition" and len(self.conditions) < MAX_ROWS:
            self.conditions.append(ConditionRow())
        elif command == "add-action" and len(self.actions) < MAX_ROWS:
            self.actions.append(ActionRow())
        elif command.startswith("remove-condition-"):
            _drop(self.conditions, command.removeprefix("remove-condition-"))
        elif command.startswith("remove-action-"):
            _drop(self.actions, command.removeprefix("remove-action-"))

    # -- the rule ---------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        """The rule the rows describe, as data (``SpecError`` for a value that is not what
        its row needs: a number, a size)."""
        if self.problems:
            raise SpecError(self.problems[0])
        data = self.form.data
        return {
            "triggers": [t for t in data.getlist("triggers") if t in Trigger.__members__.values()],
            "match": data.get("match", "all"),
            "conditions": [_condition_spec(row, n) for n, row in enumerate(self.conditions, 1)],
            "actions": [_action_spec(row, n) for n, row in enumerate(self.actions, 1)],
        }

    # -- choices for the template -----------------------------------------------------------

    def fields(self) -> list[tuple[str, str]]:
        return [(str(f), label) for f, label in FIELD_LABELS.items()]

    def record_fields(self) -> list[tuple[str, list[tuple[str, str]]]]:
        return [
            (MODULE_LABELS[module], [(f"{module}.{f.name}", f.label) for f in found.values()])
            for module, found in FIELDS.items()
        ]

    def writable_fields(self) -> list[tuple[str, list[tuple[str, str]]]]:
        return [
            (
                MODULE_LABELS[module],
                [(f"{module}.{f.name}", f.label) for f in found.values() if f.writable],
            )
            for module, found in FIELDS.items()
        ]

    def modules(self) -> list[tuple[str, str]]:
        return [(m, MODULE_LABELS[m]) for m in MODULES]

    def kinds(self) -> list[tuple[str, str]]:
        return [
            (str(k), label)
            for k, label in KIND_LABELS.items()
            if not (self.organisation and k in MAILBOX_ACTIONS)
            and (k != ActionKind.CALL_WEBHOOK or self.user.is_admin)
        ]

    def people(self) -> list[tuple[str, str]]:
        users = User.objects.filter(is_active=True).order_by("name", "email")
        return [*PEOPLE.items(), *((str(u.pk), u.name or u.email) for u in users)]

    def endpoints(self) -> list[tuple[str, str]]:
        if not self.user.is_admin:
            return []
        return [(str(e.pk), e.url) for e in Endpoint.objects.order_by("pk")]


def _initial(workflow: Workflow | None) -> dict[str, Any]:
    if workflow is None:
        return {"triggers": [Trigger.INCOMING], "match": "all"}
    return {
        "name": workflow.name,
        "description": workflow.description,
        "enabled": workflow.enabled,
        "triggers": workflow.spec.get("triggers", []),
        "match": workflow.spec.get("match", "all"),
    }


def _drop(rows: list[Any], index: str) -> None:
    if index.isdigit() and int(index) < len(rows):
        rows.pop(int(index))


def _indexes(data: QueryDict, prefix: str, key: str) -> list[str]:
    found = []
    for name in data:
        match = re.fullmatch(rf"{prefix}-(\d{{1,3}})-{key}", name)
        if match:
            found.append(match[1])
    return sorted(set(found), key=int)[:MAX_ROWS]


def _text(data: QueryDict, name: str, problems: list[str]) -> str:
    value = data.get(name, "")
    problem = text_problem(value)
    if problem:
        problems.append(problem)
        return repaired(value)
    return value


def _condition_rows(data: QueryDict, problems: list[str]) -> list[ConditionRow]:
    rows = []
    for i in _indexes(data, "c", "field"):
        row = ConditionRow(
            field=_text(data, f"c-{i}-field", problems),
            op=_text(data, f"c-{i}-op", problems),
            name=_text(data, f"c-{i}-name", problems),
            values=_text(data, f"c-{i}-values", problems),
        )
        if row.op not in {op for op, _ in row.ops()}:
            row.op = row.ops()[0][0]
        rows.append(row)
    return rows


def _action_rows(data: QueryDict, problems: list[str]) -> list[ActionRow]:
    rows = []
    for i in _indexes(data, "a", "kind"):
        params = {p: _text(data, f"a-{i}-{p}", problems) for p in PARAMS}
        users = data.getlist(f"a-{i}-users")
        if text_problem(users):
            problems.append(text_problem(users) or "")
            users = []
        params["users"] = users
        rows.append(ActionRow(kind=_text(data, f"a-{i}-kind", problems), params=params))
    return rows


def _condition_from(data: dict[str, Any]) -> ConditionRow:
    values = data.get("values", [])
    if data.get("field") == Field.HAS_ATTACHMENT:
        text = "yes" if values and values[0] is True else "no"
    else:
        text = "\n".join(str(v) for v in values)
    return ConditionRow(
        field=data.get("field", ""), op=data.get("op", ""), name=data.get("name", ""), values=text
    )


def _action_from(data: dict[str, Any]) -> ActionRow:
    params = dict(data.get("params", {}))
    kind = data.get("kind", "")
    shown: dict[str, Any] = {}
    if kind == ActionKind.CREATE_TASK:
        shown = {
            "title": params.get("title", ""),
            "due": str(params.get("due_in_days", 0)),
            "assignee": str(params.get("assignee", "record_owner")),
            "record": params.get("record", ""),
        }
    elif kind == ActionKind.UPDATE_FIELD:
        shown = {
            "target": f"{params.get('module', '')}.{params.get('field', '')}",
            "value": str(params.get("value", "")),
        }
    elif kind == ActionKind.NOTIFY:
        shown = {"users": [str(u) for u in params.get("users", [])], "text": params.get("text", "")}
    elif kind == ActionKind.CALL_WEBHOOK:
        shown = {"endpoint": str(params.get("endpoint_id", ""))}
    elif kind == ActionKind.TAG:
        shown = {"tags": ", ".join(params.get("tags", []))}
    elif kind == ActionKind.MOVE_TO_FOLDER:
        shown = {"folder": params.get("folder", "")}
    return ActionRow(kind=kind, params=shown)


# --- rows to the rule ---------------------------------------------------------------------------


def _number(text: str, what: str) -> int | float:
    cleaned = text.strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise SpecError(f"{what}: {text.strip()!r} is not a number.") from None
    if not value.is_finite():
        raise SpecError(f"{what}: {text.strip()!r} is not a number.")
    return int(value) if value == value.to_integral_value() else float(value)


def _size(text: str, what: str) -> int:
    match = SIZE.fullmatch(text)
    if match is None:
        raise SpecError(f"{what}: write a size like 500 kB, 2 MB or 10000 (bytes).")
    number = Decimal(match[1].replace(",", "."))
    return int(number * UNITS[(match[2] or "").lower()])


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _condition_spec(row: ConditionRow, number: int) -> dict[str, Any]:
    what = f"Condition {number}"
    out: dict[str, Any] = {"field": row.field, "op": row.op}
    if row.field in (Field.HEADER, Field.RECORD_FIELD):
        out["name"] = row.name
    lines = _lines(row.values)
    if row.field == Field.HAS_ATTACHMENT:
        out["values"] = [row.values.strip().lower() != "no"]
    elif row.field == Field.SIZE:
        out["values"] = [_size(v, what) for v in lines]
    elif row.field == Field.RECORD_FIELD and _is_number(row):
        out["values"] = [_number(v, what) for v in lines]
    else:
        out["values"] = lines
    return out


def _is_number(row: ConditionRow) -> bool:
    module, _, name = row.name.partition(".")
    found = FIELDS.get(module, {}).get(name)
    return (found is not None and found.kind == NUMBER) or row.op in ("gt", "gte", "lt", "lte")


def _action_spec(row: ActionRow, number: int) -> dict[str, Any]:
    what = f"Action {number}"
    p = row.params
    params: dict[str, Any] = {}
    if row.kind == ActionKind.CREATE_TASK:
        params = {
            "title": p.get("title", ""),
            "due_in_days": int(_number(p.get("due") or "0", what)),
            "assignee": _person(p.get("assignee") or "record_owner"),
        }
        if p.get("record"):
            params["record"] = p["record"]
    elif row.kind == ActionKind.UPDATE_FIELD:
        module, _, name = str(p.get("target", "")).partition(".")
        found = FIELDS.get(module, {}).get(name)
        value: Any = p.get("value", "")
        if found is not None and found.kind == NUMBER:
            value = _number(str(value), what)
        params = {"module": module, "field": name, "value": value}
    elif row.kind == ActionKind.NOTIFY:
        params = {"users": [_person(u) for u in row.users], "text": p.get("text", "")}
    elif row.kind == ActionKind.CALL_WEBHOOK:
        endpoint = str(p.get("endpoint", ""))
        params = {"endpoint_id": int(endpoint) if endpoint.isdigit() else None}
    elif row.kind == ActionKind.TAG:
        params = {"tags": [t.strip() for t in str(p.get("tags", "")).split(",") if t.strip()]}
    elif row.kind == ActionKind.MOVE_TO_FOLDER:
        params = {"folder": p.get("folder", "")}
    return {"kind": row.kind, "params": params}


def _person(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def describe(spec: dict[str, Any], *, organisation: bool = False) -> str:
    """A rule in one line, for the list: "Mail I receive · Subject contains invoice →
    Create a task on its record"."""
    labels = ORGANISATION_TRIGGER_LABELS if organisation else TRIGGER_LABELS
    when = ", ".join(labels.get(t, t) for t in spec.get("triggers", []))  # type: ignore[call-overload]
    parts = []
    for c in spec.get("conditions", []):
        subject = FIELD_LABELS.get(c.get("field"), c.get("field", ""))  # type: ignore[call-overload]
        if c.get("field") == Field.RECORD_FIELD:
            module, _, name = str(c.get("name", "")).partition(".")
            found = FIELDS.get(module, {}).get(name)
            subject = f"the {module}'s {(found.label if found else name).lower()}"
        elif c.get("name"):
            subject = f"{subject} {c['name']}"
        op = OP_LABELS.get(c.get("op"), c.get("op", ""))  # type: ignore[call-overload]
        values = " or ".join(str(v) for v in c.get("values", []))
        parts.append(f"{subject} {op} {values}")
    joiner = " and " if spec.get("match", "all") == "all" else " or "
    actions = ", ".join(
        KIND_LABELS.get(a.get("kind"), a.get("kind", ""))  # type: ignore[call-overload]
        for a in spec.get("actions", [])
    )
    condition = joiner.join(parts) or "any mail"
    return f"{when} · {condition} → {actions}"
