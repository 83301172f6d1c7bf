"""Sieve scripts (RFC 5228) become crmail rules; what cannot be said is listed, line by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmail.workflows.imports import FilterImportError, read_file, read_text
from crmail.workflows.spec import RuleSpec

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

DATA = Path(__file__).parent / "data" / "filters"


def script(name: str):
    return read_file((DATA / name).read_bytes())


def rules_of(result) -> dict[str, dict]:
    return {r.name: r.dump() for r in result.rules}


def reasons_of(result) -> dict[str, list[str]]:
    return {s.name: [p.reason for p in s.problems] for s in result.skipped}


def kinds(rule: dict) -> list[str]:
    return [a["kind"] for a in rule["actions"]]


def test_rfc_5228s_example_is_listed_with_why_its_branches_do_not_fit():
    result = script("rfc5228-section9.sieve")
    assert result.source == "sieve"
    assert result.rules == []
    reasons = reasons_of(result)
    assert reasons["Reject any large messages (note that the four leading dots get"] == [
        "crmail does not refuse mail back to its sender; Sieve's reject cannot be imported."
    ]
    chain = reasons["Handle messages from known mailing lists"]
    # The elsif after "keep" needs "not (from domain is example.com or to ends with
    # @example.com)", and crmail has no "not ends with".
    assert chain[0].startswith("This elsif branch holds when none of the tests before it does")
    assert "'the to address ends with \"@example.com\"'" in chain[0]
    assert chain[1].startswith("This else branch holds when none of the tests before it does")
    lines = (DATA / "rfc5228-section9.sieve").read_text().splitlines()
    for problem in result.problems:
        assert problem.text == lines[problem.line - 1].strip()


def test_pigeonhole_style_script():
    result = script("pigeonhole.sieve")
    rules = rules_of(result)
    spam = rules["Spam: the header a spam filter adds before delivery."]
    assert spam["conditions"] == [
        {"field": "header", "name": "X-Spam-Flag", "op": "contains", "values": ["YES"]}
    ]
    assert spam["actions"] == [
        {"kind": "move_to_folder", "params": {"folder": "Spam"}},
        {"kind": "stop", "params": {}},
    ]
    # An elsif after a branch that stops needs no "not": stop keeps the later rules off.
    lists = rules["Mailing lists by their List-Id. (2)"]
    assert lists["conditions"] == [
        {"field": "header", "name": "List-Id", "op": "matches", "values": ["*"]}
    ]
    assert kinds(lists) == ["mark_read", "move_to_folder", "stop"]
    boss = rules["The boss writes: flag it, and file it under Work."]
    assert boss["conditions"] == [
        {"field": "from", "op": "is", "values": ["boss@example.com", "ceo@example.com"]}
    ]
    assert kinds(boss) == ["flag", "move_to_folder"]
    invoices = rules["Invoices as attachments from the accounting system."]
    assert invoices["conditions"] == [
        {"field": "from_domain", "op": "is", "values": ["billing.example.com"]},
        {"field": "subject", "op": "starts_with", "values": ["Invoice "]},
        {"field": "body", "op": "not_contains", "values": ["draft"]},
    ]
    assert invoices["actions"][0] == {"kind": "tag", "params": {"tags": ["$Invoice"]}}
    reasons = reasons_of(result)
    assert (
        "crmail does not see the envelope"
        in reasons["Mail to user+lists@ (plus addressing) goes to its own folder."][0]
    )
    assert reasons["Away message."] == [
        "crmail's rules do not send automatic replies; Sieve's vacation cannot be imported."
    ]


def test_roundcube_rules_keep_their_names():
    result = script("roundcube.sieve")
    rules = rules_of(result)
    assert list(rules) == ["Spam", "Newsletters", "Customers"]
    assert rules["Newsletters"]["match"] == "any"
    assert rules["Newsletters"]["conditions"] == [
        {"field": "header", "name": "List-Unsubscribe", "op": "contains", "values": ["@"]},
        {"field": "header", "name": "From", "op": "contains", "values": ["newsletter@"]},
    ]
    assert rules["Customers"]["conditions"][1] == {
        "field": "subject",
        "op": "not_contains",
        "values": ["out of office"],
    }
    reasons = reasons_of(result)
    assert "they do not copy it" in reasons["Copy invoices"][0]
    assert reasons["Old project"] == ["It can never match, so there is nothing to import."]
    assert reasons["Forward support"] == [
        "crmail does not forward mail; Sieve's redirect cannot be imported."
    ]


def test_fastmail_generated_script():
    result = script("fastmail.sieve")
    rules = rules_of(result)
    receipts = rules["Custom filing code"]
    assert receipts["conditions"] == [
        {"field": "from", "op": "is", "values": ["orders@shop.example.com"]},
        {"field": "subject", "op": "contains", "values": ["receipt", "your order"]},
    ]
    assert kinds(receipts) == ["mark_read", "move_to_folder", "stop"]
    lists = rules["7. Sieve generated for organise rules"]
    assert lists["match"] == "any"
    assert [c["name"] for c in lists["conditions"]] == ["List-Id", "List-Post", "List-Unsubscribe"]
    reasons = reasons_of(result)
    spam = reasons["3. Sieve generated for spam protection"]
    assert "crmail's rules cannot compare with :value (relational tests)." in spam
    assert any("names a folder by its role" in r for r in spam)
    assert any("X-Spam-Known-Sender starts with" in r for r in spam)
    assert all("notify" in r for r in reasons["6. Sieve generated for calendar preferences"])


def test_proton_filters_and_its_spam_guard():
    result = script("proton.sieve")
    rules = rules_of(result)
    security = rules["Sieve rule at line 14: to Security"]
    assert security["match"] == "any"
    assert security["conditions"] == [
        {"field": "subject", "op": "contains", "values": ["verify your", "sign-in attempt"]},
        {
            "field": "from",
            "op": "contains",
            "values": ["no-reply@accounts.google.com", "security@github.com"],
        },
    ]
    assert kinds(rules["Sieve rule at line 23: to Reading"]) == ["mark_read", "move_to_folder"]
    family = rules["Starred from the family"]
    assert family["conditions"] == [
        {"field": "from", "op": "ends_with", "values": ["@family.example"]}
    ]
    guard = reasons_of(result)["Generated: Do not run this script on spam messages"]
    assert "crmail's rules cannot read a spam score." in guard


def test_every_rule_of_every_example_reads_back_as_stored():
    for path in sorted(DATA.iterdir()):
        if path.suffix in (".sieve", ".xml"):
            for rule in read_file(path.read_bytes()).rules:
                assert RuleSpec.load(rule.dump()) == rule.spec
                assert rule.lines and rule.name


def one(text: str) -> dict:
    result = read_text(text)
    assert not result.skipped, result.problems
    [rule] = result.rules
    return rule.dump()


def listed(text: str) -> list[str]:
    result = read_text(text)
    assert result.rules == []
    return [p.reason for p in result.problems]


def test_elsif_and_else_become_rules_with_the_earlier_tests_turned_around():
    result = read_text(
        'if header :contains "from" "boss" { fileinto "Boss"; }\n'
        'elsif header :contains "subject" "urgent" { addflag "\\\\Flagged"; }\n'
        'else { fileinto "Other"; }\n'
    )
    first, second, third = (r.dump() for r in result.rules)
    assert first["conditions"] == [
        {"field": "header", "name": "From", "op": "contains", "values": ["boss"]}
    ]
    assert second["conditions"] == [
        {"field": "header", "name": "From", "op": "not_contains", "values": ["boss"]},
        {"field": "subject", "op": "contains", "values": ["urgent"]},
    ]
    assert third["conditions"] == [
        {"field": "header", "name": "From", "op": "not_contains", "values": ["boss"]},
        {"field": "subject", "op": "not_contains", "values": ["urgent"]},
    ]
    assert [r.name for r in result.rules] == [
        "Sieve rule at line 1: to Boss (1)",
        "Sieve rule at line 1: to Boss (2)",
        "Sieve rule at line 1: to Boss (3)",
    ]
    assert [[line.number for line in r.lines] for r in result.rules] == [[1], [1, 2], [1, 2, 3]]


def test_nested_ifs_and_actions_after_them_keep_their_order():
    result = read_text(
        "# Work\n"
        'if address :domain :is "from" "acme.example" {\n'
        '  if size :over 5M { fileinto "Work.Large"; stop; }\n'
        '  fileinto "Work";\n'
        "}\n"
    )
    large, work = (r.dump() for r in result.rules)
    assert large["conditions"] == [
        {"field": "from_domain", "op": "is", "values": ["acme.example"]},
        {"field": "size", "op": "gt", "values": [5 * 1024 * 1024]},
    ]
    assert kinds(large) == ["move_to_folder", "stop"]
    assert work["conditions"] == [{"field": "from_domain", "op": "is", "values": ["acme.example"]}]


@pytest.mark.parametrize(
    ("test", "conditions"),
    [
        ("size :under 10K", [{"field": "size", "op": "lt", "values": [10240]}]),
        ("not size :over 1M", [{"field": "size", "op": "lt", "values": [1048577]}]),
        (
            'address :localpart :is "to" "sales"',
            [{"field": "to", "op": "starts_with", "values": ["sales@"]}],
        ),
        (
            'address :domain :matches "to" "*.acme.example"',
            [{"field": "to", "op": "matches", "values": ["*@*.acme.example"]}],
        ),
        (
            'header :matches "subject" "*[ticket #*]*"',
            [{"field": "subject", "op": "matches", "values": ["*[ticket #*]*"]}],
        ),
        (
            'header :matches "subject" "*invoice*"',
            [{"field": "subject", "op": "contains", "values": ["invoice"]}],
        ),
        (
            'not anyof (header :is "X-Priority" "5", header :is "X-Priority" "4")',
            [{"field": "header", "name": "X-Priority", "op": "is_not", "values": ["5", "4"]}],
        ),
        (
            'header :comparator "i;ascii-casemap" :contains "Subject" "x"',
            [{"field": "subject", "op": "contains", "values": ["x"]}],
        ),
        (
            'body :text :contains "unsubscribe"',
            [{"field": "body", "op": "contains", "values": ["unsubscribe"]}],
        ),
        ("true", []),
    ],
)
def test_tests_become_conditions(test, conditions):
    rule = one(f'if {test} {{ addflag "\\\\Seen"; }}')
    assert rule["conditions"] == conditions


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('if header :regex "subject" "^a+$" { stop; }', "not regular expressions"),
        ('if header :comparator "i;octet" :is "subject" "A" { stop; }', "with case"),
        ('if not exists "List-Id" { stop; }', "cannot turn 'exists \"List-Id\"' around"),
        ('if header :contains "subject" "" { stop; }', "empty value"),
        ('if header :matches "subject" "\\\\*sale" { stop; }', "meant as itself"),
        ('if date :value "ge" "date" "2024-01-01" { stop; }', "cannot test dates"),
        ('if address :localpart :contains "from" "x" { stop; }', "only the localpart"),
        ('if address :is "reply-to" "a@x.example" { stop; }', "part by part"),
        ('if mystery "x" { stop; }', "does not know the Sieve test 'mystery'"),
        ('if true { fileinto "A"; fileinto "B"; }', "more than one folder"),
        ('if true { removeflag "\\\\Seen"; }', "cannot take them away"),
        ('if true { addflag "\\\\Deleted"; }', "cannot set the flag \\Deleted"),
        ('if true { addflag "flags" "\\\\Seen"; }', "crmail has no variables"),
        ('if true { stop; fileinto "x"; }', "comes after stop"),
        ("if true { frobnicate; }", "does not know the Sieve command 'frobnicate'"),
        ("if true { keep; }", "does nothing crmail's rules would do"),
        ("stop;", "nothing to import"),
    ],
)
def test_what_crmail_cannot_express_is_listed(text, words):
    assert any(words in reason for reason in listed(text)), listed(text)


def test_a_filter_is_imported_whole_or_not_at_all():
    result = read_text(
        'if header :contains "subject" "report" {\n'
        '  fileinto "Reports";\n'
        '  redirect "archive@example.net";\n'
        "}\n"
        'if header :contains "subject" "other" { fileinto "Other"; }\n'
    )
    assert [r.name for r in result.rules] == ["Sieve rule at line 5: to Other"]
    [skipped] = result.skipped
    assert [(p.line, p.text) for p in skipped.problems] == [(3, 'redirect "archive@example.net";')]
    assert [line.number for line in skipped.lines] == [1, 2, 3]


def test_discard_goes_to_the_trash_and_says_so():
    result = read_text('if header :contains "from" "spam" { discard; stop; }')
    [rule] = result.rules
    assert kinds(rule.dump()) == ["trash", "stop"]
    assert "crmail moves it to the Trash" in rule.notes[0]


def test_strings_comments_and_text_blocks():
    result = read_text(
        "/* A multi-line\n   comment */\n"
        'require ["fileinto",\n  "imap4flags"];\n'
        '# rule:[Quotes "and" slashes]\n'
        'if header :contains "subject" "say \\"hi\\" \\\\ bye" {  # trailing comment\n'
        '  fileinto :flags ["\\\\Seen", "Work"] "INBOX/Quotes";\n'
        "}\n"
        "if true { vacation text:\n"
        "..dot-stuffed\n"
        ".\n"
        "; }\n"
    )
    [rule] = result.rules
    assert rule.name == 'Quotes "and" slashes'
    dumped = rule.dump()
    assert dumped["conditions"][0]["values"] == ['say "hi" \\ bye']
    assert dumped["actions"] == [
        {"kind": "tag", "params": {"tags": ["Work"]}},
        {"kind": "mark_read", "params": {}},
        {"kind": "move_to_folder", "params": {"folder": "INBOX/Quotes"}},
    ]
    assert [p.line for p in result.problems] == [9]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('if true { fileinto "x" }', 1, "Expected ';'"),
        ("\nif true {\n  stop;\n", 2, "opened with .{. here is never closed"),
        ('\n\nfileinto "unterminated;', 3, "quoted string is never closed"),
        ("/* no end", 1, r"never closed with \*/"),
        ('if header :is "a" "b" {\n stop;\n}\n}', 4, "closes no block"),
        ("elsif true { stop; }", 1, "must follow an if"),
        ("if true { vacation text:\nno end\n", 1, "never ended"),
        ("if size :over 99999999999999999999 { stop; }", 1, "too large"),
        ("fileinto @;", 1, "Unexpected character"),
        ("if " + "not " * 60 + "true { stop; }", 1, "nests too deeply"),
    ],
)
def test_syntax_errors_name_their_line(text, line, words):
    with pytest.raises(FilterImportError, match=words) as refused:
        read_text(text)
    assert refused.value.line == line
    assert str(refused.value).startswith(f"Line {line}: ")


def test_a_script_with_only_requires_and_comments_has_no_rules():
    with pytest.raises(FilterImportError, match="no rules"):
        read_text('require "fileinto";\n# nothing yet\n')
