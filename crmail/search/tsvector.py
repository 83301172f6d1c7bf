"""PostgreSQL's ``tsvector`` written by crmail from the words it cut (decision 076).

PostgreSQL's own ``to_tsvector`` cuts text again with its parser, which does not always
agree with ``crmail.search.words``: it reads ``71e31f`` as the number ``71e31`` and the
word ``f``, lower-cases Cherokee where Python's case folding upper-cases it, and splits a
word at digits such as ``৴``. The query asks for crmail's words, so such a word was never
found. Here each word of a field is a lexeme at its place in the field, as
``to_tsvector('simple', …)`` places the words of text that it cuts as crmail does; the
text form is read by PostgreSQL's ``tsvector`` input, which costs the server less than
``to_tsvector`` (its parser runs over every character).
"""

from __future__ import annotations

# ``to_tsvector`` keeps at most 255 positions a lexeme, its first. (Positions past 16,383
# PostgreSQL reads as 16,383, in ``to_tsvector`` and in the ``tsvector`` input alike.)
MOST_POSITIONS = 255
WEIGHTS = frozenset({"A", "B", "C", "D"})


def literal(words: str, weight: str = "D") -> str:
    """``words`` (separated by spaces, as ``words.joined`` gives them) as a ``tsvector``
    in its text form: each word a lexeme at its positions 1, 2, … with ``weight``.

    A word holds only letters and digits (never a quote, a backslash or a space), so it
    is written between quotes as it is."""
    if weight not in WEIGHTS:
        raise ValueError(f"weight must be one of A, B, C, D, not {weight!r}")
    found: dict[str, list[int]] = {}
    for at, word in enumerate(words.split(), 1):
        places = found.get(word)
        if places is None:
            found[word] = [at]
        elif len(places) < MOST_POSITIONS:
            places.append(at)
    mark = "" if weight == "D" else weight  # D is the default: written without
    parts = []
    for word, places in found.items():
        parts.append(f"'{word}':" + ",".join([f"{at}{mark}" for at in places]))
    return " ".join(parts)
