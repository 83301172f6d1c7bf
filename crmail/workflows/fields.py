"""The record fields a rule may look at (``record_field`` conditions) and change
(``update_field`` actions), per module, with their kind: text, number or a choice.

``spec.py`` checks only the shape "module.field"; the names are checked here, against
what crmail's records have, when a rule is saved (``check``), so the editor, the API and
an import refuse a misspelt field with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmail.crm.models import LeadStatus, StageKind
from crmail.workflows.spec import (
    NUMBER_OPS,
    TEXT_OPS,
    ActionKind,
    Field,
    Op,
    RuleSpec,
    SpecError,
)

TEXT = "text"
NUMBER = "number"
CHOICE = "choice"

# The spec's modules and crmail's: "deal" in a rule, "deals" in links and the access layer.
PLURAL = {"lead": "leads", "contact": "contacts", "account": "accounts", "deal": "deals"}
SINGULAR = {plural: single for single, plural in PLURAL.items()}


@dataclass(frozen=True)
class RecordField:
    name: str
    label: str
    kind: str = TEXT
    choices: tuple[str, ...] = ()
    writable: bool = False  # an update_field action may change it

    @property
    def ops(self) -> frozenset[Op]:
        return NUMBER_OPS if self.kind == NUMBER else TEXT_OPS


_OWNER = RecordField("owner", "Owner's email address")
_PERSON = (
    RecordField("name", "Name"),
    RecordField("first_name", "First name"),
    RecordField("last_name", "Last name"),
    RecordField("email", "Email address"),
    RecordField("title", "Title", writable=True),
    RecordField("phone", "Phone", writable=True),
    RecordField("mobile", "Mobile", writable=True),
)

FIELDS: dict[str, dict[str, RecordField]] = {
    "deal": {
        f.name: f
        for f in (
            RecordField("name", "Name"),
            RecordField("stage", "Stage (its name)", writable=True),
            RecordField("status", "Status", CHOICE, tuple(StageKind.values)),
            RecordField("amount", "Amount", NUMBER, writable=True),
            RecordField("probability", "Probability (%)", NUMBER),
            RecordField("pipeline", "Pipeline"),
            _OWNER,
        )
    },
    "contact": {
        f.name: f
        for f in (
            *_PERSON,
            RecordField("account", "Account's name"),
            _OWNER,
        )
    },
    "lead": {
        f.name: f
        for f in (
            *_PERSON,
            RecordField("company", "Company", writable=True),
            RecordField("status", "Status", CHOICE, tuple(LeadStatus.values), writable=True),
            RecordField("source", "Source", writable=True),
            _OWNER,
        )
    },
    "account": {
        f.name: f
        for f in (
            RecordField("name", "Name"),
            RecordField("domain", "Web domain"),
            RecordField("website", "Website", writable=True),
            RecordField("industry", "Industry", writable=True),
            RecordField("phone", "Phone", writable=True),
            _OWNER,
        )
    },
}


def field(module: str, name: str) -> RecordField | None:
    return FIELDS.get(module, {}).get(name)


def _names(module: str, *, writable: bool = False) -> str:
    return ", ".join(f.name for f in FIELDS[module].values() if f.writable or not writable)


def check(rule: RuleSpec) -> None:
    """``SpecError`` naming the first condition or action whose record field crmail's
    records do not have, or that compares it in a way that makes no sense."""
    for number, condition in enumerate(rule.conditions, 1):
        if condition.field != Field.RECORD_FIELD:
            continue
        module, _, name = condition.name.partition(".")
        found = field(module, name)
        if found is None:
            raise SpecError(
                f"Condition {number}: a {module} has no field {name!r}; choose one of "
                f"{_names(module)}."
            )
        if condition.op not in found.ops:
            raise SpecError(
                f"Condition {number}: {module}.{name} is {found.kind}, which cannot be "
                f"compared with {condition.op}."
            )
        if found.kind == NUMBER and condition.op in (Op.IS, Op.IS_NOT):
            for value in condition.values:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise SpecError(f"Condition {number}: {module}.{name} is a number.")
    for number, action in enumerate(rule.actions, 1):
        if action.kind != ActionKind.UPDATE_FIELD:
            continue
        module, name = action.params["module"], action.params["field"]
        found = field(module, name)
        if found is None or not found.writable:
            raise SpecError(
                f"Action {number}: a rule can change these fields of a {module}: "
                f"{_names(module, writable=True)}; not {name!r}."
            )
        value = action.params["value"]
        if found.kind == NUMBER and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SpecError(f"Action {number}: {module}.{name} is a number.")
        if found.kind != NUMBER and not isinstance(value, str):
            raise SpecError(f"Action {number}: {module}.{name} is text.")
        if found.choices and value not in found.choices:
            raise SpecError(
                f"Action {number}: {module}.{name} is one of {', '.join(found.choices)}."
            )
