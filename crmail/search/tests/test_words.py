"""The index's words: a field's parts cut in one go are the words of each part."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmail.search.words import WORD_LIMIT, joined, words

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

# Letters with and without accents, combining marks (alone too), compatibility forms,
# CJK, Hangul jamo that compose, digits, separators and a word too long to keep.
PIECES = st.sampled_from(
    [
        *("Café", "cafe\u0301", "\u0301x", "Straße", "ﬁle", "日本語", "\u1100", "\u1161"),
        *("ΟΔΟΣ", "a_b", "x" * (WORD_LIMIT + 1), "42", " ", "-", "\u3099", "ǅ", "İ"),
        "ada@example.com",
    ]
)
TEXTS = st.one_of(st.text(max_size=30), st.lists(PIECES, max_size=6).map("".join))


@given(parts=st.lists(TEXTS, max_size=5))
def test_a_field_cut_in_one_go_holds_the_words_of_each_part(parts: list[str]) -> None:
    assert joined(parts) == " ".join(itertools.chain.from_iterable(map(words, parts)))


def test_a_field_of_names_and_addresses():
    assert joined(["Jürgen Müller", "juergen@example.de", "", "Ann"]) == (
        "jurgen muller juergen example de ann"
    )
