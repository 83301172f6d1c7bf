"""Importing filters as a user would: the page (upload, preview, import), the API (multipart
or JSON, a dry run) and ``crmail workflows import``. The rules made are the user's own, off,
at the end of their chain, all made or none; bad files are refused in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from crmail.api.tests.conftest import BASE, ApiClient
from crmail.config.cli import main
from crmail.workflows import actions
from crmail.workflows.models import Workflow
from tests import factories as f

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data" / "filters"
GMAIL = (DATA / "mailFilters.xml").read_bytes()
SIEVE = (DATA / "roundcube.sieve").read_bytes()
EXISTING = {
    "triggers": ["incoming"],
    "conditions": [{"field": "subject", "op": "contains", "values": ["hello"]}],
    "actions": [{"kind": "flag"}],
}


def signed_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def upload(data: bytes, name: str = "mailFilters.xml") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


# -- the page ---------------------------------------------------------------------------------


def test_upload_preview_then_import_makes_the_users_own_rules_off_and_in_order(org):
    actions.create_workflow(by=org.rep, name="Mine already", spec=EXISTING, enabled=True)
    client = signed_in(org.rep)
    page = client.get("/settings/workflows/import/")
    assert page.status_code == 200
    assert b"mailFilters.xml" in page.content

    preview = client.post("/settings/workflows/import/", {"file": upload(GMAIL)})
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "7 rules to import from Gmail&#x27;s filters" in html
    assert "Gmail filter from:(news@shop.example.com)" in html
    assert "Move it to a folder: Newsletters" in html
    assert "5 filters cannot be imported" in html
    assert "Gmail&#x27;s &#x27;Never send it to Spam&#x27; has no counterpart in crmail." in html
    assert "Import 7 rules" in html
    assert Workflow.objects.count() == 1  # a preview makes nothing

    text = preview.context["confirm"]["text"].value()
    done = client.post("/settings/workflows/import/", {"text": text, "import": "1"})
    assert done.status_code == 302 and done["Location"] == "/settings/workflows/"
    rules = list(Workflow.objects.filter(owner=org.rep).order_by("position"))
    assert [w.name for w in rules][:2] == [
        "Mine already",
        "Gmail filter from:(news@shop.example.com)",
    ]
    assert len(rules) == 8
    assert [w.position for w in rules] == list(range(8))
    assert not any(w.enabled for w in rules[1:])
    assert all(w.created_by_id == org.rep.pk for w in rules)
    assert rules[3].description.startswith("Imported from Gmail's filters, lines 38 to 41.")
    assert "List-Id header as 'django-users.googlegroups.com'" in rules[3].description
    listed = client.get("/settings/workflows/").content.decode()
    assert "7 rules imported, off" in listed and "Import filters" in listed


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "The file is empty."),
        ("caf\u00e9".encode("latin-1"), "not UTF-8"),
        (b"<html><body>hi</body></html>", "not Gmail&#x27;s filters export"),
        (b'if true { fileinto "x" }', "Line 1: Expected &#x27;;&#x27;"),
        (b"x" * (1024 * 1024 + 10), "larger than 1.0"),
    ],
)
def test_bad_files_are_refused_in_words(org, data, words):
    answer = signed_in(org.rep).post("/settings/workflows/import/", {"file": upload(data)})
    assert answer.status_code == 200
    assert words in answer.content.decode()
    assert not Workflow.objects.exists()


def test_no_file_chosen(org):
    answer = signed_in(org.rep).post("/settings/workflows/import/", {})
    assert answer.status_code == 200 and b"Choose the file to import." in answer.content


def test_the_page_needs_signing_in(client):
    answer = client.get("/settings/workflows/import/")
    assert answer.status_code == 302 and answer["Location"].startswith("/sign-in/")


# -- the API ----------------------------------------------------------------------------------


def test_api_dry_run_says_what_would_be_made_and_makes_nothing(org):
    api = ApiClient(org.rep)
    answer = api.post("/workflows/import?dry_run=true", {"text": SIEVE.decode()})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["source"], body["dry_run"], body["imported"]) == ("sieve", True, 0)
    assert [r["name"] for r in body["rules"]] == ["Spam", "Newsletters", "Customers"]
    assert all(r["workflow_id"] is None for r in body["rules"])
    assert body["rules"][0]["lines"] == [3, 5, 6]
    assert body["skipped"][0] == {
        "name": "Copy invoices",
        "lines": [20, 22],
        "problems": [
            {
                "line": 22,
                "text": 'fileinto :copy "Invoices";',
                "reason": "fileinto :copy leaves the message in the Inbox and puts a copy in "
                "the folder; crmail's rules move mail, they do not copy it.",
            }
        ],
    }
    assert not Workflow.objects.exists()


def test_api_multipart_upload_imports_the_rules(org):
    token = f.token(org.rep)
    answer = Client().post(
        BASE + "/workflows/import",
        {"file": upload(SIEVE, "rules.sieve")},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["imported"] == 3
    made = Workflow.objects.filter(owner=org.rep).order_by("position")
    assert [r["workflow_id"] for r in body["rules"]] == [w.pk for w in made]
    assert [w.spec for w in made] == [r["spec"] for r in body["rules"]]
    assert not any(w.enabled for w in made)
    # Another user's list is untouched, and they do not see these rules.
    assert ApiClient(org.manager).get("/workflows").json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"text": ""}, "text", "The file is empty."),
        ({"text": "if true {"}, "text", "never closed"),
        ({"text": "x", "extra": 1}, "extra", "Unknown field."),
        ({}, "text", "required"),
    ],
)
def test_api_refuses_bad_input_naming_the_field(org, body, field, words):
    answer = ApiClient(org.rep).post("/workflows/import", body)
    assert answer.status_code == 422, answer.content
    [error] = answer.json()["detail"]
    assert error["field"] == field and words in error["message"]


def test_api_refuses_other_bodies(org):
    api = ApiClient(org.rep)
    assert api.post("/workflows/import", raw=b"{not json").status_code == 400
    token = f.token(org.rep)
    wrong = Client().post(
        BASE + "/workflows/import",
        data=b"text",
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert wrong.status_code == 422
    missing = Client().post(
        BASE + "/workflows/import",
        {"other": upload(SIEVE)},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "file"
    big = api.post("/workflows/import", {"text": "#" * (1024 * 1024 + 70 * 1024)})
    assert big.status_code == 413
    assert ApiClient().post("/workflows/import", {"text": "stop;"}).status_code == 401


# -- the command ------------------------------------------------------------------------------


def test_command_imports_for_the_user_and_lists_what_it_cannot(org, capsys, tmp_path):
    path = tmp_path / "mailFilters.xml"
    path.write_bytes(GMAIL)
    status = main(["workflows", "import", "--user", org.rep.email, str(path), "--dry-run"])
    out = capsys.readouterr()
    assert status == 1
    assert "Dry run: 7 rules would be imported; 5 filters cannot be." in out.out
    assert "Never send it to Spam" in out.out
    assert not Workflow.objects.exists()

    status = main(["workflows", "import", "--user", org.rep.email, str(path)])
    out = capsys.readouterr()
    assert status == 1
    assert f"7 rules imported for {org.rep.email}, off" in out.out
    assert "Problem: 5 filters not imported: the lines above say why." in out.out
    assert Workflow.objects.filter(owner=org.rep, enabled=False).count() == 7


def test_command_refuses_unknown_users_and_bad_files(org, capsys, tmp_path):
    path = tmp_path / "rules.sieve"
    path.write_bytes(b"if true {")
    assert main(["workflows", "import", "--user", "nobody@x.example", str(path)]) != 0
    assert "no user with the email" in capsys.readouterr().err
    assert main(["workflows", "import", "--user", org.rep.email, str(path)]) != 0
    assert "never closed" in capsys.readouterr().err
    assert main(["workflows", "import", "--user", org.rep.email, str(tmp_path / "no")]) != 0
    assert "There is no file" in capsys.readouterr().err
