"""A Sieve script (RFC 5228) as crmail rules.

Each top-level ``if`` (with its ``elsif`` and ``else`` branches and whatever they nest),
and each run of top-level actions, is one filter: imported whole or listed with every
reason. A filter becomes one rule per group of actions: ``if A { X } elsif B { Y }
else { Z }`` is "A → X", "not A and B → Y", "not A and not B → Z" (a branch that ends
with ``stop`` needs no "not" after it: crmail's stop keeps later rules off the message as
Sieve's does), and actions after a nested ``if`` become a rule of their own, in order.

Tests: ``header``, ``address`` (``:all``, ``:localpart``, ``:domain``), ``exists``,
``size :over/:under``, ``body`` (``:text``), ``allof``, ``anyof``, ``not``, ``true``,
``false``; match types ``:is``, ``:contains``, ``:matches`` and the default comparator
``i;ascii-casemap`` (crmail compares without case). Actions: ``fileinto`` (move to the
folder), ``keep``, ``discard`` (to the Trash), ``stop``, ``addflag``/``setflag`` and
``:flags`` (``\\Seen`` marks read, ``\\Flagged`` flags, a keyword becomes a tag). Anything
else is listed with its reason: ``envelope`` (crmail does not see it), ``:regex``,
``redirect``, ``reject``, ``vacation``, ``notify``, variables, dates… Decision 037.
"""

from __future__ import annotations

import re

from crmail.workflows.imports.logic import (
    FALSE,
    TRUE,
    Atom,
    Expr,
    Not,
    all_of,
    any_of,
)
from crmail.workflows.imports.result import (
    FilterDraft,
    FilterImportError,
    ImportResult,
    Piece,
    Source,
)
from crmail.workflows.imports.sieve_syntax import Argument, Command, Comment, Script, Test, parse
from crmail.workflows.spec import Action, ActionKind, Field, Op, Trigger

TRIGGERS = frozenset({Trigger.INCOMING})
MATCH_TYPES = {":is": Op.IS, ":contains": Op.CONTAINS, ":matches": Op.MATCHES}
ADDRESS_PARTS = (":all", ":localpart", ":domain")
RECIPIENT_HEADERS = frozenset({"to", "cc", "bcc"})
SYSTEM_FLAGS = {"\\seen": ActionKind.MARK_READ, "\\flagged": ActionKind.FLAG}
TAG_LIMIT = 100
# Comparators that ignore case, as crmail's rules do: Sieve's default (RFC 5228 2.7.3) and
# RFC 5051's, which Proton Mail writes.
CASELESS = frozenset({"i;ascii-casemap", "i;unicode-casemap"})

ACTION_WHY = {
    "redirect": "crmail does not forward mail; Sieve's redirect cannot be imported.",
    "reject": "crmail does not refuse mail back to its sender; Sieve's reject cannot be imported.",
    "ereject": "crmail does not refuse mail back to its sender; Sieve's ereject cannot be "
    "imported.",
    "vacation": "crmail's rules do not send automatic replies; Sieve's vacation cannot be "
    "imported.",
    "notify": "Sieve's notify sends a message elsewhere; crmail's rules notify crmail users "
    "only, so it cannot be imported as it is.",
    "removeflag": "crmail's rules add flags; they cannot take them away.",
    "set": "crmail's rules have no variables; Sieve's set cannot be imported.",
    "include": "crmail reads one script; include the other script's rules by importing it too.",
    "return": "Sieve's return belongs to an included script, which crmail does not run.",
    "global": "crmail's rules have no variables; Sieve's global cannot be imported.",
    "addheader": "crmail's rules do not change a message's headers.",
    "deleteheader": "crmail's rules do not change a message's headers.",
}
TEST_WHY = {
    "envelope": (
        "crmail does not see the envelope (the addresses the mail server delivered for); "
        "a header or address test on the same address can take its place."
    ),
    "date": "crmail's rules act on mail as it arrives and cannot test dates.",
    "currentdate": "crmail's rules act on mail as it arrives and cannot test dates.",
    "spamtest": "crmail's rules cannot read a spam score.",
    "virustest": "crmail's rules cannot read a virus scan's result.",
    "string": "crmail's rules have no variables to test.",
    "hasflag": "crmail's rules cannot test a message's flags.",
    "duplicate": "crmail's rules cannot tell whether a message was seen before.",
    "mailboxexists": "crmail's rules cannot ask whether a folder exists.",
    "environment": "crmail's rules cannot test Sieve's environment.",
}
ESCAPED = "crmail's wildcard patterns cannot hold a * or ? meant as itself (Sieve's \\* and \\?)."
_RULE_NAME = re.compile(r"^rule:\s*\[(.*)\]\s*$", re.I)


