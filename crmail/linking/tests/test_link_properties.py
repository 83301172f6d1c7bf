"""Property test: the links on records agree with a plain oracle written from SPEC F4.

Generated: a pool of addresses; messages with pool addresses in From, To, Cc, Bcc and
Reply-To, in random letter case; Leads and Contacts with primary and secondary addresses,
some created before the mail arrives and some after; then address changes, contacts moving
between accounts, and deletions, all through ``crm.actions`` with their after-commit
events. Past mail goes either inline or through the background job in tiny batches.

The oracle: a message is on a Lead or Contact when one of the record's addresses *now*
is in the message's From, To or Cc (compared in lower case); it is on an Account when it
is on one of the account's contacts now. Every record's list must equal it, and no link
may point at a record that is gone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmail.crm import actions
from crmail.linking import links, queries
from crmail.linking.models import Link
from crmail.linking.tests.mail import ingest, raw_mail
from tests import factories as f

pytestmark = pytest.mark.django_db

POOL = [f"p{i}@corp{i % 2}.test" for i in range(6)]
EXAMPLES = int(os.environ.get("CRMAIL_PROPERTY_EXAMPLES", "60"))


@dataclass
class MailSpec:
    sender: int | None  # index into POOL, None: an address no record has
    to: list[int]
    cc: list[int]
    bcc: list[int]
    reply_to: int | None
    cases: list[bool]  # per header slot: upper-case the address


@dataclass
class PersonSpec:
    module: str
    addresses: list[int]  # the first is the primary
    account: int | None
    created_late: bool  # after the first half of the mail
    new_addresses: list[int] | None  # changed at the end
    new_account: int | None
    deleted: bool


@dataclass
class Case:
    mail: list[MailSpec]
    people: list[PersonSpec]
    accounts: int
    inline: bool


addresses = st.integers(0, len(POOL) - 1)
address_lists = st.lists(addresses, max_size=3, unique=True)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n_accounts = draw(st.integers(0, 2))
    accounts = st.none() | st.integers(0, n_accounts - 1) if n_accounts else st.none()
    mail = [
        MailSpec(
            sender=draw(st.none() | addresses),
            to=draw(address_lists),
            cc=draw(address_lists),
            bcc=draw(address_lists),
            reply_to=draw(st.none() | addresses),
            cases=draw(st.lists(st.booleans(), min_size=12, max_size=12)),
        )
        for _ in range(draw(st.integers(0, 6)))
    ]
    people = []
    for _ in range(draw(st.integers(1, 4))):
        module = draw(st.sampled_from(["contacts", "leads"]))
        people.append(
            PersonSpec(
                module=module,
                addresses=draw(address_lists),
                account=draw(accounts) if module == "contacts" else None,
                created_late=draw(st.booleans()),
                new_addresses=draw(st.none() | address_lists),
                new_account=draw(accounts) if module == "contacts" else None,
                deleted=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    return Case(mail=mail, people=people, accounts=n_accounts, inline=draw(st.booleans()))


def shown(index: int, upper: bool) -> str:
    return POOL[index].upper() if upper else POOL[index]


def raw(spec: MailSpec) -> bytes:
    slots = iter(spec.cases)
    sender = shown(spec.sender, next(slots)) if spec.sender is not None else "me@crmail.test"
    return raw_mail(
        sender,
        [shown(i, next(slots)) for i in spec.to] or ["me@crmail.test"],
        cc=[shown(i, next(slots)) for i in spec.cc],
        bcc=[shown(i, next(slots)) for i in spec.bcc],
        reply_to=POOL[spec.reply_to] if spec.reply_to is not None else "",
    )


def person_data(module: str, chosen: list[int], account: int | None) -> dict:
    data = {
        "last_name": "Person",
        "email": POOL[chosen[0]].title() if chosen else "",
        "secondary_emails": ", ".join(POOL[i] for i in chosen[1:]),
    }
    if module == "contacts":
        data["account"] = account if account is not None else ""
    return data


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_links_equal_the_oracle(org, monkeypatch, django_capture_on_commit_callbacks, case):
    monkeypatch.setattr(links, "INLINE_LIMIT", 10_000 if case.inline else 0)
    monkeypatch.setattr(links, "PAST_BATCH", 2)
    user = org.admin

    def act(fn, *args):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args)

    with transaction.atomic():
        account_ids = [f.account(user, f"Account {i}").pk for i in range(case.accounts)]
        records: list = [None] * len(case.people)

        def account_id(index: int | None) -> int | None:
            return None if index is None else account_ids[index]

        def create(i: int) -> None:
            spec = case.people[i]
            data = person_data(spec.module, spec.addresses, account_id(spec.account))
            records[i] = act(actions.create_record, user, spec.module, data)

        half = len(case.mail) // 2
        for i, spec in enumerate(case.people):
            if not spec.created_late:
                create(i)
        messages = ingest(*[raw(m) for m in case.mail[:half]])
        for i, spec in enumerate(case.people):
            if spec.created_late:
                create(i)
        messages += ingest(*[raw(m) for m in case.mail[half:]])
        final_addresses: dict[int, list[int]] = {}
        for i, spec in enumerate(case.people):
            chosen = spec.addresses if spec.new_addresses is None else spec.new_addresses
            if chosen != spec.addresses or spec.new_account != spec.account:
                data = person_data(spec.module, chosen, account_id(spec.new_account))
                records[i] = act(actions.update_record, user, records[i], data)
            final_addresses[i] = chosen
            if spec.deleted:
                act(actions.delete_record, user, records[i])

        # The oracle, from the definitions.
        headers = [
            {POOL[a] for a in ([m.sender] if m.sender is not None else []) + m.to + m.cc}
            for m in case.mail
        ]
        expected: dict[tuple[str, int], set[int]] = {}
        live = [(i, records[i].pk) for i, spec in enumerate(case.people) if not spec.deleted]
        for i, pk in live:
            spec = case.people[i]
            mine = {POOL[a] for a in final_addresses[i]}
            expected[(spec.module, pk)] = {
                messages[n].pk for n, seen in enumerate(headers) if mine & seen
            }
        for pk in account_ids:
            expected[("accounts", pk)] = set()
        for i, pk in live:
            spec = case.people[i]
            if spec.module != "contacts":
                continue
            account = records[i].account_id
            if account is not None:
                expected[("accounts", account)] |= expected[("contacts", pk)]

        for (module, pk), want in expected.items():
            got = set(queries.messages_for_record(module, pk).values_list("pk", flat=True))
            assert got == want, (module, pk)
        stored = set(Link.objects.values_list("module", "record_id").distinct())
        assert stored <= {key for key, want in expected.items() if want}
        transaction.set_rollback(True)
