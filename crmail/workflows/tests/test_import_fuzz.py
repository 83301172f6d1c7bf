"""Whatever a file holds, the importers answer with rules that read back as stored and a list of
problems, or with their own error in words: never another exception."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmail.workflows.imports import FilterImportError, ImportResult, read_file, read_text
from crmail.workflows.spec import RuleSpec

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(result: ImportResult) -> None:
    for rule in result.rules:
        assert RuleSpec.load(rule.dump()) == rule.spec
        assert 0 < len(rule.name) <= 200
        assert rule.lines
    for skipped in result.skipped:
        assert skipped.problems
        assert 0 < len(skipped.name) <= 200
    for problem in result.problems:
        assert problem.line >= 1 and problem.reason
        assert len(problem.text) <= 300


def survives(text: str) -> None:
    try:
        result = read_text(text)
    except FilterImportError as error:
        assert str(error)
        return
    check(result)


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes(data):
    try:
        result = read_file(data)
    except FilterImportError:
        return
    check(result)


@FUZZ
@given(st.text(max_size=400))
def test_any_text(text):
    survives(text)


# -- Sieve-shaped text ----------------------------------------------------------------------

WORDS = st.sampled_from(
    [
        "if", "elsif", "else", "require", "fileinto", "keep", "discard", "stop", "redirect",
        "addflag", "setflag", "removeflag", "vacation", "reject", "header", "address",
        "envelope", "exists", "size", "allof", "anyof", "not", "true", "false", "body",
        "date", "set", "notify",
    ]
)  # fmt: skip
TAGS = st.sampled_from(
    [
        ":is", ":contains", ":matches", ":regex", ":over", ":under", ":all", ":localpart",
        ":domain", ":comparator", ":copy", ":flags", ":create", ":text", ":value", ":raw",
    ]
)  # fmt: skip
STRINGS = st.one_of(
    st.sampled_from(
        ["subject", "from", "to", "List-Id", "\\\\Seen", "\\\\Flagged", "$Work", "*x*", "a@b.c",
         "i;octet", "i;ascii-casemap", "", "INBOX", "Folder/Sub", "*", "x?y", "\\\\*"]
    ),
    st.text(max_size=8),
).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')  # fmt: skip
PIECES = st.one_of(
    WORDS,
    TAGS,
    STRINGS,
    st.sampled_from(["[", "]", "(", ")", "{", "}", ",", ";", "1", "10K", "5M", "0"]),
    st.sampled_from(["# a comment\n", "/* c */", "\n", "text:\nline\n..dots\n.\n"]),
)


@FUZZ
@given(st.lists(PIECES, max_size=60))
def test_sieve_shaped_token_soup(pieces):
    survives(" ".join(pieces))


def _string_list() -> st.SearchStrategy[str]:
    return st.lists(STRINGS, min_size=1, max_size=3).map(
        lambda items: items[0] if len(items) == 1 else "[" + ", ".join(items) + "]"
    )


SIEVE_TESTS = st.recursive(
    st.one_of(
        st.builds(
            lambda kind, tags, names, keys: f"{kind} {' '.join(tags)} {names} {keys}",
            st.sampled_from(["header", "address"]),
            st.lists(TAGS, max_size=2),
            _string_list(),
            _string_list(),
        ),
        st.builds(lambda n: f"exists {n}", _string_list()),
        st.builds(
            lambda t, n: f"size {t} {n}",
            st.sampled_from([":over", ":under"]),
            st.sampled_from(["0", "1", "100K", "2M"]),
        ),
        st.builds(lambda k: f"body :contains {k}", _string_list()),
        st.sampled_from(["true", "false"]),
    ),
    lambda inner: st.one_of(
        st.builds(lambda t: f"not {t}", inner),
        st.builds(
            lambda kind, tests: f"{kind}({', '.join(tests)})",
            st.sampled_from(["allof", "anyof"]),
            st.lists(inner, min_size=1, max_size=3),
        ),
    ),
    max_leaves=6,
)
SIEVE_ACTIONS = st.one_of(
    st.builds(lambda f: f"fileinto {f};", STRINGS),
    st.builds(lambda f: f'fileinto :flags {f} "Box";', _string_list()),
    st.builds(lambda f: f"addflag {f};", _string_list()),
    st.sampled_from(["keep;", "discard;", "stop;", 'redirect "a@b.c";', 'fileinto :copy "X";']),
)


def _block(actions: list[str], nested: list[str]) -> str:
    return "{ " + " ".join(actions + nested) + " }"


SIEVE_COMMANDS = st.recursive(
    SIEVE_ACTIONS,
    lambda inner: st.builds(
        lambda test, body, elsifs, other: (
            f"if {test} {_block(body, [])}"
            + "".join(f" elsif {t} {_block(b, [])}" for t, b in elsifs)
            + (f" else {_block(other, [])}" if other else "")
        ),
        SIEVE_TESTS,
        st.lists(inner, max_size=3),
        st.lists(st.tuples(SIEVE_TESTS, st.lists(inner, max_size=2)), max_size=2),
        st.lists(inner, max_size=2),
    ),
    max_leaves=8,
)


@FUZZ
@given(st.lists(SIEVE_COMMANDS, min_size=1, max_size=5), st.booleans())
def test_grammatical_sieve_scripts(commands, comments):
    glue = "\n# rule:[x]\n" if comments else "\n"
    survives('require ["fileinto", "imap4flags"];\n' + glue.join(commands))


# -- Gmail exports ----------------------------------------------------------------------------

QUERY_PIECES = st.one_of(
    st.sampled_from(
        [
            "from:", "to:", "subject:", "list:", "cc:", "has:attachment", "larger:5M",
            "smaller:10K", "size:100", "label:x", "is:unread", "filename:pdf", "OR", "AND",
            "|", "(", ")", "{", "}", "-", "+", '"', "me", "a@b.example", "AROUND",
            "older_than:2d", "category:social", "deliveredto:x@y.z", "*@", "<a.b>",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=6),
)  # fmt: skip
PROPERTY_NAMES = st.sampled_from(
    [
        "from", "to", "subject", "hasTheWord", "doesNotHaveTheWord", "hasAttachment", "size",
        "sizeOperator", "sizeUnit", "label", "shouldArchive", "shouldMarkAsRead", "shouldStar",
        "shouldTrash", "shouldNeverSpam", "forwardTo", "smartLabelToApply", "excludeChats",
        "somethingNew",
    ]
)  # fmt: skip
PROPERTY_VALUES = st.one_of(
    st.lists(QUERY_PIECES, max_size=8).map(" ".join),
    st.sampled_from(["true", "false", "s_sl", "s_ss", "s_smb", "s_skb", "10", "Work", "^x"]),
)


def _entry(props: list[tuple[str, str]]) -> str:
    lines = [f"<apps:property name={quoteattr(n)} value={quoteattr(v)}/>" for n, v in props]
    return "<entry>\n<category term='filter'></category>\n" + "\n".join(lines) + "\n</entry>"


@FUZZ
@given(
    st.lists(
        st.lists(st.tuples(PROPERTY_NAMES, PROPERTY_VALUES), max_size=6), min_size=1, max_size=4
    )
)
def test_gmail_exports(entries):
    text = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<feed xmlns='http://www.w3.org/2005/Atom' xmlns:apps='http://schemas.google.com/apps/2006'>\n"
        + "\n".join(_entry(e) for e in entries)
        + "\n</feed>\n"
    )
    survives(text)
