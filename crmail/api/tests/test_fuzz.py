"""Every operation of the OpenAPI document, fuzzed against a live server (schemathesis).

Each operation gets requests valid by the document (positive) on rows that exist, with an
administrator's token and with an ordinary user's, and requests that are not (negative).
No answer may be a 500, and every answer must match the document (status code and body
schema). The run is derandomized (the same cases on every
run) and bounded: ``CRMAIL_FUZZ_EXAMPLES`` cases per operation, mode and user (default 6);
the soak test runs many more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
import schemathesis
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from crmail.crm.models import Pipeline
from crmail.domains import actions as domain_actions
from crmail.insights.models import ScheduledSend
from crmail.mailboxes.models import Mailbox
from crmail.orgaddresses.tests.helpers import verified
from crmail.people.models import Profile, Role, User
from crmail.workflows import actions as workflow_actions
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("CRMAIL_FUZZ_EXAMPLES", "6"))
SOAK_EXAMPLES = 200


@dataclass
class World:
    """The rows the fuzz runs against: who acts, and an existing id for each path."""

    admin: User
    rep: User
    tokens: dict[str, str]
    ids: dict[str, int]


def world() -> World:
    org = f.org()
    target = f.user("target@crmail.test", name="Tia Target", manager=org.manager)
    contact = f.contact(org.rep, "grace@navy.example", account=f.account(org.rep, "Navy"))
    mailbox = Mailbox.objects.create(
        owner=org.rep,
        email="rep@crmail.test",
        host="127.0.0.1",
        port=9,  # discard: nothing listens, so a connection is refused at once
        security="none",
        login="rep",
        secret="secret",
    )
    ids = {
        "contacts": contact.pk,
        "leads": f.lead(org.rep, "lead@example.com").pk,
        "accounts": contact.account_id,
        "deals": f.deal(org.rep, "Big one", contact=contact).pk,
        "pipelines": Pipeline.objects.get(is_default=True).pk,
        "users": target.pk,
        "sharing": target.pk,
        "mailboxes": mailbox.pk,
    }
    ids["workflows"] = workflow_actions.create_workflow(
        by=org.admin,
        name="Fuzzed",
        organisation=True,
        spec={
            "triggers": ["incoming"],
            "conditions": [{"field": "subject", "op": "contains", "values": ["invoice"]}],
            "actions": [{"kind": "link_open_deal"}],
        },
    ).pk
    ids["organisation-addresses"] = verified("sales@crmail.test", everyone=True).pk
    ids["domains"] = domain_actions.add("fuzz.example", by=None).pk
    ids["scheduled"] = ScheduledSend.objects.create(
        user=org.rep,
        send_at=timezone.now() + timedelta(days=30),
        draft={"sender": "rep@crmail.test", "to": ["grace@navy.example"], "subject": "Later"},
        subject="Later",
    ).pk
    tokens = {"admin": f.token(org.admin), "rep": f.token(org.rep)}
    return World(admin=org.admin, rep=org.rep, tokens=tokens, ids=ids)


def restore(w: World) -> None:
    """Put back what a fuzzed request may have changed about the two acting users."""
    admin_profile = Profile.objects.get(name="Administrator")
    User.objects.filter(pk=w.admin.pk).update(
        is_active=True, profile=admin_profile, role=Role.objects.get(name="CEO")
    )
    User.objects.filter(pk=w.rep.pk).update(is_active=True)


def known_ids(w: World, path: str) -> dict[str, Any]:
    """Path parameters naming existing rows, for the operation at ``path``."""
    module = path.removeprefix("/api/v1/").split("/")[0]
    found: dict[str, Any] = {}
    if "{id}" in path and module in w.ids:
        found["id"] = w.ids[module]
    if "{user_id}" in path:
        found["user_id"] = w.ids["users"]
    if "{module}" in path:
        found["module"] = "contacts"
    if "{record_id}" in path:
        found["record_id"] = w.ids["contacts"]
    return found


def cases(strategy: Any, examples: int, check: Any) -> None:
    """Run ``check`` on ``examples`` cases drawn from ``strategy``, the same ones every run."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        check(case)

    run()


def fuzz(base_url: str, w: World, examples: int) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    failures: list[str] = []
    with requests.Session() as session:
        for operation in operations:
            failures += fuzz_operation(operation, base_url, session, w, examples)
    return failures


def fuzz_operation(
    operation: Any, base_url: str, session: requests.Session, w: World, examples: int
) -> list[str]:
    # Valid requests on rows that exist (any ids when the path has none), as each user;
    # invalid requests as the administrator, who passes every permission check.
    runs = [
        (GenerationMode.POSITIVE, "admin", known_ids(w, operation.path)),
        (GenerationMode.POSITIVE, "rep", known_ids(w, operation.path)),
        (GenerationMode.NEGATIVE, "admin", {}),
    ]
    failures = []
    for mode, who, ids in runs:
        headers = {"Authorization": f"Bearer {w.tokens[who]}"}

        def check(case: Any, headers: dict[str, str] = headers) -> None:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS, headers=headers)

        restore(w)
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=ids)
        try:
            cases(strategy, examples, check)
        except BaseException as exc:  # schemathesis' FailureGroup is one
            if isinstance(exc, KeyboardInterrupt):
                raise
            where = f"{operation.label} as {who}, {mode.value}, ids {ids or 'any'}"
            failures.append(f"{where}:\n{exc}")
    return failures


def report(failures: list[str]) -> str:
    return f"{len(failures)} failing:\n\n" + "\n\n".join(f[:3000] for f in failures)


def test_no_operation_answers_500_or_outside_its_schema(live_server):
    failures = fuzz(live_server.url, world(), EXAMPLES)
    assert not failures, report(failures)


@pytest.mark.soak
def test_no_operation_answers_500_or_outside_its_schema_at_length(live_server):
    failures = fuzz(live_server.url, world(), SOAK_EXAMPLES)
    assert not failures, report(failures)
