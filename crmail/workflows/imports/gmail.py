"""Gmail's exported filters (``mailFilters.xml``) as crmail rules.

Settings → Filters and Blocked Addresses → Export writes an Atom feed: one ``<entry>`` per
filter, each with ``<apps:property name=… value=…/>`` lines. Criteria: ``from``, ``to``,
``subject`` (a search applied to that field), ``hasTheWord`` and ``doesNotHaveTheWord``
(Gmail's search language), ``hasAttachment``, ``size`` with ``sizeOperator`` (``s_sl``
larger, ``s_ss`` smaller) and ``sizeUnit`` (``s_sb``, ``s_skb``, ``s_smb``),
``excludeChats``. Actions: ``label``, ``shouldArchive``, ``shouldMarkAsRead``,
``shouldStar``, ``shouldTrash``, ``shouldNeverSpam``, ``shouldAlwaysMarkAsImportant``,
``shouldNeverMarkAsImportant``, ``forwardTo``, ``smartLabelToApply`` (a category). Every
export also carries ``sizeOperator``/``sizeUnit`` on filters without a size; they mean
nothing then. The property names are those of Gmail's own export and of the tools that
write it (gmailctl's ``export/xml``, gmail-britta).

The XML is read with the standard library's expat, refusing any DOCTYPE: an export never
has one, and without it there are no entity declarations, so no external entities (XXE)
and no entity expansion bombs. Decision 037 has the mapping and its reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.parsers import expat

from crmail.workflows.imports.logic import TRUE, Atom, Expr, Not, all_of, any_of
from crmail.workflows.imports.result import (
    FilterDraft,
    FilterImportError,
    ImportResult,
    Piece,
    Source,
    shorten,
)
from crmail.workflows.spec import Action, ActionKind, Field, Op, Trigger

TRIGGERS = frozenset({Trigger.INCOMING})
MAX_DEPTH = 40  # nested brackets in one search
SIZE_UNITS = {"s_sb": 1, "s_skb": 1024, "s_smb": 1024 * 1024}
SUFFIXES = {"": 1, "k": 1024, "kb": 1024, "m": 1024 * 1024, "mb": 1024 * 1024}

# Search operators that take a value; any other "word:" is an ordinary word.
FIELD_OPS = frozenset({"from", "to", "cc", "bcc", "subject", "list", "deliveredto", "rfc822msgid"})
OTHER_OPS = frozenset(
    {
        "has",
        "larger",
        "smaller",
        "size",
        "label",
        "category",
        "in",
        "is",
        "filename",
        "after",
        "before",
        "older",
        "newer",
        "older_than",
        "newer_than",
    }
)
WHY = {
    "label": "Gmail's label: search looks at Gmail's labels, which crmail's rules cannot see.",
    "category": (
        "Gmail's category: search looks at Gmail's inbox categories (Promotions, Social…), "
        "which crmail does not have."
    ),
    "in": "Gmail's in: search looks at where Gmail keeps a message, which a rule cannot see.",
    "is": (
        "Gmail's is: search looks at a message's state in Gmail (starred, read, important…), "
        "which a rule on arriving mail cannot test."
    ),
    "filename": "crmail's rules cannot look at the names of attachments.",
    "dates": "crmail's rules act on mail as it arrives and cannot test dates.",
    "me": (
        "Gmail's 'me' stands for your own addresses, which crmail cannot tell from the filter; "
        "write the address out in Gmail and export again, or make this rule in crmail."
    ),
    "around": "Gmail's AROUND (words near each other) has no counterpart in crmail.",
}
DATE_OPS = frozenset({"after", "before", "older", "newer", "older_than", "newer_than"})
ACTION_WHY = {
    "shouldNeverSpam": "Gmail's 'Never send it to Spam' has no counterpart in crmail.",
    "shouldAlwaysMarkAsImportant": (
        "Gmail's 'Always mark it as important' has no counterpart in crmail."
    ),
    "shouldNeverMarkAsImportant": (
        "Gmail's 'Never mark it as important' has no counterpart in crmail."
    ),
    "forwardTo": "crmail does not forward mail; Gmail's 'Forward it to' cannot be imported.",
    "smartLabelToApply": (
        "Gmail's 'Categorise as' puts mail in Gmail's inbox categories, which crmail does not have."
    ),
    "cannedResponse": "crmail's rules do not send replies; Gmail's 'Send template' cannot be "
    "imported.",
}
IGNORED = frozenset({"sizeOperator", "sizeUnit", "excludeChats"})
BODY_NOTE = (
    "Gmail's words without an operator match anywhere in a message; this rule looks for "
    "them in the message's text."
)


@dataclass
class Prop:
    name: str
    value: str
    line: int

    @property
    def quote(self) -> str:
        return f"{self.name}: {self.value}"


@dataclass
class Entry:
    line: int
    props: list[Prop] = field(default_factory=list)


def read(text: str) -> ImportResult:
    """The rules of a Gmail filters export; ``FilterImportError`` when it is not one."""
    entries = _entries(text)
    source = Source(text)
    result = ImportResult(source="gmail")
    for number, entry in enumerate(entries, start=1):
        draft = _filter(source, entry, number)
        done = draft.finish(TRIGGERS)
        if isinstance(done, list):
            result.rules.extend(done)
        else:
            result.skipped.append(done)
    if not entries:
        raise FilterImportError("There are no filters in this Gmail export.")
    return result


# -- the XML ----------------------------------------------------------------------------


def _entries(text: str) -> list[Entry]:
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    entries: list[Entry] = []
    stack: list[str] = []
    current: list[Entry] = []

    def refuse(*_args: object) -> None:
        raise FilterImportError(
            "This XML declares a document type, which Gmail's export never does; crmail "
            "does not read it.",
            parser.CurrentLineNumber,
        )

    def start(name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        if not stack and local != "feed":
            raise FilterImportError(
                "This is XML, but not Gmail's filters export (mailFilters.xml): it does not "
                "start with a <feed>.",
                parser.CurrentLineNumber,
            )
        if local == "entry" and not current:
            current.append(Entry(parser.CurrentLineNumber))
        elif local == "property" and current and "name" in attrs:
            value = attrs.get("value", "")
            current[0].props.append(Prop(attrs["name"], value, parser.CurrentLineNumber))
        stack.append(local)

    def end(name: str) -> None:
        local = stack.pop()
        if local == "entry" and current and "entry" not in stack:
            entries.append(current.pop())

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(text, True)
    except expat.ExpatError as error:
        raise FilterImportError(
            f"This is not well-formed XML ({expat.ErrorString(error.code)}).", error.lineno
        ) from None
    except (RecursionError, MemoryError):  # pragma: no cover - expat keeps its own stack
        raise FilterImportError("This XML nests too deeply to read.") from None
    return entries


# -- one filter -------------------------------------------------------------------------

CRITERIA = ("from", "to", "subject", "hasTheWord", "doesNotHaveTheWord")


def _filter(source: Source, entry: Entry, number: int) -> FilterDraft:
    draft = FilterDraft(source, name="", line=entry.line)
    tests: list[Expr] = []
    actions: list[Action] = []
    by_name: dict[str, Prop] = {}
    for prop in entry.props:
        by_name.setdefault(prop.name, prop)
    for prop in entry.props:
        # The size's operator and unit, which every export carries, matter with a size only.
        if prop.name not in ("sizeOperator", "sizeUnit") or "size" in by_name:
            draft.lines.add(prop.line)
        draft.quote_line(prop.line, prop.quote)
    name_parts: list[str] = []
    for prop in entry.props:
        name, value = prop.name, prop.value.strip()
        if name in CRITERIA:
            if not value:
                continue
            context = None if name in ("hasTheWord", "doesNotHaveTheWord") else name
            expr = Query(draft, prop, value).parse(context)
            tests.append(Not(expr) if name == "doesNotHaveTheWord" else expr)
            name_parts.append(_shown(name, value))
        elif name == "hasAttachment":
            if value.lower() == "true":
                tests.append(Atom(Field.HAS_ATTACHMENT, Op.IS, (True,)))
                name_parts.append("has:attachment")
        elif name == "size":
            test = _size_property(draft, prop, by_name)
            if test is not None:
                tests.append(test)
                operator = by_name.get("sizeOperator")
                unit = by_name.get("sizeUnit")
                word = "smaller" if operator and operator.value == "s_ss" else "larger"
                suffix = {"s_skb": "K", "s_smb": "M"}.get(unit.value if unit else "", "")
                name_parts.append(f"{word}:{value}{suffix}")
        elif name in IGNORED:
            continue
        else:
            actions += _action(draft, prop, by_name)
    draft.name = "Gmail filter " + (
        shorten(" ".join(name_parts), 180) if name_parts else str(number)
    )
    if not tests:
        draft.problem(entry.line, "This filter has no criteria crmail can read.")
    draft.pieces.append(
        Piece(when=all_of(*tests) if tests else TRUE, actions=actions, lines=set(draft.lines))
    )
    draft.pieces[0].line = entry.props[0].line if entry.props else entry.line
    return draft


def _shown(name: str, value: str) -> str:
    if name in ("from", "to", "subject"):
        return f"{name}:({value})"
    if name == "doesNotHaveTheWord":
        return f"-{{{value}}}"
    return value


def _size_property(draft: FilterDraft, prop: Prop, by_name: dict[str, Prop]) -> Expr | None:
    unit_prop = by_name.get("sizeUnit")
    operator_prop = by_name.get("sizeOperator")
    unit = SIZE_UNITS.get(unit_prop.value if unit_prop else "s_sb")
    operator = operator_prop.value if operator_prop else "s_sl"
    value = prop.value.strip()
    if not value.isdigit() or unit is None or operator not in ("s_sl", "s_ss"):
        draft.problem(
            prop.line, f"crmail cannot read the size '{value}' of this filter.", prop.quote
        )
        return None
    size = int(value) * unit
    if operator == "s_ss":
        return Atom(Field.SIZE, Op.LT, (size,), source=f"size smaller than {value}")
    return Atom(Field.SIZE, Op.GT, (size,), source=f"size larger than {value}")


def _action(draft: FilterDraft, prop: Prop, by_name: dict[str, Prop]) -> list[Action]:
    name, value = prop.name, prop.value.strip()
    on = value.lower() == "true"
    if name in ACTION_WHY:
        if on or name in ("forwardTo", "smartLabelToApply", "cannedResponse"):
            draft.problem(prop.line, ACTION_WHY[name], prop.quote)
        return []
    if name == "label":
        if not value:
            return []
        if value.startswith("^"):
            draft.problem(
                prop.line,
                f"The label '{value}' is one of Gmail's own, which crmail does not have.",
                prop.quote,
            )
            return []
        archive = by_name.get("shouldArchive")
        trash = by_name.get("shouldTrash")
        if archive and archive.value.lower() == "true" and not (trash and trash.value == "true"):
            draft.note(
                f"Gmail's label '{value}' with 'Skip the Inbox' moves the message to the "
                f"folder '{value}' (on Gmail's IMAP a label is a folder)."
            )
            return [Action(ActionKind.MOVE_TO_FOLDER, {"folder": value})]
        draft.note(
            f"Gmail's label '{value}' becomes the crmail tag '{value}'; the message stays where "
            "it is."
        )
        return [Action(ActionKind.TAG, {"tags": [value[:100]]})]
    if not on and name.startswith("should"):
        return []
    if name == "shouldArchive":
        label = by_name.get("label")
        trash = by_name.get("shouldTrash")
        if (label and label.value.strip()) or (trash and trash.value.lower() == "true"):
            return []  # the label's move (or the trash) takes it out of the Inbox
        return [Action(ActionKind.ARCHIVE)]
    if name == "shouldMarkAsRead":
        return [Action(ActionKind.MARK_READ)]
    if name == "shouldStar":
        return [Action(ActionKind.FLAG)]
    if name == "shouldTrash":
        return [Action(ActionKind.TRASH)]
    draft.problem(prop.line, f"crmail does not know Gmail's filter setting '{name}'.", prop.quote)
    return []


# -- Gmail's search language --------------------------------------------------------------

_TOKEN = re.compile(r'\s+|[(){}]|"[^"]*"?|[^\s(){}"]+')
_OPERATOR = re.compile(r"([A-Za-z_]+):(.*)", re.S)
_SIZE = re.compile(r"(\d+)\s*([a-z]*)", re.I)


class Query:
    """One property's search, read into an expression (``parse``); what it cannot say
    is recorded on the draft at the property's line."""

    def __init__(self, draft: FilterDraft, prop: Prop, text: str) -> None:
        self.draft, self.line, self.quote = draft, prop.line, prop.quote
        self.tokens = [t for t in _TOKEN.findall(text) if not t.isspace()]
        self.at = 0
        self.depth = 0

    def parse(self, context: str | None) -> Expr:
        expr = self._sequence(context, closing=None)
        return expr

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _sequence(self, context: str | None, closing: str | None) -> Expr:
        items: list[Expr] = []
        while (word := self._peek()) is not None:
            if word == closing:
                self.at += 1
                break
            if word in (")", "}") or word == "AND":
                self.at += 1  # a stray closing bracket, or the AND Gmail implies anyway
                continue
            items.append(self._alternatives(context))
        return all_of(*items) if items else TRUE

    def _alternatives(self, context: str | None) -> Expr:
        options = [self._unit(context)]
        while self._peek() in ("OR", "|"):
            self.at += 1
            if self._peek() is None:
                break
            options.append(self._unit(context))
        return any_of(*options)

    def _unit(self, context: str | None) -> Expr:
        word = self.tokens[self.at]
        self.at += 1
        if word in ("(", "{"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterImportError("A search in this filter nests too deeply.", self.line)
            expr = self._sequence(context, ")") if word == "(" else self._braces(context)
            self.depth -= 1
            return expr
        if word.startswith("-"):
            negated = len(word) - len(word.lstrip("-"))
            rest = word.lstrip("-")
            while not rest and self._peek() is not None and self._peek().startswith("-"):
                following = self.tokens[self.at]
                self.at += 1
                negated += len(following) - len(following.lstrip("-"))
                rest = following.lstrip("-")
            if rest:
                self.tokens.insert(self.at, rest)
            elif self._peek() is None or self._peek() in (")", "}"):
                return TRUE  # a dash alone
            expr = self._unit(context)
            return Not(expr) if negated % 2 else expr
        if word.startswith("+") and len(word) > 1:
            word = word[1:]
        if word.startswith('"'):
            return self.term(context, word.strip('"'))
        if word == "AROUND":
            return self.problem(WHY["around"])
        found = _OPERATOR.fullmatch(word)
        if found and found.group(1).lower() in FIELD_OPS | OTHER_OPS:
            operator, value = found.group(1).lower(), found.group(2)
            if value:
                return self.term(operator, value.strip('"'))
            if self._peek() is None or self._peek() in (")", "}"):
                return TRUE
            return self._unit(operator)
        return self.term(context, word)

    def _braces(self, context: str | None) -> Expr:
        options: list[Expr] = []
        while (word := self._peek()) is not None:
            if word == "}":
                self.at += 1
                break
            if word in (")", "OR", "|", "AND"):
                self.at += 1
                continue
            options.append(self._unit(context))
        return any_of(*options) if options else TRUE

    def problem(self, reason: str) -> Expr:
        return self.draft.problem(self.line, reason, self.quote)

    def term(self, context: str | None, text: str) -> Expr:
        """One word or phrase searched in ``context`` (an operator, or None: anywhere)."""
        text = " ".join(text.split())
        if not text:
            return TRUE
        draft = self.draft
        shown = f"{context}:{text}" if context else text
        if context is None:
            draft.note(BODY_NOTE)
            return Atom(Field.BODY, Op.CONTAINS, (text,), source=shown)
        if context in ("from", "to") and text.lower() == "me":
            return self.problem(WHY["me"])
        if context in ("from", "to"):
            bare = text.strip("*")
            if not bare:
                return TRUE
            if " " in bare:  # a name, which Gmail also matches: look in the header itself
                header = "From" if context == "from" else "To"
                return Atom(Field.HEADER, Op.CONTAINS, (bare,), name=header, source=shown)
            fld = Field.FROM if context == "from" else Field.TO
            return Atom(fld, Op.CONTAINS, (bare,), source=shown)
        if context == "subject":
            return Atom(Field.SUBJECT, Op.CONTAINS, (text,), source=shown)
        headers = {
            "cc": "Cc",
            "bcc": "Bcc",
            "deliveredto": "Delivered-To",
            "rfc822msgid": "Message-ID",
        }
        if context in headers:
            return Atom(Field.HEADER, Op.CONTAINS, (text,), name=headers[context], source=shown)
        if context == "list":
            return self._list(text, shown)
        if context == "has":
            if text.lower() == "attachment":
                return Atom(Field.HAS_ATTACHMENT, Op.IS, (True,), source=shown)
            return self.problem(f"Gmail's has:{text} has no counterpart in crmail.")
        if context in ("larger", "smaller", "size"):
            return self._size(context, text, shown)
        if context in DATE_OPS:
            return self.problem(WHY["dates"])
        return self.problem(WHY.get(context, f"crmail cannot search '{shown}'."))

    def _list(self, text: str, shown: str) -> Expr:
        list_id = text.strip("<>")
        if "@" in list_id:
            dotted = list_id.replace("@", ".")
            self.draft.note(
                f"Gmail's list:{list_id} is looked for in the List-Id header as '{dotted}', "
                "the form mailing lists give it."
            )
            list_id = dotted
        if not list_id:
            return TRUE
        return Atom(Field.HEADER, Op.CONTAINS, (list_id,), name="List-Id", source=shown)

    def _size(self, context: str, text: str, shown: str) -> Expr:
        found = _SIZE.fullmatch(text)
        multiplier = SUFFIXES.get(found.group(2).lower()) if found else None
        if not found or multiplier is None or len(found.group(1)) > 15:
            return self.problem(f"crmail cannot read the size in '{shown}'.")
        size = int(found.group(1)) * multiplier
        if context == "smaller":
            return Atom(Field.SIZE, Op.LT, (size,), source=shown)
        return Atom(Field.SIZE, Op.GT, (size,), source=shown)