def read(text: str) -> ImportResult:
    """The rules a Sieve script makes; ``FilterImportError`` at a syntax error."""
    script = parse(text)
    source = Source(text)
    result = ImportResult(source="sieve")
    reader = Reader(source, script)
    for draft in reader.filters():
        done = draft.finish(TRIGGERS)
        if isinstance(done, list):
            result.rules.extend(done)
        else:
            result.skipped.append(done)
    if not result.rules and not result.skipped:
        raise FilterImportError("There are no rules in this Sieve script.")
    return result


class Reader:
    def __init__(self, source: Source, script: Script) -> None:
        self.source = source
        self.script = script
        self.comments = {c.end_line: c for c in script.comments if c.alone}

    # -- filters ---------------------------------------------------------------------

    def filters(self) -> list[FilterDraft]:
        drafts: list[FilterDraft] = []
        commands = self.script.commands
        at = 0
        while at < len(commands):
            command = commands[at]
            if command.name == "require":
                at += 1
                continue
            if command.name in ("elsif", "else"):
                raise FilterImportError(f"'{command.name}' must follow an if.", command.line)
            if command.name == "if":
                end = at + 1
                while end < len(commands) and commands[end].name in ("elsif", "else"):
                    end += 1
                    if commands[end - 1].name == "else":
                        break
                chain = commands[at:end]
                draft = self._draft(command, "")
                self._chain(draft, chain, TRUE, set())
                if not draft.name:
                    draft.name = _unnamed(draft, command.line)
            else:
                end = at + 1
                while end < len(commands) and commands[end].name not in (
                    "if",
                    "elsif",
                    "else",
                    "require",
                ):
                    end += 1
                chain = commands[at:end]
                draft = self._draft(command, f"Sieve actions at line {command.line}")
                if self._ends_script(chain, end):
                    draft.problem(
                        command.line,
                        "These lines at the end of the script change nothing in crmail "
                        "(the message stays where it is); nothing to import.",
                    )
                self._block(draft, chain, TRUE, set(), draft.name)
            drafts.append(draft)
            at = end
        return drafts

    def _ends_script(self, chain: list[Command], end: int) -> bool:
        rest = self.script.commands[end:]
        only_stop_keep = all(c.name in ("stop", "keep") and not c.arguments for c in chain)
        return only_stop_keep and all(c.name == "require" for c in rest)

    def _draft(self, command: Command, fallback: str) -> FilterDraft:
        return FilterDraft(
            self.source, name=self._name(command.line) or fallback, line=command.line
        )

    def _name(self, line: int) -> str:
        """The comment just above ``line`` (the first line of a block of comments), the way
        Roundcube (``# rule:[Name]``) and people name their rules."""
        comment: Comment | None = self.comments.get(line - 1)
        first = None
        while comment is not None and comment.hash:
            if comment.text.strip(" *#=-\t"):
                first = comment
            comment = self.comments.get(comment.line - 1)
        if comment is not None and not comment.hash and first is None:
            first = comment
        if first is None:
            return ""
        # The first line that says something: not Proton's "@type or" annotations.
        said = [t.strip(" *#=-\t") for t in first.text.splitlines()]
        text = next((t for t in said if t and not t.startswith("@")), "")
        named = _RULE_NAME.match(text)
        return (named.group(1) if named else text).strip()

    # -- control ---------------------------------------------------------------------

    def _chain(
        self, draft: FilterDraft, chain: list[Command], outer: Expr, outer_lines: set[int]
    ) -> None:
        """An if with its elsif and else branches, inside the test ``outer`` (of the
        enclosing ifs, at ``outer_lines``)."""
        earlier: list[Expr] = []
        earlier_lines = set(outer_lines)
        for command in chain:
            guard = [Not(e) for e in earlier]
            if command.name == "else":
                when = all_of(outer, *guard) if guard else outer
                if command.tests or command.arguments:
                    draft.problem(command.line, "else takes no test.")
                why = "This else branch holds when none of the tests before it does."
            else:
                if len(command.tests) != 1 or command.arguments:
                    draft.problem(command.line, f"{command.name} needs exactly one test.")
                test = self.test(draft, command.tests[0]) if command.tests else TRUE
                when = all_of(outer, *guard, test) if guard else all_of(outer, test)
                why = (
                    "This elsif branch holds when none of the tests before it does and its own "
                    "does."
                    if guard
                    else ""
                )
            lines = {command.line} | earlier_lines
            if command.name != "else" and not _ends_with_stop(command.block or []):
                earlier.append(test)
                earlier_lines.add(command.line)
            name = self._name(command.line) if command.name != "if" else draft.name
            draft.lines.add(command.line)
            self._block(draft, command.block or [], when, lines, name, why)

    def _block(
        self,
        draft: FilterDraft,
        commands: list[Command],
        when: Expr,
        lines: set[int],
        name: str,
        why: str = "",
    ) -> None:
        actions: list[Action] = []
        action_lines: set[int] = set()
        stopped = False

        def flush() -> None:
            if _moves(actions) > 1:
                draft.problem(
                    min(action_lines),
                    "This files the message into more than one folder; a crmail rule moves "
                    "it to one.",
                )
            if actions or action_lines:
                draft.pieces.append(
                    Piece(
                        when=when,
                        actions=list(actions),
                        lines=lines | action_lines,
                        name=name if name != draft.name else "",
                        line=max(lines) if lines else draft.line,
                        why=why,
                    )
                )
            actions.clear()
            action_lines.clear()

        at = 0
        while at < len(commands):
            command = commands[at]
            draft.lines.add(command.line)
            if stopped:
                draft.problem(command.line, "This never runs: it comes after stop.")
                at += 1
                continue
            if command.name == "if":
                flush()
                end = at + 1
                while end < len(commands) and commands[end].name in ("elsif", "else"):
                    end += 1
                    if commands[end - 1].name == "else":
                        break
                self._chain(draft, commands[at:end], when, lines)
                at = end
                continue
            if command.name in ("elsif", "else"):
                draft.problem(command.line, f"'{command.name}' must follow an if.")
            elif command.name == "require":
                pass
            else:
                action_lines.add(command.line)
                actions.extend(self.action(draft, command))
                stopped = command.name == "stop"
            at += 1
        flush()

    # -- actions ---------------------------------------------------------------------

    def action(self, draft: FilterDraft, command: Command) -> list[Action]:
        name, line = command.name, command.line
        if command.block is not None or command.tests:
            draft.problem(line, f"crmail does not know the Sieve command '{name}'.")
            return []
        if name in ACTION_WHY:
            draft.problem(line, ACTION_WHY[name])
            return []
        tags, strings = _split(command.arguments)
        if name == "stop":
            return [Action(ActionKind.STOP)]
        if name in ("keep", "fileinto"):
            out: list[Action] = []
            if ":copy" in tags and name == "fileinto":
                draft.problem(
                    line,
                    "fileinto :copy leaves the message in the Inbox and puts a copy in the "
                    "folder; crmail's rules move mail, they do not copy it.",
                )
            if ":flags" in tags:
                out += self._flags(draft, line, tags[":flags"] or [])
            for tag in tags:
                if tag not in (":copy", ":flags", ":create", ":mailboxid", ":specialuse"):
                    draft.problem(line, f"crmail does not know {name}'s {tag} option.")
            if name == "fileinto":
                if len(strings) != 1 or len(strings[0]) != 1:
                    draft.problem(line, "fileinto names one folder.")
                    return out
                folder = strings[0][0].strip()
                if folder.startswith("\\"):
                    draft.problem(
                        line,
                        f"'{folder}' names a folder by its role; crmail's rules name the folder "
                        "itself.",
                    )
                elif folder.upper() != "INBOX" and folder:
                    out.append(Action(ActionKind.MOVE_TO_FOLDER, {"folder": folder}))
            return out
        if name == "discard":
            draft.note(
                "Sieve's discard deletes the message at once; crmail moves it to the Trash, "
                "where it can still be found."
            )
            return [Action(ActionKind.TRASH)]
        if name in ("addflag", "setflag"):
            if len(strings) != 1:
                draft.problem(
                    line,
                    f"{name} with a variable name cannot be imported: crmail has no variables.",
                )
                return []
            if name == "setflag":
                draft.note(
                    "Sieve's setflag replaces the flags a message has; crmail adds them (on "
                    "arriving mail this is the same)."
                )
            return self._flags(draft, line, strings[0])
        draft.problem(line, f"crmail does not know the Sieve command '{name}'.")
        return []

    def _flags(self, draft: FilterDraft, line: int, values: list[str]) -> list[Action]:
        out: list[Action] = []
        for flag in (f for value in values for f in value.split()):
            kind = SYSTEM_FLAGS.get(flag.lower())
            if kind is not None:
                out.append(Action(kind))
            elif flag.startswith("\\"):
                draft.problem(line, f"crmail's rules cannot set the flag {flag}.")
            elif len(flag) > TAG_LIMIT:
                draft.problem(line, f"The keyword {flag[:40]}… is too long for a tag.")
            else:
                draft.note(f"The IMAP keyword '{flag}' becomes the crmail tag '{flag}'.")
                out.append(Action(ActionKind.TAG, {"tags": [flag]}))
        return out

    # -- tests -----------------------------------------------------------------------

    def test(self, draft: FilterDraft, test: Test) -> Expr:
        name, line = test.name, test.line
        draft.lines.add(line)
        if name in ("allof", "anyof"):
            if not test.tests or test.arguments:
                return draft.problem(line, f"{name} needs a list of tests.")
            parts = [self.test(draft, t) for t in test.tests]
            return all_of(*parts) if name == "allof" else any_of(*parts)
        if name == "not":
            if len(test.tests) != 1 or test.arguments:
                return draft.problem(line, "not needs one test.")
            return Not(self.test(draft, test.tests[0]))
        if name in ("true", "false"):
            if test.tests or test.arguments:
                return draft.problem(line, f"{name} takes nothing.")
            return TRUE if name == "true" else FALSE
        if test.tests:
            return draft.problem(line, f"crmail does not know the Sieve test '{name}'.")
        if name in TEST_WHY:
            return draft.problem(line, TEST_WHY[name])
        if name == "size":
            return self._size(draft, test)
        if name == "exists":
            tags, strings = _split(test.arguments)
            if tags or len(strings) != 1:
                return draft.problem(line, "exists names the headers to look for.")
            atoms = [self._exists(draft, line, h.strip()) for h in strings[0]]
            return all_of(*atoms)
        if name in ("header", "address", "body"):
            return self._compare(draft, test)
        return draft.problem(line, f"crmail does not know the Sieve test '{name}'.")

    def _exists(self, draft: FilterDraft, line: int, header: str) -> Expr:
        if not header or any(c in header for c in ":\r\n \t"):
            return draft.problem(line, f"'{header}' is not a header name.")
        header = _header_name(header)
        return Atom(Field.HEADER, Op.MATCHES, ("*",), name=header, source=f'exists "{header}"')

    def _size(self, draft: FilterDraft, test: Test) -> Expr:
        args = test.arguments
        if (
            len(args) != 2
            or args[0].kind != "tag"
            or args[0].value not in (":over", ":under")
            or args[1].kind != "number"
        ):
            return draft.problem(test.line, "size needs :over or :under and a number.")
        size = args[1].value
        assert isinstance(size, int)
        if args[0].value == ":over":
            return Atom(Field.SIZE, Op.GT, (size,), source=f"size :over {size}")
        if size == 0:
            return FALSE
        return Atom(Field.SIZE, Op.LT, (size,), source=f"size :under {size}")

    def _compare(self, draft: FilterDraft, test: Test) -> Expr:
        """``header``, ``address`` and ``body``: options, then names (not for body), keys."""
        name, line = test.name, test.line
        op = Op.IS
        part = ":all"
        strings: list[list[str]] = []
        args = test.arguments
        at = 0
        while at < len(args):
            arg = args[at]
            if arg.kind == "tag":
                tag = str(arg.value)
                if tag in MATCH_TYPES:
                    op = MATCH_TYPES[tag]
                elif tag in ADDRESS_PARTS and name == "address":
                    part = tag
                elif tag == ":comparator":
                    at += 1
                    comparator = args[at].value if at < len(args) else None
                    if not isinstance(comparator, list) or comparator[0] not in CASELESS:
                        shown = comparator[0] if isinstance(comparator, list) else "?"
                        return draft.problem(
                            line,
                            f"The comparator {shown} compares with case or as numbers; crmail's "
                            "rules compare text without regard to case.",
                        )
                elif tag == ":regex":
                    return draft.problem(
                        line, "crmail's rules match wildcards (* and ?), not regular expressions."
                    )
                elif tag in (":value", ":count"):
                    return draft.problem(
                        line, f"crmail's rules cannot compare with {tag} (relational tests)."
                    )
                elif tag == ":text" and name == "body":
                    pass
                else:
                    return draft.problem(line, f"crmail cannot express {name}'s {tag} option.")
            elif arg.kind == "strings":
                assert isinstance(arg.value, list)
                strings.append(arg.value)
            else:
                return draft.problem(line, f"{name} does not take a number.")
            at += 1
        wanted = 1 if name == "body" else 2
        if len(strings) != wanted:
            return draft.problem(
                line, f"{name} needs {'keys' if wanted == 1 else 'names and keys'}."
            )
        keys = strings[-1]
        if any(k == "" for k in keys):
            return draft.problem(line, "crmail's rules cannot test for an empty value.")
        if name == "body":
            if op != Op.CONTAINS:
                return draft.problem(line, "crmail can only look for words in a message's text.")
            return Atom(Field.BODY, Op.CONTAINS, tuple(keys), source=f'body :contains "{keys[0]}"')
        names = strings[0]
        if name == "header":
            return any_of(*[self._header_atom(draft, line, h, op, keys) for h in names])
        return self._address(draft, line, names, part, op, keys)

    def _header_atom(
        self, draft: FilterDraft, line: int, header: str, op: Op, keys: list[str]
    ) -> Expr:
        header = header.strip()
        pattern = _pattern(op, keys)
        if isinstance(pattern, str):
            return draft.problem(line, pattern)
        op, values = pattern
        if header.lower() == "subject":
            return Atom(Field.SUBJECT, op, values, source=_said("Subject", op, values))
        if not header or any(c in header for c in ":\r\n \t"):
            return draft.problem(line, f"'{header}' is not a header name.")
        header = _header_name(header)
        return Atom(Field.HEADER, op, values, name=header, source=_said(header, op, values))

    def _address(
        self, draft: FilterDraft, line: int, names: list[str], part: str, op: Op, keys: list[str]
    ) -> Expr:
        lowered = {n.strip().lower() for n in names}
        atoms: list[Expr] = []
        if "from" in lowered:
            atoms.append(self._address_atom(draft, line, Field.FROM, part, op, keys))
        recipients = lowered & RECIPIENT_HEADERS
        if recipients:
            if recipients != RECIPIENT_HEADERS and recipients != {"to", "cc"}:
                shown = " and ".join(sorted(n.capitalize() for n in recipients))
                draft.note(
                    f"crmail's 'to' looks at every recipient (To and Cc), not {shown} alone."
                )
            atoms.append(self._address_atom(draft, line, Field.TO, part, op, keys))
        for other in sorted(lowered - RECIPIENT_HEADERS - {"from"}):
            header = next(n.strip() for n in names if n.strip().lower() == other)
            if part != ":all" or op != Op.CONTAINS:
                atoms.append(
                    draft.problem(
                        line,
                        f"crmail can look for text in the {header} header, but cannot compare "
                        "its addresses part by part.",
                    )
                )
            else:
                atoms.append(self._header_atom(draft, line, header, op, keys))
        return any_of(*atoms) if atoms else TRUE

    def _address_atom(
        self, draft: FilterDraft, line: int, fld: Field, part: str, op: Op, keys: list[str]
    ) -> Expr:
        who = "from" if fld == Field.FROM else "to"
        address = f"the {who} address"
        if part == ":all":
            pattern = _pattern(op, keys)
            if isinstance(pattern, str):
                return draft.problem(line, pattern)
            op, values = pattern
            return Atom(fld, op, values, source=_said(f"the {who} address", op, values))
        if part == ":domain" and fld == Field.FROM:
            pattern = _pattern(op, keys)
            if isinstance(pattern, str):
                return draft.problem(line, pattern)
            op, values = pattern
            return Atom(Field.FROM_DOMAIN, op, values, source=_said("the from domain", op, values))
        if op == Op.CONTAINS:
            return draft.problem(
                line,
                f"crmail cannot look for text in only the {part[1:]} part of an address.",
            )
        if op == Op.IS:
            if part == ":domain":
                values = tuple(f"@{k}" for k in keys)
                return Atom(fld, Op.ENDS_WITH, values, source=_said(address, Op.ENDS_WITH, values))
            values = tuple(f"{k}@" for k in keys)
            return Atom(fld, Op.STARTS_WITH, values, source=_said(address, Op.STARTS_WITH, values))
        if any("\\" in k for k in keys):
            return draft.problem(line, ESCAPED)
        full = tuple(f"*@{k}" if part == ":domain" else f"{k}@*" for k in keys)
        return Atom(fld, Op.MATCHES, full, source=_said(address, Op.MATCHES, full))


