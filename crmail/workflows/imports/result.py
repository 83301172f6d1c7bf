"""What an import of filters gives back: the rules it can make and the filters it cannot.

Both importers (``gmail``, ``sieve``) read a file into filters, one ``FilterDraft`` each:
its name, the source lines it came from, its conditions as a boolean expression
(``logic``), its actions and, as they are met, the reasons a part of it cannot be said in
a crmail rule. ``FilterDraft.finish`` turns a draft into ``ImportedRule`` objects when
nothing stood in the way, else into one ``SkippedFilter`` carrying every reason: a filter
is imported whole or not at all.

No Django here: the importers are pure code, checked on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmail.text import text_problem
from crmail.workflows.imports.logic import TRUE, Expr, flatten
from crmail.workflows.spec import Action, ActionKind, RuleSpec, SpecError, Trigger

NAME_LIMIT = 200  # a workflow's name, as the rules store it
TEXT_LIMIT = 300  # a source line as it is shown beside a problem


class FilterImportError(ValueError):
    """The file cannot be read as filters at all (not Gmail's export, a Sieve syntax
    error…), in words; ``line`` is where, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"Line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class SourceLine:
    number: int
    text: str


@dataclass(frozen=True)
class Problem:
    """A part of a filter crmail cannot express: where it is and why, in words."""

    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class ImportedRule:
    """A rule to make: its name, its checked spec, where it came from, and how its meaning
    differs from the original where it does (``notes``, shown before importing)."""

    name: str
    spec: RuleSpec
    lines: tuple[SourceLine, ...]
    notes: tuple[str, ...] = ()

    def dump(self) -> dict[str, Any]:
        """The rule as stored (``RuleSpec.load`` reads it back)."""
        return self.spec.dump()


@dataclass(frozen=True)
class SkippedFilter:
    """A filter that is not imported, with every reason."""

    name: str
    lines: tuple[SourceLine, ...]
    problems: tuple[Problem, ...]


@dataclass
class ImportResult:
    source: str  # "gmail" or "sieve"
    rules: list[ImportedRule] = field(default_factory=list)
    skipped: list[SkippedFilter] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        """Every line that cannot be imported, in the file's order."""
        found = [p for s in self.skipped for p in s.problems]
        return sorted(found, key=lambda p: p.line)

    def source_name(self) -> str:
        """What the file was, in a sentence: "Imported from Gmail's filters"."""
        return {"gmail": "Gmail's filters", "sieve": "a Sieve script"}.get(self.source, self.source)


class Source:
    """The file's lines, to quote them beside what came from them."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def text(self, number: int, fallback: str = "") -> str:
        line = self.lines[number - 1].strip() if 0 < number <= len(self.lines) else ""
        if fallback and (not line or len(line) > TEXT_LIMIT):
            line = fallback
        return shorten(line, TEXT_LIMIT)

    def line(self, number: int, fallback: str = "") -> SourceLine:
        return SourceLine(number, self.text(number, fallback))


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass
class Piece:
    """One rule of a filter: when (an expression) and what (actions)."""

    when: Expr
    actions: list[Action]
    lines: set[int]
    name: str = ""
    line: int = 0  # where to point when its conditions cannot be expressed
    why: str = ""  # what the conditions mean, said when they cannot be expressed


@dataclass
class FilterDraft:
    """A filter being read: it collects its pieces, problems and notes."""

    source: Source
    name: str
    line: int
    pieces: list[Piece] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lines: set[int] = field(default_factory=set)
    fallbacks: dict[int, str] = field(default_factory=dict)  # line -> text when too long

    def quote_line(self, line: int, text: str) -> None:
        """What to show for ``line`` when it is too long to show itself."""
        known = self.fallbacks.get(line)
        self.fallbacks[line] = f"{known}; {text}" if known else text

    def problem(self, line: int, reason: str, quote: str = "") -> Expr:
        """Record that the part at ``line`` cannot be imported; returns a stand-in
        condition so the reading can go on and find the other reasons. ``quote`` is shown
        instead of the line when the line is too long to show (a file on one line)."""
        self.lines.add(line)
        quote = quote or self.fallbacks.get(line, "")
        entry = Problem(line, self.source.text(line, quote), reason)
        if entry not in self.problems:
            self.problems.append(entry)
        return TRUE

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def finish(self, triggers: frozenset[Trigger]) -> list[ImportedRule] | SkippedFilter:
        rules: list[ImportedRule] = []
        for number, piece in enumerate(self.pieces, start=1):
            rule = self._rule(piece, number, triggers)
            if rule is not None:
                rules.append(rule)
        if not self.problems and not rules:
            self.problem(self.line, "This filter does nothing crmail's rules would do.")
        if self.problems:
            return SkippedFilter(
                name=self.name,
                lines=tuple(self._source_lines(self.lines)),
                problems=tuple(sorted(self.problems, key=lambda p: p.line)),
            )
        return rules

    def _rule(self, piece: Piece, number: int, triggers: frozenset[Trigger]) -> ImportedRule | None:
        if not piece.actions:
            return None
        flat = flatten(piece.when)
        if isinstance(flat, str):
            reason = f"{piece.why} {flat}" if piece.why else flat
            self.problem(piece.line or self.line, reason)
            return None
        match, conditions = flat
        actions = _ordered(piece.actions)
        spec = RuleSpec(
            triggers=triggers, conditions=tuple(conditions), actions=actions, match=match
        )
        try:
            checked = RuleSpec.load(spec.dump())
        except SpecError as error:
            self.problem(piece.line or self.line, f"crmail cannot store this rule: {error}")
            return None
        name = piece.name or (self.name if len(self.pieces) == 1 else f"{self.name} ({number})")
        return ImportedRule(
            name=clean_name(name),
            spec=checked,
            lines=tuple(self._source_lines(piece.lines | {piece.line} - {0})),
            notes=tuple(self.notes),
        )

    def _source_lines(self, numbers: set[int]) -> list[SourceLine]:
        return [self.source.line(n, self.fallbacks.get(n, "")) for n in sorted(numbers) if n]


# Acting on the mailbox's copy goes last, so the flags and tags land before a move.
_ORDER = {
    ActionKind.TAG: 0,
    ActionKind.MARK_READ: 1,
    ActionKind.FLAG: 2,
    ActionKind.MOVE_TO_FOLDER: 3,
    ActionKind.ARCHIVE: 3,
    ActionKind.TRASH: 3,
    ActionKind.STOP: 4,
}


def _ordered(actions: list[Action]) -> tuple[Action, ...]:
    seen: list[Action] = []
    tags: list[str] = []
    for action in actions:
        if action.kind == ActionKind.TAG:
            tags += [t for t in action.params["tags"] if t not in tags]
        elif action not in seen:
            seen.append(action)
    if tags:
        seen.append(Action(ActionKind.TAG, {"tags": tags}))
    return tuple(sorted(seen, key=lambda a: _ORDER.get(a.kind, 3)))


def clean_name(name: str) -> str:
    name = shorten(name, NAME_LIMIT) or "Imported filter"
    return name if text_problem(name) is None else "Imported filter"
