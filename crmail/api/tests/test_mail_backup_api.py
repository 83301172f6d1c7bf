"""``GET /users/{id}/mail-backup``: a user's mail as an mbox stream, for administrators."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from django.test import Client

from crmail.api.tests.conftest import BASE, ApiClient
from crmail.mail.store import store_raw
from crmail.mailboxes.models import SentMessage
from crmail.web.tests.mail_samples import deliver, text_message
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_an_admin_downloads_a_deactivated_users_mail(org, tmp_path: Path):
    deliver(org.rep, text_message("first note", subject="First"))
    sent = store_raw(text_message("sent from crmail", subject="Sent"))
    SentMessage.objects.create(message=sent, sender=org.rep, from_address=org.rep.email)
    deliver(org.peer, text_message("someone else's", subject="Not theirs"))
    org.rep.is_active = False
    org.rep.save(update_fields=["is_active"])

    response = ApiClient(org.admin).get(f"/users/{org.rep.pk}/mail-backup")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/mbox"
    assert response["Content-Disposition"] == 'attachment; filename="rep@crmail.test-mail.mbox"'
    path = tmp_path / "rep.mbox"
    path.write_bytes(b"".join(response.streaming_content))
    box = mailbox.mbox(path, create=False)
    assert sorted(box[key]["Subject"] for key in box.iterkeys()) == ["First", "Sent"]


def test_only_administrators_and_only_known_users(org):
    assert ApiClient(org.manager).get(f"/users/{org.rep.pk}/mail-backup").status_code == 403
    assert ApiClient(org.rep).get(f"/users/{org.rep.pk}/mail-backup").status_code == 403
    assert ApiClient(org.admin).get("/users/99999/mail-backup").status_code == 404
    assert Client().get(f"{BASE}/users/{org.rep.pk}/mail-backup").status_code == 401


def test_the_openapi_document_describes_the_mbox_answer(db):
    doc = Client().get(f"{BASE}/openapi.json").json()
    operation = doc["paths"]["/api/v1/users/{id}/mail-backup"]["get"]
    assert "application/mbox" in operation["responses"]["200"]["content"]
    assert {"401", "403", "404"} <= set(operation["responses"])


def test_an_active_user_without_mail_is_an_empty_backup(org):
    user = f.user()
    response = ApiClient(org.admin).get(f"/users/{user.pk}/mail-backup")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b""
