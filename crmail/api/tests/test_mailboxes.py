"""``/mailboxes``: connecting against a real Dovecot, settings, status, sync and folders.

Other users' mailboxes answer 404 as if they did not exist; a locked configuration and a
profile without Mail Integration answer 403 in words.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from crmail.api.mailboxes import with_preset
from crmail.api.tests.conftest import ApiClient, fields
from crmail.jobs import leases
from crmail.jobs.models import Lease
from crmail.mail.models import Message
from crmail.mailboxes.models import Folder, Mailbox
from crmail.people.models import Profile
from tests import factories as f

pytestmark = pytest.mark.django_db

MAIL = (
    b"From: Grace Client <grace@client.example>\r\n"
    b"To: rep@crmail.test\r\n"
    b"Subject: Quote for 40 seats\r\n"
    b"Message-ID: <quote-40@client.example>\r\n"
    b"Date: Mon, 02 Jun 2025 09:30:00 +0000\r\n"
    b"\r\n"
    b"Could you send us a quote?\r\n"
)


def connect_body(dovecot: Any, login: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": "rep@crmail.test",
        "protocol": "imap",
        "host": "127.0.0.1",
        "port": dovecot.imap_port,
        "security": "none",
        "login": login,
        "password": password,
        **extra,
    }


def stored_mailbox(owner, **extra: Any) -> Mailbox:  # type: ignore[no-untyped-def]
    """A mailbox saved without a connection test (for what needs no server)."""
    return Mailbox.objects.create(
        owner=owner,
        email=extra.pop("email", owner.email),
        protocol="imap",
        host="127.0.0.1",
        port=1,
        security="none",
        login=owner.email,
        secret="s3cret-pass",
        **extra,
    )


# ------------------------------------------------------------------------- connecting


def test_connecting_tests_the_servers_and_never_answers_the_password(
    org, dovecot, dovecot_user, smtp_sink
):
    login, password = dovecot_user
    body = connect_body(
        dovecot,
        login,
        password,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_security="none",
        smtp_same_credentials=False,
        extra_from_addresses=["Sales@Crmail.test"],
    )
    response = ApiClient(org.rep).post("/mailboxes", body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["owner"]["id"] == org.rep.pk
    assert data["is_active"] and data["secret_stored"] and not data["smtp_secret_stored"]
    # Connecting queues the first sync (the test queue runs it at once).
    assert data["state"] == "completed" and data["state_label"] == "Completed"
    assert password not in response.content.decode()
    assert "password" not in data and "secret" not in data
    mailbox = Mailbox.objects.get(pk=data["id"])
    assert mailbox.secret == password  # stored (encrypted at rest), usable
    listed = ApiClient(org.rep).get("/mailboxes").json()
    assert [m["id"] for m in listed["items"]] == [mailbox.pk] and listed["count"] == 1
    assert password not in ApiClient(org.rep).get(f"/mailboxes/{mailbox.pk}").content.decode()


def test_a_wrong_password_is_refused_naming_the_incoming_server(org, dovecot, dovecot_user):
    login, _ = dovecot_user
    response = ApiClient(org.rep).post("/mailboxes", connect_body(dovecot, login, "wrong"))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "incoming"
    assert error["message"].startswith("Incoming server:")
    assert "refused the login" in error["message"]
    assert not Mailbox.objects.exists()


def test_an_unreachable_outgoing_server_is_named_and_nothing_is_saved(org, dovecot, dovecot_user):
    login, password = dovecot_user
    body = connect_body(dovecot, login, password, smtp_host="127.0.0.1", smtp_port=1)
    body["smtp_security"] = "none"
    response = ApiClient(org.rep).post("/mailboxes", body)
    assert response.status_code == 422
    assert fields(response) == {"outgoing"}
    assert response.json()["detail"][0]["message"].startswith("Outgoing (SMTP) server:")
    assert not Mailbox.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": None}, "email"),
        ({"password": ""}, "password"),
        ({"port": 70000}, "port"),
        ({"security": "ssl"}, "security"),
        ({"protocol": "exchange"}, "protocol"),
        ({"protocol": "gmail"}, "oauth_refresh_token"),
        ({"provider": "hotmail"}, "provider"),
        ({"email": "not an address"}, "email"),
        ({"extra_from_addresses": ["nope"]}, "extra_from_addresses"),
        ({"keep_on_server": None}, "keep_on_server"),
        ({"secret": "x"}, "secret"),
        ({"owner_id": 987654}, "owner_id"),
        ({"host": "https://imap.example.com"}, "host"),
        ({"smtp_host": "smtp\u0005.example.com"}, "smtp_host"),
    ],
)
def test_bad_settings_answer_422_naming_the_field(org, change, field):
    body = {"email": "rep@crmail.test", "host": "127.0.0.1", "password": "pw", **change}
    body = {k: v for k, v in body.items() if not (k == "email" and v is None)}
    response = ApiClient(org.rep).post("/mailboxes", body)
    assert response.status_code == 422, response.content
    assert fields(response) == {field}
    assert not Mailbox.objects.exists()


def test_a_missing_incoming_server_is_explained(org):
    response = ApiClient(org.rep).post("/mailboxes", {"email": "rep@x.example", "password": "p"})
    assert response.status_code == 422
    assert fields(response) == {"host"}
    assert "incoming server" in response.json()["detail"][0]["message"]


def test_without_mail_integration_connecting_is_403(org):
    profile = Profile.objects.create(name="No mail", mail_integration=False)
    org.rep.profile = profile
    org.rep.save()
    body = {"email": "rep@crmail.test", "host": "127.0.0.1", "password": "pw"}
    response = ApiClient(org.rep).post("/mailboxes", body)
    assert response.status_code == 403
    assert "Mail Integration" in response.json()["detail"]


def test_only_administrators_connect_for_someone_else(org):
    body = {"email": "peer@crmail.test", "host": "127.0.0.1", "password": "pw"}
    response = ApiClient(org.rep).post("/mailboxes", {**body, "owner_id": org.peer.pk})
    assert response.status_code == 403
    assert "administrators" in response.json()["detail"]


def test_a_preset_fills_in_the_servers_not_given():
    gmail = with_preset({"provider": "gmail", "protocol": "imap", "email": "a@gmail.com"})
    assert (gmail["host"], gmail["port"], gmail["security"]) == ("imap.gmail.com", 993, "tls")
    assert (gmail["smtp_host"], gmail["smtp_port"]) == ("smtp.gmail.com", 465)
    pop = with_preset({"provider": "outlook", "protocol": "pop3", "smtp_host": "mine.example"})
    assert pop["host"] == "outlook.office365.com" and pop["port"] == 995
    assert pop["smtp_host"] == "mine.example" and "smtp_port" not in pop
    own = with_preset({"provider": "fastmail", "protocol": "imap", "host": "h", "port": 1})
    assert (own["host"], own["port"]) == ("h", 1)
    assert with_preset({"provider": "custom", "protocol": "imap"}) == {
        "provider": "custom",
        "protocol": "imap",
    }


def test_presets_list_servers_the_app_password_hint_and_oauth(org, settings):
    presets = {p["key"]: p for p in ApiClient(org.rep).get("/mailboxes/presets").json()}
    gmail = presets["gmail"]
    assert gmail["imap"] == {"host": "imap.gmail.com", "port": 993, "security": "tls"}
    assert gmail["smtp"]["host"] == "smtp.gmail.com"
    assert "app password" in gmail["app_password_hint"]
    assert gmail["oauth_configured"] is False and gmail["sent_copy_by_smtp"] is True
    assert presets["icloud"]["pop3"] is None
    custom = list(presets.values())[-1]
    assert custom["key"] == "custom" and custom["imap"] is None
    assert custom["app_password_hint"] is None
    settings.CRMAIL_OAUTH_GOOGLE_CLIENT_ID = "id"
    settings.CRMAIL_OAUTH_GOOGLE_CLIENT_SECRET = "secret"
    presets = {p["key"]: p for p in ApiClient(org.rep).get("/mailboxes/presets").json()}
    assert presets["gmail"]["oauth_configured"] is True
    assert presets["outlook"]["oauth_configured"] is False


# --------------------------------------------------------------------- who sees what


def test_other_users_mailboxes_answer_404_like_missing_ones(org):
    mailbox = stored_mailbox(org.rep)
    folder = Folder.objects.create(mailbox=mailbox, remote_id="INBOX", name="INBOX")
    peer, manager = ApiClient(org.peer), ApiClient(org.manager)
    base = f"/mailboxes/{mailbox.pk}"
    for api in (peer, manager):  # not even the rep's manager
        assert api.get("/mailboxes").json()["count"] == 0
        for path in ("", "/status", "/folders", "/messages"):
            hidden, missing = api.get(base + path), api.get(f"/mailboxes/987654{path}")
            assert hidden.status_code == missing.status_code == 404, path
            assert hidden.json() == missing.json() == {"detail": "Not found."}
        writes = [
            api.patch(base, {"store_sent_on_server": False}),
            api.post(base + "/sync"),
            api.post(base + "/activate"),
            api.post(base + "/deactivate", {"keep_mail": False}),
            api.send("PUT", base + "/lock", {"locked": True}),
            api.patch(f"{base}/folders/{folder.pk}", {"role": "inbox"}),
        ]
        assert [r.status_code for r in writes] == [404] * len(writes)
    mailbox.refresh_from_db()
    assert mailbox.is_active and mailbox.store_sent_on_server and not mailbox.locked


def test_a_sync_whose_worker_died_is_reported_interrupted_once_its_lease_lapses(org):
    mailbox = stored_mailbox(org.rep)
    Mailbox.objects.filter(pk=mailbox.pk).update(
        state="syncing", sync_started_at=timezone.now(), progress_total=300
    )
    lease = f"mailbox-sync:{mailbox.pk}"
    assert leases.acquire(lease, "elsewhere:1", timedelta(minutes=5))
    api, url = ApiClient(org.rep), f"/mailboxes/{mailbox.pk}/status"
    running = api.get(url).json()
    assert (running["state"], running["state_label"]) == ("syncing", "Sync in progress")
    Lease.objects.filter(name=lease).update(expires_at=timezone.now() - timedelta(seconds=1))
    stopped = api.get(url).json()
    assert stopped["state"] == "interrupted"
    assert stopped["state_label"].startswith("Interrupted")
    assert stopped["eta_seconds"] is None and stopped["rate_per_second"] is None
    described = api.get(f"/mailboxes/{mailbox.pk}").json()
    assert (described["state"], described["state_label"]) == ("interrupted", stopped["state_label"])


def test_an_administrator_sees_and_filters_everyones_mailboxes(org):
    mine, theirs = stored_mailbox(org.rep), stored_mailbox(org.peer)
    admin = ApiClient(org.admin)
    assert {m["id"] for m in admin.get("/mailboxes").json()["items"]} == {mine.pk, theirs.pk}
    only = admin.get("/mailboxes", {"owner": org.peer.pk}).json()
    assert [m["id"] for m in only["items"]] == [theirs.pk]
    assert admin.get(f"/mailboxes/{mine.pk}").json()["owner"]["email"] == "rep@crmail.test"
    page = admin.get("/mailboxes", {"limit": 1, "offset": 1}).json()
    assert page["count"] == 2 and len(page["items"]) == 1 and page["limit"] == 1
    assert fields(admin.get("/mailboxes", {"limit": 0})) == {"limit"}


def test_an_administrator_sees_a_mailboxs_counts_but_not_its_messages(org):
    from crmail.sharing import actions as sharing
    from crmail.sharing.tests.build import message, place

    sharing.set_sharing(None, org.rep, mode="private")
    mailbox = stored_mailbox(org.rep)
    Folder.objects.create(mailbox=mailbox, remote_id="INBOX", name="Inbox", role="inbox")
    place(message("jane@customer.test", [org.rep.email]), mailbox)
    base = f"/mailboxes/{mailbox.pk}"
    admin = ApiClient(org.admin)
    refused = admin.get(base + "/messages")
    assert refused.status_code == 403
    assert "Only its owner lists the messages of a mailbox" in refused.json()["detail"]
    assert admin.get(base + "/status").json()["messages_stored"] == 1
    assert admin.get(base + "/folders").json()["items"][0]["messages"] == 1
    listed = ApiClient(org.rep).get(base + "/messages").json()
    assert listed["count"] == 1 and listed["items"][0]["subject"].startswith("m")


# ------------------------------------------------------------------------ settings


def test_the_name_on_sent_mail_is_a_setting(org):
    mailbox = stored_mailbox(org.rep)
    api = ApiClient(org.rep)
    response = api.patch(f"/mailboxes/{mailbox.pk}", {"display_name": " Acme Sales "})
    assert response.status_code == 200, response.content
    assert response.json()["display_name"] == "Acme Sales"
    assert api.get(f"/mailboxes/{mailbox.pk}").json()["display_name"] == "Acme Sales"
    assert (
        api.patch(f"/mailboxes/{mailbox.pk}", {"display_name": None}).json()["display_name"] == ""
    )


def test_changing_settings_keeps_the_stored_password(org):
    mailbox = stored_mailbox(org.rep)
    api = ApiClient(org.rep)
    response = api.patch(
        f"/mailboxes/{mailbox.pk}",
        {"store_sent_on_server": False, "extra_from_addresses": ["sales@crmail.test"]},
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["store_sent_on_server"] is False
    assert data["extra_from_addresses"] == ["sales@crmail.test"]
    assert data["secret_stored"] is True
    mailbox.refresh_from_db()
    assert mailbox.secret == "s3cret-pass"
    assert api.patch(f"/mailboxes/{mailbox.pk}", {"password": ""}).status_code == 200
    mailbox.refresh_from_db()
    assert mailbox.secret == "s3cret-pass"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"extra_from_addresses": ["nope"]}, "extra_from_addresses"),
        ({"protocol": "pop3"}, "protocol"),
        ({"store_sent_on_server": None}, "store_sent_on_server"),
        ({"smtp_port": 0}, "smtp_port"),
        ({"import_since": "yesterday"}, "import_since"),
        # Found by fuzzing: a server name DNS cannot spell reached the connection test.
        ({"port": None, "smtp_host": "\u009d\u0086\u00d1\u00f6<M"}, "smtp_host"),
        ({"host": "imap.example.com\u0000"}, "host"),
        ({"host": "imap example.com"}, "host"),
    ],
)
def test_bad_changes_answer_422_and_change_nothing(org, body, field):
    mailbox = stored_mailbox(org.rep)
    response = ApiClient(org.rep).patch(f"/mailboxes/{mailbox.pk}", body)
    assert response.status_code == 422, response.content
    assert fields(response) == {field}
    mailbox.refresh_from_db()
    assert mailbox.extra_from_addresses == [] and mailbox.store_sent_on_server


def test_a_changed_password_is_tested_before_it_is_saved(org, dovecot, dovecot_user):
    login, password = dovecot_user
    mailbox = f.mailbox(dovecot, login, password, owner=org.rep)
    api = ApiClient(org.rep)
    refused = api.patch(f"/mailboxes/{mailbox.pk}", {"password": "wrong"})
    assert refused.status_code == 422
    assert fields(refused) == {"incoming"}
    mailbox.refresh_from_db()
    assert mailbox.secret == password
    assert api.patch(f"/mailboxes/{mailbox.pk}", {"password": password}).status_code == 200


def test_a_locked_configuration_refuses_its_owner_with_403(org):
    mailbox = stored_mailbox(org.rep)
    rep, admin = ApiClient(org.rep), ApiClient(org.admin)
    base = f"/mailboxes/{mailbox.pk}"
    refused = rep.send("PUT", base + "/lock", {"locked": True})
    assert refused.status_code == 403
    assert "administrators" in refused.json()["detail"]

    locked = admin.send("PUT", base + "/lock", {"locked": True})
    assert locked.status_code == 200 and locked.json()["locked"] is True
    attempts = [
        rep.patch(base, {"store_sent_on_server": False}),
        rep.post(base + "/deactivate", {"keep_mail": True}),
        rep.post(base + "/activate"),
        rep.post("/mailboxes", {"email": "rep@crmail.test", "host": "h", "password": "p"}),
    ]
    for response in attempts:
        assert response.status_code == 403
        assert "locked" in response.json()["detail"]
    assert rep.get(base).json()["locked"] is True  # still readable
    assert admin.patch(base, {"store_sent_on_server": False}).status_code == 200
    assert admin.send("PUT", base + "/lock", {"locked": False}).json()["locked"] is False
    assert rep.patch(base, {"store_sent_on_server": True}).status_code == 200
    assert fields(admin.send("PUT", base + "/lock", {})) == {"locked"}


def test_deactivating_asks_whether_to_keep_the_mail(org):
    mailbox = stored_mailbox(org.rep)
    api = ApiClient(org.rep)
    base = f"/mailboxes/{mailbox.pk}"
    assert fields(api.post(base + "/deactivate", {})) == {"keep_mail"}
    assert fields(api.post(base + "/deactivate")) == {None}
    assert fields(api.post(base + "/deactivate", {"keep_mail": "maybe"})) == {"keep_mail"}
    done = api.post(base + "/deactivate", {"keep_mail": True})
    assert done.status_code == 200
    assert done.json()["mailbox"]["is_active"] is False
    assert done.json()["messages_removed"] == 0
    assert api.post(base + "/sync").status_code == 409
    assert "activate" in api.post(base + "/sync").json()["detail"]
    again = api.post(base + "/activate")
    assert again.status_code == 200 and again.json()["is_active"] is True


def test_activating_one_mailbox_stops_the_other(org):
    first = stored_mailbox(org.rep)
    second = stored_mailbox(org.rep, email="other@crmail.test", is_active=False)
    api = ApiClient(org.rep)
    assert api.post(f"/mailboxes/{second.pk}/activate").json()["is_active"] is True
    assert api.get(f"/mailboxes/{first.pk}").json()["is_active"] is False


# ------------------------------------------------------------------ sync and folders


def test_mail_delivered_on_the_server_is_listed_after_a_sync(org, dovecot, dovecot_user):
    login, password = dovecot_user
    dovecot.create_mailbox(login, "Projects")
    api = ApiClient(org.rep)
    connected = api.post("/mailboxes", connect_body(dovecot, login, password))
    assert connected.status_code == 201, connected.content
    mailbox_id = connected.json()["id"]
    base = f"/mailboxes/{mailbox_id}"
    assert api.get(base + "/messages").json() == {
        "items": [],
        "count": 0,
        "limit": 50,
        "offset": 0,
    }

    dovecot.deliver(login, MAIL)
    dovecot.deliver(login, MAIL.replace(b"40 seats", b"the renewal").replace(b"-40@", b"-r@"))
    synced = api.post(base + "/sync")
    assert synced.status_code == 202, synced.content
    status = synced.json()
    assert status["state"] == "completed" and status["state_label"] == "Completed"
    assert status["messages_stored"] == 2 and status["last_error"] == ""
    assert status["last_sync_at"] is not None

    listed = api.get(base + "/messages").json()
    assert listed["count"] == 2
    by_subject = {m["subject"]: m for m in listed["items"]}
    quote = by_subject["Quote for 40 seats"]
    assert quote["from_address"] == "grace@client.example"
    assert quote["from_name"] == "Grace Client"
    assert quote["parse_state"] == "parsed"
    assert quote["date"].startswith("2025-06-02T09:30:00")
    assert [folder["name"] for folder in quote["folders"]] == ["Inbox"]
    assert quote["folders"][0]["role"] == "inbox"
    assert quote["flags"] == []
    assert quote["id"] == Message.objects.get(message_id="quote-40@client.example").pk
    one = api.get(base + "/messages", {"limit": 1, "offset": 1}).json()
    assert one["count"] == 2 and len(one["items"]) == 1

    status = api.get(base + "/status").json()
    assert status["messages_stored"] == 2 and status["folders"] >= 2
    assert status["done"] <= status["total"] or status["total"] == 0

    folders = {f["name"]: f for f in api.get(base + "/folders").json()["items"]}
    assert folders["Inbox"]["role"] == "inbox" and folders["Inbox"]["messages"] == 2
    projects = folders["Projects"]
    assert projects["messages"] == 0 and projects["sync_enabled"]
    inbox_only = api.get(base + "/messages", {"folder": projects["id"]}).json()
    assert inbox_only["count"] == 0
    # The messages are the owner's: a colleague cannot list them, nor can an administrator.
    assert ApiClient(org.peer).get(base + "/messages").status_code == 404
    assert ApiClient(org.admin).get(base + "/messages").status_code == 403


def test_folders_are_mapped_and_left_out_of_sync(org):
    mailbox = stored_mailbox(org.rep)
    inbox = Folder.objects.create(
        mailbox=mailbox, remote_id="INBOX", name="INBOX", role="inbox", role_from_server=True
    )
    archive = Folder.objects.create(mailbox=mailbox, remote_id="Old", name="Old")
    api = ApiClient(org.rep)
    base = f"/mailboxes/{mailbox.pk}/folders"
    mapped = api.patch(f"{base}/{archive.pk}", {"role": "inbox", "sync_enabled": False})
    assert mapped.status_code == 200, mapped.content
    assert mapped.json()["role"] == "inbox" and mapped.json()["sync_enabled"] is False
    assert mapped.json()["role_from_server"] is False
    inbox.refresh_from_db()
    assert inbox.role == ""  # a role belongs to one folder
    cleared = api.patch(f"{base}/{archive.pk}", {"role": None}).json()
    assert cleared["role"] == "" and cleared["sync_enabled"] is False

    bad = api.patch(f"{base}/{archive.pk}", {"role": "spam", "sync_enabled": True})
    assert bad.status_code == 422 and fields(bad) == {"role"}
    assert "Choose one of" in bad.json()["detail"][0]["message"]
    archive.refresh_from_db()
    assert archive.sync_enabled is False  # nothing of a refused change is kept
    assert fields(api.patch(f"{base}/{archive.pk}", {"sync_enabled": None})) == {"sync_enabled"}
    assert fields(api.patch(f"{base}/{archive.pk}", {"name": "x"})) == {"name"}

    other = Folder.objects.create(mailbox=stored_mailbox(org.peer), remote_id="X", name="X")
    assert api.patch(f"{base}/{other.pk}", {"role": "sent"}).status_code == 404
    assert api.patch(f"{base}/987654", {"role": "sent"}).status_code == 404


def test_the_openapi_document_describes_the_mailbox_endpoints(db):
    from django.test import Client

    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    base = "/api/v1/mailboxes"
    assert set(paths[base]) == {"get", "post"}
    assert set(paths[base + "/{id}"]) == {"get", "patch"}
    for tail in ("/status", "/folders", "/messages"):
        assert set(paths[base + "/{id}" + tail]) == {"get"}
    for tail in ("/sync", "/activate", "/deactivate"):
        assert set(paths[base + "/{id}" + tail]) == {"post"}
    assert set(paths[base + "/{id}/lock"]) == {"put"}
    assert set(paths[base + "/{id}/folders/{folder_id}"]) == {"patch"}
    assert "202" in paths[base + "/{id}/sync"]["post"]["responses"]
    assert set(paths["/api/v1/messages/send"]) == {"post"}
