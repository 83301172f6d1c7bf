"""Parked events, as administrators meet them: `crmail events` and `/settings/events/`."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from crmail.config.cli import main
from crmail.events import dispatch, outbox
from crmail.events.kinds import SyncFinished
from crmail.events.models import Failure
from crmail.events.registry import CONSUMERS, Consumer
from tests import factories as f

pytestmark = pytest.mark.django_db


class Flaky:
    def __init__(self) -> None:
        self.broken = True
        self.handled: list[int] = []

    def __call__(self, batch) -> None:  # type: ignore[no-untyped-def]
        if self.broken:
            raise ValueError("the notification service is down")
        self.handled += [item.data.mailbox_id for item in batch]


@pytest.fixture
def parked(monkeypatch):
    flaky = Flaky()
    monkeypatch.setitem(
        CONSUMERS,
        "alerts-test",
        Consumer(name="alerts-test", kinds=frozenset({"sync.finished"}), handler=flaky),
    )
    dispatch.start_all()
    outbox.record(SyncFinished(mailbox_id=41, owner_id=1, state="completed"))
    dispatch.dispatch("alerts-test")
    Failure.objects.update(parked=True, next_try_at=None, attempts=6)
    return flaky


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_command_lists_parked_events_and_retries_them(capsys, parked):
    status, out, _ = run(capsys, "events", "failed")
    assert status == 0
    assert "alerts-test" in out and "sync.finished" in out and "notification service is down" in out
    failure = Failure.objects.get()

    status, out, _ = run(capsys, "events", "retry", str(failure.pk))
    assert status == 1 and "failed again" in out
    assert Failure.objects.get().parked

    status, _, err = run(capsys, "events", "retry", "999999")
    assert status != 0 and "No failed event with id 999999" in err

    parked.broken = False
    status, out, _ = run(capsys, "events", "retry", "--all")
    assert status == 0 and "Handled 1 event." in out
    assert parked.handled == [41] and not Failure.objects.exists()
    status, out, _ = run(capsys, "events", "failed")
    assert "No parked events." in out

    status, out, _ = run(capsys, "events", "status")
    assert status == 0 and "alerts-test" in out and "linking" in out


def test_administrators_see_parked_events_and_handle_them_again(parked):
    admin, rep = f.user(admin=True), f.user()
    client = Client()
    client.force_login(rep)
    assert client.get(reverse("web:events")).status_code == 403
    client.force_login(admin)
    page = client.get(reverse("web:events")).content.decode()
    assert "sync.finished" in page and "the notification service is down" in page
    parked.broken = False
    failure = Failure.objects.get()
    response = client.post(reverse("web:events"), {"failure": str(failure.pk)}, follow=True)
    assert "Handled 1 event." in response.content.decode()
    assert "No parked events" in response.content.decode()
    assert parked.handled == [41]
    response = client.post(reverse("web:events"), {"failure": "nonsense"}, follow=True)
    assert response.status_code == 200 and "That failed event is gone" in response.content.decode()
