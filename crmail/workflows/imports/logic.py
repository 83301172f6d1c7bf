"""A filter's test as a boolean expression, and whether a crmail rule can hold it.

Gmail queries and Sieve tests nest freely (``a (b OR -c)``, ``allof(anyof(…), not …)``);
a crmail rule is one flat list of conditions joined by "all" or "any", where a condition
with several values holds when any of them does and a negated one (``not_contains``,
``is_not``) when none does (``spec``). ``flatten`` pushes negations down to the
conditions (De Morgan), merges what merges, and gives the rule's match and conditions,
or says in words why the expression does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from crmail.workflows.spec import Condition, Field, Match, Op

NESTED = (
    "It needs and/or logic nested deeper than a crmail rule holds (a rule's conditions "
    "are all joined by 'all', or all by 'any')."
)
NEVER = "It can never match, so there is nothing to import."


@dataclass(frozen=True)
class Atom:
    """One comparison, as a rule's condition would say it; ``source`` is how the original
    said it, to name it when its negation cannot be expressed."""

    field: Field
    op: Op
    values: tuple[str | int | bool, ...]
    name: str = ""
    source: str = ""


@dataclass(frozen=True)
class All:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


Expr = Union[Atom, All, Any_, Not]  # noqa: UP007 - a runtime alias of dataclasses
TRUE: Expr = All(())
FALSE: Expr = Any_(())


def all_of(*items: Expr) -> Expr:
    return items[0] if len(items) == 1 else All(tuple(items))


def any_of(*items: Expr) -> Expr:
    return items[0] if len(items) == 1 else Any_(tuple(items))


_NEGATED = {
    Op.CONTAINS: Op.NOT_CONTAINS,
    Op.NOT_CONTAINS: Op.CONTAINS,
    Op.IS: Op.IS_NOT,
    Op.IS_NOT: Op.IS,
}
_POSITIVE = frozenset({Op.CONTAINS, Op.IS, Op.STARTS_WITH, Op.ENDS_WITH, Op.MATCHES})
_OP_WORDS = {
    Op.STARTS_WITH: "starts with",
    Op.ENDS_WITH: "ends with",
    Op.MATCHES: "matches a pattern",
}


class Inexpressible(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def negate_atom(atom: Atom) -> Atom:
    if atom.field == Field.HAS_ATTACHMENT and len(atom.values) == 1:
        return Atom(atom.field, atom.op, (not atom.values[0],), atom.name, atom.source)
    if atom.op in _NEGATED:
        return Atom(atom.field, _NEGATED[atom.op], atom.values, atom.name, atom.source)
    if atom.field == Field.SIZE and len(atom.values) == 1:
        size = atom.values[0]
        assert isinstance(size, int)
        if atom.op == Op.GT:  # not over n: at most n
            return Atom(atom.field, Op.LT, (size + 1,), atom.name, atom.source)
        if atom.op == Op.LT and size > 0:  # not under n: at least n
            return Atom(atom.field, Op.GT, (size - 1,), atom.name, atom.source)
    what = atom.source or f"{atom.field} {_OP_WORDS.get(atom.op, atom.op)}"
    raise Inexpressible(f"crmail cannot turn '{what}' around: a rule has no 'not' for it.")


def normal(expr: Expr, negated: bool = False) -> Expr:
    """``expr`` with every negation moved onto its conditions and nested groups of one
    kind merged; raises ``Inexpressible`` when a negation has nowhere to go."""
    if isinstance(expr, Not):
        return normal(expr.item, not negated)
    if isinstance(expr, Atom):
        return negate_atom(expr) if negated else expr
    is_all = isinstance(expr, All) != negated  # De Morgan: not(all) is any(not …)
    items: list[Expr] = []
    for item in expr.items:
        child = normal(item, negated)
        if child == (FALSE if is_all else TRUE):
            return child  # all(…, false…) is false; any(…, true…) is true
        if child == (TRUE if is_all else FALSE):
            continue
        same = All if is_all else Any_
        items.extend(child.items if isinstance(child, same) else [child])
    if len(items) == 1:
        return items[0]
    return All(tuple(items)) if is_all else Any_(tuple(items))


def _key(atom: Atom) -> tuple[Field, Op, str]:
    return (atom.field, atom.op, atom.name.lower())


def _merge(atoms: list[Atom], joined_by_any: bool) -> list[Atom]:
    """Atoms of one field, operator and header merged into one where the merge means the
    same: under "any", positive ones (a OR b is one condition with two values); under
    "all", negated ones (none of a, none of b: one negated condition with two values)."""
    where: dict[tuple[Field, Op, str], int] = {}
    out: list[Atom] = []
    for atom in atoms:
        mergeable = (atom.op in _POSITIVE) == joined_by_any and atom.op not in (Op.GT, Op.LT)
        mergeable = mergeable and atom.field != Field.HAS_ATTACHMENT
        key = _key(atom)
        if mergeable and key in where:
            first = out[where[key]]
            values = first.values + tuple(v for v in atom.values if v not in first.values)
            out[where[key]] = Atom(first.field, first.op, values, first.name, first.source)
            continue
        if mergeable:
            where[key] = len(out)
        out.append(atom)
    return out


def _one_condition(group: Expr, joined_by_any: bool) -> Atom:
    """A nested group that is one condition after merging, else ``Inexpressible``."""
    if isinstance(group, Atom):
        return group
    inner = group.items
    if not all(isinstance(i, Atom) for i in inner):
        raise Inexpressible(NESTED)
    merged = _merge(list(inner), joined_by_any=isinstance(group, Any_))  # type: ignore[arg-type]
    if len(merged) != 1:
        raise Inexpressible(NESTED)
    return merged[0]


def flatten(expr: Expr) -> tuple[Match, list[Condition]] | str:
    """The rule's match and conditions for ``expr``, or why it has none."""
    try:
        flat = normal(expr)
        if flat == FALSE:
            return NEVER
        if isinstance(flat, Atom):
            return Match.ALL, [_condition(flat)]
        joined_by_any = isinstance(flat, Any_)
        atoms = [_one_condition(item, joined_by_any) for item in flat.items]
    except Inexpressible as error:
        return error.reason
    merged = _merge(atoms, joined_by_any)
    match = Match.ANY if joined_by_any and len(merged) > 1 else Match.ALL
    return match, [_condition(a) for a in merged]


def _condition(atom: Atom) -> Condition:
    return Condition(field=atom.field, op=atom.op, values=atom.values, name=atom.name)