_OP_WORDS = {Op.STARTS_WITH: "starts with", Op.ENDS_WITH: "ends with"}


def _said(what: str, op: Op, values: tuple[str, ...]) -> str:
    """A comparison in words, to name it in a reason: 'the to address ends with "@x"'."""
    more = f" (or {len(values) - 1} more)" if len(values) > 1 else ""
    return f'{what} {_OP_WORDS.get(op, str(op))} "{values[0]}"{more}'


def _header_name(name: str) -> str:
    """``list-id`` as ``List-Id``: a header written in lower case, capitalised as mail
    programs show it; one written otherwise stays as it is."""
    if name != name.lower():
        return name
    return "-".join(part.capitalize() for part in name.split("-"))


def _unnamed(draft: FilterDraft, line: int) -> str:
    """A name for a rule no comment names: its line, and its folder when it has one."""
    for piece in draft.pieces:
        for action in piece.actions:
            if action.kind == ActionKind.MOVE_TO_FOLDER:
                return f"Sieve rule at line {line}: to {action.params['folder']}"
    return f"Sieve rule at line {line}"


def _split(arguments: list[Argument]) -> tuple[dict[str, list[str] | None], list[list[str]]]:
    """A command's tags (with the string list that follows ``:flags``) and its strings."""
    tags: dict[str, list[str] | None] = {}
    strings: list[list[str]] = []
    at = 0
    while at < len(arguments):
        arg = arguments[at]
        if arg.kind == "tag":
            value = None
            takes_value = (":flags", ":mailboxid", ":specialuse")
            following = arguments[at + 1] if at + 1 < len(arguments) else None
            if arg.value in takes_value and following is not None and following.kind == "strings":
                value = following.value if isinstance(following.value, list) else None
                at += 1
            tags[str(arg.value)] = value
        elif arg.kind == "strings":
            assert isinstance(arg.value, list)
            strings.append(arg.value)
        else:
            strings.append([str(arg.value)])
        at += 1
    return tags, strings


