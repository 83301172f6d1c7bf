"""Words as crmail's search index cuts them (see ``crmail.search.index``): compatibility
form, accents dropped, case-folded, runs of letters and digits. No database here: the
index, the query parser and the benchmarks' floor share it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from crmail.search.tsvector import literal

# Longer "words" are encoded data, not something a person types.
WORD_LIMIT = 100
_ACCENTS = re.compile("[\u0300-\u036f]+")
_WORD = re.compile(r"[^\W_]+")
# ASCII text, most mail, is cut by str.translate: four times faster than the regular
# expression, and the same words (ASCII letters and digits, lower case).
_ASCII_SEPARATORS = str.maketrans(
    {c: " " for c in range(128) if not (chr(c).isascii() and chr(c).isalnum())}
)


def normalise(text: str) -> str:
    """``text`` as the index compares it: compatibility form, accents dropped, case-folded."""
    folded = _ACCENTS.sub("", unicodedata.normalize("NFKD", text))
    return unicodedata.normalize("NFC", folded).casefold()


def words(text: str) -> list[str]:
    """The words of ``text`` as the index holds them (see ``crmail.search.index``)."""
    if text.isascii():
        found = text.lower().translate(_ASCII_SEPARATORS).split()
    else:
        found = _WORD.findall(normalise(text))
    # Looking for a long word first (in C) spares the copy for nearly every text.
    if found and max(map(len, found)) > WORD_LIMIT:
        return [w for w in found if len(w) <= WORD_LIMIT]
    return found


def joined(parts: Iterable[str]) -> str:
    """The words of ``parts``, in order, separated by spaces: what one field of a
    document holds. Cut in one go (a space separates words in every form ``words``
    reads, and no normalisation joins characters across it), the same words as
    ``words`` gives for each part."""
    return " ".join(words(" ".join(parts)))


def joined_each(texts: list[str], vectors: bool = False) -> list[tuple[str, str]]:
    """``joined`` of each text alone and, with ``vectors`` (PostgreSQL), its words as a
    ``tsvector`` of weight D (``tsvector.literal``; else ""): what a worker process cuts
    for the index (the bodies of a batch of messages)."""
    cut = []
    for text in texts:
        found = joined([text])
        cut.append((found, literal(found) if vectors else ""))
    return cut
