"""Failed workflow runs, as administrators meet them: `crmail workflows` and
`/settings/events/`, without the mail they ran on."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crmail.config.cli import main
from crmail.crm.models import Stage
from crmail.workflows import actions
from crmail.workflows.models import RunState, WorkflowRun
from crmail.workflows.tests import build
from crmail.workflows.tests.test_engine import acme, flow  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(org, acme, flow):  # noqa: F811
    actions.create_workflow(
        by=org.rep,
        name="Signed deals",
        enabled=True,
        spec={
            "triggers": ["incoming"],
            "conditions": [],
            "actions": [
                {
                    "kind": "update_field",
                    "params": {"module": "deal", "field": "stage", "value": "Signed"},
                }
            ],
        },
    )
    with flow():
        build.deliver(acme["box"], build.raw("jane@acme.test", subject="Secret plans"))
    WorkflowRun.objects.update(state=RunState.FAILED, next_try_at=None, attempts=6)
    return WorkflowRun.objects.get()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_command_lists_failed_runs_and_runs_them_again(capsys, failed, acme):  # noqa: F811
    status, out, _ = run(capsys, "workflows", "runs")
    assert status == 0
    assert "Signed deals" in out and "rep@crmail.test" in out and "no stage named" in out
    assert "Secret plans" not in out

    status, out, _ = run(capsys, "workflows", "retry", str(failed.pk))
    assert status == 1 and "failed again" in out
    status, _, err = run(capsys, "workflows", "retry", "999999")
    assert status != 0 and "No failed run with id 999999" in err

    Stage.objects.create(pipeline=acme["deal"].pipeline, name="Signed", position=9, probability=95)
    status, out, _ = run(capsys, "workflows", "retry", "--all")
    assert status == 0 and "1 run done." in out
    status, out, _ = run(capsys, "workflows", "runs", "--all")
    assert "No failed or retrying runs." in out


def test_administrators_see_failed_runs_on_events_without_their_mail(failed, org, acme):  # noqa: F811
    client = Client()
    client.force_login(org.admin)
    page = client.get(reverse("web:events")).content.decode()
    assert "Signed deals" in page and "no stage named" in page and "Rex Rep" in page
    assert "Secret plans" not in page
    Stage.objects.create(pipeline=acme["deal"].pipeline, name="Signed", position=9, probability=95)
    done = client.post(reverse("web:events"), {"run": str(failed.pk)}, follow=True)
    assert "1 workflow run done." in done.content.decode()
    assert "No workflow run is failing." in done.content.decode()
    failed.refresh_from_db()
    assert failed.state == RunState.DONE and failed.updated_at <= timezone.now()