def _pattern(op: Op, keys: list[str]) -> tuple[Op, tuple[str, ...]] | str:
    """Sieve keys for ``op`` as a rule's values; ``:matches`` patterns that say plainer
    things become them (``*x*`` contains, ``x*`` starts with, no wildcard is), so that
    "not" works on them. Sieve's ``\\*`` (a star itself) has no counterpart."""
    if op != Op.MATCHES:
        return op, tuple(keys)
    plain: list[tuple[Op, str]] = []
    for key in keys:
        if "\\" in key:
            return ESCAPED
        inner = key.strip("*")
        if "*" in inner or "?" in inner or not inner:
            plain.append((Op.MATCHES, key))
        elif key.startswith("*") and key.endswith("*"):
            plain.append((Op.CONTAINS, inner))
        elif key.startswith("*"):
            plain.append((Op.ENDS_WITH, inner))
        elif key.endswith("*"):
            plain.append((Op.STARTS_WITH, inner))
        else:
            plain.append((Op.IS, inner))
    ops = {o for o, _ in plain}
    if len(ops) == 1:
        return ops.pop(), tuple(v for _, v in plain)
    return Op.MATCHES, tuple(keys)


def _ends_with_stop(block: list[Command]) -> bool:
    return bool(block) and block[-1].name == "stop"


def _moves(actions: list[Action]) -> int:
    return len(
        {str(a.params.get("folder")) for a in actions if a.kind == ActionKind.MOVE_TO_FOLDER}
    )
