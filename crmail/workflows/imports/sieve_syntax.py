"""Sieve's grammar (RFC 5228 section 8): a script read into commands, tests and arguments.

Only the syntax is known here; which commands and tests crmail can express is for
``sieve``. Every command, test and argument keeps the line it starts on, and comments are
kept with theirs, to name rules after them. A script that breaks the grammar raises
``FilterImportError`` naming the line, as a Sieve server refuses such a script whole.
Nothing is ever run: this is a reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crmail.workflows.imports.result import FilterImportError

MAX_DEPTH = 50  # nested blocks and tests
QUANTIFIERS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}  # RFC 5228 section 2.4.1
PUNCTUATION = "[](){},;"


@dataclass(frozen=True)
class Token:
    kind: str  # "identifier", "tag", "number", "string", or the punctuation itself
    value: str | int
    line: int


@dataclass(frozen=True)
class Comment:
    line: int
    end_line: int
    text: str
    hash: bool  # "# …" rather than "/* … */"
    alone: bool = True  # nothing but blanks before it on its line


@dataclass
class Argument:
    kind: str  # "strings", "number" or "tag"
    value: list[str] | int | str
    line: int


@dataclass
class Test:
    name: str
    arguments: list[Argument]
    tests: list[Test]
    line: int


@dataclass
class Command:
    name: str
    arguments: list[Argument]
    tests: list[Test]
    block: list[Command] | None
    line: int
    end_line: int = 0


@dataclass
class Script:
    commands: list[Command]
    comments: list[Comment] = field(default_factory=list)


# -- the lexer ------------------------------------------------------------------------------


class Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.line = 1
        self.tokens: list[Token] = []
        self.comments: list[Comment] = []

    def run(self) -> list[Token]:
        text = self.text
        while self.at < len(text):
            char = text[self.at]
            if char == "\n":
                self.line += 1
                self.at += 1
            elif char in " \t\r":
                self.at += 1
            elif char == "#":
                self._hash_comment()
            elif text.startswith("/*", self.at):
                self._bracket_comment()
            elif char in PUNCTUATION:
                self.tokens.append(Token(char, char, self.line))
                self.at += 1
            elif char == '"':
                self._quoted()
            elif char == ":":
                self.at += 1
                name = self._identifier()
                if not name:
                    raise FilterImportError("A ':' must be followed by a tag name.", self.line)
                self.tokens.append(Token("tag", ":" + name.lower(), self.line))
            elif char.isascii() and char.isdigit():
                self._number()
            elif char.isascii() and (char.isalpha() or char == "_"):
                line = self.line
                name = self._identifier()
                if name.lower() == "text" and text.startswith(":", self.at):
                    self.at += 1
                    self._multiline(line)
                else:
                    self.tokens.append(Token("identifier", name.lower(), line))
            else:
                raise FilterImportError(f"Unexpected character {char!r}.", self.line)
        return self.tokens

    def _identifier(self) -> str:
        start = self.at
        text = self.text
        while self.at < len(text) and (
            text[self.at].isascii() and (text[self.at].isalnum() or text[self.at] == "_")
        ):
            self.at += 1
        return text[start : self.at]

    def _hash_comment(self) -> None:
        end = self.text.find("\n", self.at)
        end = len(self.text) if end < 0 else end
        body = self.text[self.at + 1 : end].strip()
        self.comments.append(Comment(self.line, self.line, body, True, self._alone()))
        self.at = end

    def _alone(self) -> bool:
        line_start = self.text.rfind("\n", 0, self.at) + 1
        return not self.text[line_start : self.at].strip()

    def _bracket_comment(self) -> None:
        end = self.text.find("*/", self.at + 2)
        if end < 0:
            raise FilterImportError("A /* comment is never closed with */.", self.line)
        body = self.text[self.at + 2 : end]
        start_line = self.line
        self.line += body.count("\n")
        alone = self._alone()
        self.comments.append(Comment(start_line, self.line, body.strip(" *\t\r\n"), False, alone))
        self.at = end + 2

    def _quoted(self) -> None:
        start_line = self.line
        out: list[str] = []
        at = self.at + 1
        text = self.text
        while True:
            if at >= len(text):
                raise FilterImportError("A quoted string is never closed.", start_line)
            char = text[at]
            if char == '"':
                break
            if char == "\\" and at + 1 < len(text):
                # RFC 5228 2.4.2: \\ and \" are escapes; a backslash before any other
                # character is dropped.
                at += 1
                char = text[at]
            if char == "\n":
                self.line += 1
            out.append(char)
            at += 1
        self.at = at + 1
        self.tokens.append(Token("string", "".join(out).replace("\r\n", "\n"), start_line))

    def _number(self) -> None:
        start = self.at
        text = self.text
        while self.at < len(text) and text[self.at].isascii() and text[self.at].isdigit():
            self.at += 1
        digits = text[start : self.at]
        unit = ""
        if self.at < len(text) and text[self.at].upper() in "KMG" and text[self.at].isalpha():
            unit = text[self.at].upper()
            self.at += 1
        if len(digits) > 15:
            raise FilterImportError(f"The number {digits[:20]}… is too large.", self.line)
        self.tokens.append(Token("number", int(digits) * QUANTIFIERS[unit], self.line))

    def _multiline(self, line: int) -> None:
        """``text:`` up to a line holding only "." (RFC 5228 2.4.2), dot-stuffing undone."""
        text = self.text
        end = text.find("\n", self.at)
        if end < 0:
            raise FilterImportError("A text: block is never ended by a line with '.'.", line)
        rest = text[self.at : end].strip()
        if rest and not rest.startswith("#"):
            raise FilterImportError("Nothing may follow 'text:' on its line.", line)
        self.at = end + 1
        self.line += 1
        lines: list[str] = []
        while True:
            if self.at >= len(text):
                raise FilterImportError("A text: block is never ended by a line with '.'.", line)
            end = text.find("\n", self.at)
            end = len(text) if end < 0 else end
            current = text[self.at : end].rstrip("\r")
            self.at = end + 1
            self.line += 1
            if current == ".":
                break
            lines.append(current[1:] if current.startswith("..") else current)
        self.tokens.append(Token("string", "\n".join(lines) + "\n" if lines else "", line))


# -- the parser -----------------------------------------------------------------------------


class Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0

    def _peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _line(self) -> int:
        token = self._peek()
        if token is not None:
            return token.line
        return self.tokens[-1].line if self.tokens else 1

    def _take(self, kind: str, what: str) -> Token:
        token = self._peek()
        if token is None or token.kind != kind:
            found = "the end of the script" if token is None else _shown(token)
            raise FilterImportError(f"Expected {what}, found {found}.", self._line())
        self.at += 1
        return token

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterImportError("The script nests too deeply.", self._line())

    def commands(self, opened: int | None) -> list[Command]:
        """Commands up to the end of the script, or of the block ``{`` opened at line
        ``opened``."""
        found: list[Command] = []
        while (token := self._peek()) is not None:
            if token.kind == "}":
                if opened is None:
                    raise FilterImportError("A '}' closes no block.", token.line)
                return found
            found.append(self._command())
        if opened is not None:
            raise FilterImportError("The block opened with '{' here is never closed.", opened)
        return found

    def _command(self) -> Command:
        name = self._take("identifier", "a command")
        arguments, tests = self._arguments()
        token = self._peek()
        if token is not None and token.kind == "{":
            self.at += 1
            self._enter()
            block = self.commands(opened=token.line)
            self.depth -= 1
            end = self._take("}", "'}'")
            return Command(str(name.value), arguments, tests, block, name.line, end.line)
        end = self._take(";", f"';' after {name.value}")
        return Command(str(name.value), arguments, tests, None, name.line, end.line)

    def _arguments(self) -> tuple[list[Argument], list[Test]]:
        arguments: list[Argument] = []
        while (token := self._peek()) is not None:
            if token.kind == "string":
                self.at += 1
                arguments.append(Argument("strings", [str(token.value)], token.line))
            elif token.kind == "[":
                arguments.append(self._string_list())
            elif token.kind == "number":
                self.at += 1
                arguments.append(Argument("number", int(token.value), token.line))
            elif token.kind == "tag":
                self.at += 1
                arguments.append(Argument("tag", str(token.value), token.line))
            else:
                break
        tests: list[Test] = []
        token = self._peek()
        if token is not None and token.kind == "identifier":
            tests = [self._test()]
        elif token is not None and token.kind == "(":
            tests = self._test_list()
        return arguments, tests

    def _string_list(self) -> Argument:
        start = self._take("[", "'['")
        values = [str(self._take("string", "a string").value)]
        while (token := self._peek()) is not None and token.kind == ",":
            self.at += 1
            values.append(str(self._take("string", "a string").value))
        self._take("]", "']' closing the list")
        return Argument("strings", values, start.line)

    def _test(self) -> Test:
        self._enter()
        name = self._take("identifier", "a test")
        arguments, tests = self._arguments()
        self.depth -= 1
        return Test(str(name.value), arguments, tests, name.line)

    def _test_list(self) -> list[Test]:
        self._take("(", "'('")
        tests = [self._test()]
        while (token := self._peek()) is not None and token.kind == ",":
            self.at += 1
            tests.append(self._test())
        self._take(")", "')' closing the tests")
        return tests


def _shown(token: Token) -> str:
    if token.kind == "string":
        return "a string"
    if token.kind == "number":
        return "a number"
    return f"'{token.value}'"


def parse(text: str) -> Script:
    """The script's commands, or ``FilterImportError`` at the first syntax error."""
    lexer = Lexer(text)
    tokens = lexer.run()
    return Script(Parser(tokens).commands(opened=None), lexer.comments)
