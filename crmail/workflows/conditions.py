"""Whether a rule's conditions hold for a message: pure code on plain facts.

``facts.load`` reads a message and its records from the database into ``MessageFacts``;
everything here only compares. Text is compared without regard to case (``casefold``).
A condition with several values holds when one of them does; the negated operators
(``not_contains``, ``is_not``) hold when none does. A field with several values (the
recipients, the emails of a contact, the message's deals) holds when one of them does.

``matches`` is a wildcard (``*`` any run of characters, ``?`` one): split at the stars, the
pieces are found left to right, so a pattern costs a few passes over the text, never the
backtracking a regular expression can fall into.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from crmail.workflows.spec import Condition, Field, Match, Op, RuleSpec

NEGATED = {Op.NOT_CONTAINS: Op.CONTAINS, Op.IS_NOT: Op.IS}


@dataclass
class RecordFacts:
    """A record a message is on, as a rule sees it."""

    module: str  # the spec's name: lead, contact, account, deal
    id: int
    name: str
    owner_id: int
    values: dict[str, list[Any]] = field(default_factory=dict)
    # How the message reaches it: "link" (it is linked), "account" (through a linked
    # contact), "open_deal" (the sender's contact's newest open deal, not linked yet).
    via: str = "link"
    sender: bool = False  # the record has the message's From address


@dataclass
class MessageFacts:
    id: int
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    recipients: tuple[str, ...] = ()
    body: str = ""
    has_attachment: bool = False
    size: int = 0
    snippet: str = ""
    date: Any = None
    records: list[RecordFacts] = field(default_factory=list)
    # What email intelligence found (None: nothing, e.g. BCC Dropbox mail, or switched off).
    sentiment: str | None = None
    intent: str | None = None
    # Reads the header lines on first use (header conditions only): name -> values.
    header_reader: Callable[[], dict[str, list[str]]] | None = None
    _headers: dict[str, list[str]] | None = None

    @property
    def from_domain(self) -> str:
        return self.from_address.rpartition("@")[2]

    def header(self, name: str) -> list[str]:
        if self._headers is None:
            self._headers = self.header_reader() if self.header_reader else {}
        return self._headers.get(name.lower(), [])


def holds(rule: RuleSpec, facts: MessageFacts, records: Sequence[RecordFacts]) -> bool:
    """Whether ``rule``'s conditions hold for the message, seeing ``records`` (those the
    rule may see). No condition: every message of its triggers."""
    if not rule.conditions:
        return True
    results = (condition_holds(c, facts, records) for c in rule.conditions)
    return all(results) if rule.match == Match.ALL else any(results)


def condition_holds(
    condition: Condition, facts: MessageFacts, records: Sequence[RecordFacts]
) -> bool:
    subjects = _subjects(condition, facts, records)
    op = NEGATED.get(condition.op, condition.op)
    found = any(compare(op, s, v) for s in subjects for v in condition.values)
    return not found if condition.op in NEGATED else found


def _subjects(
    condition: Condition, facts: MessageFacts, records: Sequence[RecordFacts]
) -> Iterable[Any]:
    f = condition.field
    if f == Field.FROM:
        return [facts.from_address]
    if f == Field.FROM_DOMAIN:
        return [facts.from_domain]
    if f == Field.TO:
        return facts.recipients
    if f == Field.SUBJECT:
        return [facts.subject]
    if f == Field.BODY:
        return [facts.body]
    if f == Field.HEADER:
        return facts.header(condition.name)
    if f == Field.HAS_ATTACHMENT:
        return [facts.has_attachment]
    if f == Field.SIZE:
        return [facts.size]
    if f == Field.RECORD_TYPE:
        return {r.module for r in records}
    if f == Field.SENTIMENT:
        return [facts.sentiment]
    if f == Field.INTENT:
        return [facts.intent]
    if f == Field.RECORD_FIELD:
        module, _, name = condition.name.partition(".")
        return [v for r in records if r.module == module for v in r.values.get(name, [])]
    raise ValueError(f"Unknown field {f!r}")  # pragma: no cover - the spec has no other


def compare(op: Op, subject: Any, value: Any) -> bool:
    """One subject (a field's value) against one value of the condition."""
    if subject is None:
        return False
    if isinstance(subject, bool) or isinstance(value, bool):
        return op == Op.IS and subject is value
    if op in (Op.GT, Op.GTE, Op.LT, Op.LTE) or (
        op == Op.IS and _is_number(value) and _number(subject) is not None
    ):
        a, b = _number(subject), _number(value)
        if a is None or b is None:
            return False
        if op == Op.GT:
            return a > b
        if op == Op.GTE:
            return a >= b
        if op == Op.LT:
            return a < b
        if op == Op.LTE:
            return a <= b
        return a == b
    text, wanted = str(subject).casefold(), str(value).casefold()
    if op == Op.CONTAINS:
        return wanted in text
    if op == Op.IS:
        return text.strip() == wanted.strip()
    if op == Op.STARTS_WITH:
        return text.startswith(wanted)
    if op == Op.ENDS_WITH:
        return text.endswith(wanted)
    if op == Op.MATCHES:
        return wildcard(wanted, text)
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number(value: Any) -> Decimal | None:
    """A number as a number: 1000, 1000.0, Decimal("1000.00") and "1000" are equal."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        try:
            return Decimal(str(value))
        except InvalidOperation:  # nan, inf
            return None
    if isinstance(value, str) and value.strip():
        try:
            number = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def wildcard(pattern: str, text: str) -> bool:
    """Whether all of ``text`` fits ``pattern`` (``*``: any run, ``?``: one character)."""
    pieces = pattern.split("*")
    if len(pieces) == 1:
        return len(text) == len(pattern) and _fits(pattern, text, 0)
    first, *middle, last = pieces
    if len(first) + len(last) > len(text):
        return False
    if not _fits(first, text, 0) or not _fits(last, text, len(text) - len(last)):
        return False
    at, end = len(first), len(text) - len(last)
    for piece in middle:
        if not piece:
            continue
        found = _find(piece, text, at, end)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def _fits(piece: str, text: str, at: int) -> bool:
    """``piece`` (with ``?``) lies in ``text`` at ``at``."""
    if at < 0 or at + len(piece) > len(text):
        return False
    return all(p == "?" or p == text[at + i] for i, p in enumerate(piece))


def _find(piece: str, text: str, start: int, end: int) -> int:
    """The first place in ``text[start:end]`` where ``piece`` (with ``?``) fits, or -1.
    The longest run without ``?`` is looked for with ``str.find``; each place it is found
    is then checked whole."""
    if "?" not in piece:
        return text.find(piece, start, end)
    anchor = max(piece.split("?"), key=len)
    if not anchor:  # only question marks: any place with room
        return start if end - start >= len(piece) else -1
    offset = piece.index(anchor)
    at = text.find(anchor, start + offset, end)
    while at >= 0:
        begin = at - offset
        if begin + len(piece) > end:
            return -1
        if _fits(piece, text, begin):
            return begin
        at = text.find(anchor, at + 1, end)
    return -1
