"""What someone types in a search box, read as mail clients read it.

- free words: all must match, anywhere (subject, people, body, attachment names); the last
  one also matches as the start of a word (``propo`` finds ``proposal``);
- ``"quoted words"``: those words next to each other, in that order;
- ``from:alice`` / ``to:acme.com``: a sender or a recipient (To, Cc, Bcc), by name or
  address, its last word as a prefix (a whole address, ``from:ann@acme.com``, as it is);
  quote a name with spaces (``from:"Ann Lee"``);
- ``source:dropbox``: received at a BCC Dropbox; ``source:crmail``: sent from crmail;
- ``sentiment:negative`` (positive, neutral, negative) and ``intent:complaint`` (request,
  question, complaint, scheduling, unsubscribe, other): what email intelligence found
  (SPEC F15); ``deal:open``: on a deal in an open stage that the viewer may view;
- ``tag:NAME``: tagged so (``mail.tags``; quote a name with spaces, ``tag:"follow up"``);
- ``has:attachment``, ``is:unread``, ``in:FOLDER`` (a folder of your own mailboxes by
  name, or by role: ``in:inbox``, ``in:sent``), ``after:YYYY-MM-DD`` (that day or later)
  and ``before:YYYY-MM-DD`` (before that day).

Anything else is words: ``foo:bar`` is the words ``foo`` and ``bar``. Words are cut and
folded as the index does (``search.words.words``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from crmail.search.words import words

MAX_TERMS = 20

FIELD_ANY = ""
FIELD_SENDER = "sender"
FIELD_RECIPIENTS = "recipients"


class QueryError(ValueError):
    """The query cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class Term:
    """Words that must appear together, in order, in ``field`` (any field when empty);
    ``prefix``: the last word may be the start of a longer one."""

    words: tuple[str, ...]
    field: str = FIELD_ANY
    prefix: bool = False


@dataclass
class Query:
    terms: list[Term] = field(default_factory=list)
    has_attachment: bool | None = None
    unread: bool | None = None
    folder_name: str | None = None
    after: date | None = None
    before: date | None = None
    tags: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    sentiments: list[str] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)
    open_deals: bool = False

    @property
    def words(self) -> set[str]:
        """Every word of the terms (what a snippet highlights)."""
        return {w for t in self.terms for w in t.words}

    @property
    def prefixes(self) -> set[str]:
        return {t.words[-1] for t in self.terms if t.prefix}

    def is_empty(self) -> bool:
        """Nothing to look for: no words and no condition."""
        return self == Query()

    def fts5(self, continuations: dict[str, list[str] | None] | None = None) -> str:
        """The terms as an SQLite FTS5 MATCH expression. ``continuations``: for the last
        word of a prefix term, the whole words of the index it is the start of (None: too
        many to list); such a term becomes those phrases joined by OR, which FTS5 merges
        as it reads them, where a prefix makes it gather every continuation's matches
        before the first one is handed over."""
        parts = []
        for term in self.terms:
            whole = (continuations or {}).get(term.words[-1]) if term.prefix else None
            if whole:
                head = term.words[:-1]
                phrases = ['"' + " ".join((*head, word)) + '"' for word in whole]
                phrase = phrases[0] if len(phrases) == 1 else "(" + " OR ".join(phrases) + ")"
            else:
                phrase = '"' + " ".join(term.words) + '"' + (" *" if term.prefix else "")
            parts.append(f"{term.field} : {phrase}" if term.field else phrase)
        return " AND ".join(parts)

    def tsquery(self, continuations: dict[str, list[str] | None] | None = None) -> str:
        """The terms as a PostgreSQL ``tsquery`` (given to ``::tsquery`` as it is: the
        words hold only letters and digits). ``continuations`` as for ``fts5``: a prefix
        spelt out as the whole words it is the start of, joined by ``|``."""
        weight = {FIELD_ANY: "", FIELD_SENDER: "B", FIELD_RECIPIENTS: "C"}
        parts = []
        for term in self.terms:
            label = weight[term.field]
            lexemes = [f"'{word}'" + (f":{label}" if label else "") for word in term.words]
            whole = (continuations or {}).get(term.words[-1]) if term.prefix else None
            if whole:
                spelt = [f"'{word}'" + (f":{label}" if label else "") for word in whole]
                lexemes[-1] = spelt[0] if len(spelt) == 1 else "(" + " | ".join(spelt) + ")"
            elif term.prefix:
                lexemes[-1] = f"'{term.words[-1]}':*{label}"
            parts.append("(" + " <-> ".join(lexemes) + ")")
        return " & ".join(parts)


_TOKEN = re.compile(r'(?P<op>[A-Za-z]+):(?P<value>"[^"]*"?|\S*)|(?P<quoted>"[^"]*"?)|(?P<word>\S+)')


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text.endswith('"') else text.lstrip('"')


# A whole address: something@domain.tld, the top-level domain two letters or more.
_WHOLE_ADDRESS = re.compile(r"^[^\s@]+@[^\s@]+\.[^\W\d_]{2,}$")


def person(operator: str, value: str) -> Term:
    """``from:``/``to:`` ``value``: a sender's or recipient's name or address, its last word
    a prefix, unless ``value`` is a whole address (``jane@acme.com``): that is looked for
    as it is, without ``acme.community`` (and without making the index gather every
    word starting with ``com`` of every sender). Raises ``QueryError`` naming ``operator``
    when ``value`` holds no word."""
    found = tuple(words(value))
    if not found:
        raise QueryError(f"{operator}: takes a name or an address, or a part of one.")
    field = FIELD_SENDER if operator == "from" else FIELD_RECIPIENTS
    return Term(found, field, prefix=not _WHOLE_ADDRESS.match(value.strip()))


# What ``source:`` takes: the sources of mail its user sent (``mailboxes.models.Source``).
SOURCES = {"dropbox": "dropbox", "bcc": "dropbox", "crmail": "crmail"}


def source(value: str) -> str:
    """``source:`` ``value`` as a source; raises ``QueryError`` for one crmail does not know."""
    found = SOURCES.get(value.strip().lower())
    if found is None:
        raise QueryError(f"source: takes dropbox or crmail, not {value!r}.")
    return found


# What ``sentiment:`` and ``intent:`` take (``intelligence.models``' choices).
SENTIMENTS = ("positive", "neutral", "negative")
INTENTS = ("request", "question", "complaint", "scheduling", "unsubscribe", "other")
INTENT_WORDS = {"query": "question", "opt-out": "unsubscribe", "optout": "unsubscribe"}


def _one_of(operator: str, value: str, allowed: tuple[str, ...]) -> str:
    found = value.strip().lower()
    found = INTENT_WORDS.get(found, found) if operator == "intent" else found
    if found not in allowed:
        raise QueryError(f"{operator}: takes {', '.join(allowed)}, not {value!r}.")
    return found


def _day(operator: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{operator}: takes a day written YYYY-MM-DD, not {value!r}.") from None


def parse(text: str) -> Query:
    """Read ``text``; raises ``QueryError`` naming the operator whose value is wrong."""
    query = Query()
    free: list[tuple[str, ...]] = []
    for match in _TOKEN.finditer(text):
        op, value = match.group("op"), match.group("value")
        if op is not None:
            name = op.lower()
            plain = _unquote(value or "")
            if name in ("from", "to"):
                query.terms.append(person(name, plain))
                continue
            if name == "has":
                if plain.lower() not in ("attachment", "attachments"):
                    raise QueryError(f"has: takes attachment, not {plain!r}.")
                query.has_attachment = True
                continue
            if name == "is":
                if plain.lower() == "unread":
                    query.unread = True
                elif plain.lower() == "read":
                    query.unread = False
                else:
                    raise QueryError(f"is: takes unread or read, not {plain!r}.")
                continue
            if name == "in":
                if not plain.strip():
                    raise QueryError("in: takes a folder's name.")
                query.folder_name = plain.strip()
                continue
            if name == "tag":
                if not plain.strip():
                    raise QueryError("tag: takes the name of a tag.")
                query.tags.append(plain.strip())
                continue
            if name == "source":
                query.sources.append(source(plain))
                continue
            if name == "sentiment":
                query.sentiments.append(_one_of(name, plain, SENTIMENTS))
                continue
            if name == "intent":
                query.intents.append(_one_of(name, plain, INTENTS))
                continue
            if name == "deal":
                if plain.strip().lower() != "open":
                    raise QueryError(f"deal: takes open, not {plain!r}.")
                query.open_deals = True
                continue
            if name == "after":
                query.after = _day("after", plain)
                continue
            if name == "before":
                query.before = _day("before", plain)
                continue
            # Not an operator: the words on both sides of the colon.
            found = tuple(words(match.group(0)))
        elif match.group("quoted") is not None:
            found = tuple(words(_unquote(match.group("quoted"))))
            if found:
                query.terms.append(Term(found))
            continue
        else:
            found = tuple(words(match.group("word")))
        if found:
            free.append(found)
    for i, found in enumerate(free):
        query.terms.append(Term(found, prefix=i == len(free) - 1))
    if len(query.terms) > MAX_TERMS:
        raise QueryError(f"Search for at most {MAX_TERMS} words or phrases at a time.")
    if query.after and query.before and query.after >= query.before:
        raise QueryError("after: must be a day before before:.")
    return query
