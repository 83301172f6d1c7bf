"""The mailbox writers: connect, change, activate, deactivate (keeping or discarding the
synced mail), lock, and map folders, with who may do each."""

from __future__ import annotations

import pytest

from crmail.mail.models import Message
from crmail.mailboxes import actions
from crmail.mailboxes.models import Folder, Location, Mailbox, SyncState
from crmail.mailboxes.tasks import run_sync
from crmail.people.actions import Invalid, NotAllowed
from crmail.people.models import Profile
from tests import factories as f

pytestmark = pytest.mark.django_db


def mail(n: int, tag: str = "a") -> bytes:
    return (
        f"From: Client <c{n}@example.com>\r\nTo: rep@crmail.test\r\nSubject: {tag} {n}\r\n"
        f"Message-ID: <{tag}{n}@example.com>\r\n\r\nBody {n}\r\n"
    ).encode()


@pytest.fixture
def synced(dovecot):
    name, password = dovecot.new_user()
    dovecot.create_mailbox(name, "Kept")
    for n in range(3):
        dovecot.deliver(name, mail(n))
    mailbox = f.mailbox(dovecot, name, password)
    run_sync(mailbox)
    mailbox.refresh_from_db()
    return dovecot, name, password, mailbox


def test_deactivating_and_keeping_the_mail(synced):
    _, _, _, mailbox = synced
    removed = actions.deactivate_mailbox(mailbox.owner, mailbox, keep_mail=True)
    mailbox.refresh_from_db()
    assert removed == 0
    assert not mailbox.is_active and mailbox.state == SyncState.DISABLED
    assert Location.objects.filter(mailbox=mailbox).count() == 3


def test_deactivating_and_discarding_keeps_mail_other_mailboxes_hold(synced):
    server, _, _, mailbox = synced
    # A colleague's mailbox holds one of the same messages.
    other_name, other_password = server.new_user()
    server.deliver(other_name, mail(0))
    other = f.mailbox(server, other_name, other_password)
    run_sync(other)
    removed = actions.deactivate_mailbox(mailbox.owner, mailbox, keep_mail=False)
    assert removed == 2
    assert not Location.objects.filter(mailbox=mailbox).exists()
    assert list(Message.objects.values_list("message_id", flat=True)) == ["a0@example.com"]
    # Activated again, it syncs everything back from the start.
    actions.activate_mailbox(mailbox.owner, mailbox)
    run_sync(mailbox)
    assert Location.objects.filter(mailbox=mailbox).count() == 3


def test_one_active_mailbox_per_user(synced):
    _, _, _, first = synced
    second = Mailbox.objects.create(owner=first.owner, email="other@crmail.test", is_active=False)
    actions.activate_mailbox(first.owner, second)
    first.refresh_from_db()
    assert second.is_active and not first.is_active and first.state == SyncState.DISABLED


def test_a_locked_configuration_is_for_admins_only(synced):
    _, _, _, mailbox = synced
    admin, peer = f.user(admin=True), f.user()
    with pytest.raises(NotAllowed):
        actions.set_locked(peer, mailbox.owner, True)
    assert actions.set_locked(admin, mailbox.owner, True) == 1
    assert actions.is_locked_for(mailbox.owner, mailbox.owner)
    assert not actions.is_locked_for(admin, mailbox.owner)
    for attempt in (
        lambda: actions.deactivate_mailbox(mailbox.owner, mailbox, keep_mail=True),
        lambda: actions.update_mailbox(mailbox.owner, mailbox, {"store_sent_on_server": False}),
        lambda: actions.connect_mailbox(mailbox.owner, mailbox.owner, {"email": "x@y.test"}),
    ):
        with pytest.raises(NotAllowed, match="locked"):
            attempt()
    actions.update_mailbox(admin, mailbox, {"store_sent_on_server": False})
    with pytest.raises(NotAllowed):
        actions.deactivate_mailbox(peer, mailbox, keep_mail=True)


def test_only_mail_integration_profiles_connect(dovecot):
    name, password = dovecot.new_user()
    user = f.user()
    profile = Profile.objects.create(name="No mail", mail_integration=False)
    user.profile = profile
    user.save()
    fields = {
        "email": f"{name}@crmail.test",
        "host": "127.0.0.1",
        "port": dovecot.imap_port,
        "security": "none",
        "login": name,
        "secret": password,
    }
    with pytest.raises(NotAllowed, match="Mail Integration"):
        actions.connect_mailbox(user, user, fields)
    assert actions.connect_mailbox(f.user(admin=True), f.user(), fields).is_active


def test_changing_the_password_tests_it_and_an_empty_one_keeps_the_old(synced):
    _, _, password, mailbox = synced
    with pytest.raises(Invalid) as error:
        actions.update_mailbox(mailbox.owner, mailbox, {"secret": "wrong"})
    assert error.value.errors[0]["field"] == "incoming"
    assert Mailbox.objects.get(pk=mailbox.pk).secret == password
    actions.update_mailbox(mailbox.owner, mailbox, {"secret": "", "import_folders": ["INBOX"]})
    mailbox.refresh_from_db()
    assert mailbox.secret == password
    assert set(mailbox.folders.filter(sync_enabled=True).values_list("remote_id", flat=True)) == {
        "INBOX"
    }
    with pytest.raises(Invalid) as error:
        actions.update_mailbox(mailbox.owner, mailbox, {"extra_from_addresses": ["not mail"]})
    assert error.value.errors[0]["field"] == "extra_from_addresses"
    with pytest.raises(Invalid):
        actions.update_mailbox(mailbox.owner, mailbox, {"owner": f.user()})


def test_guessing_a_mail_password_through_the_connection_test_meets_a_limit(synced, settings):
    settings.CRMAIL_LOGIN_MAX_FAILURES = 3
    _, _, password, mailbox = synced
    for guess in ("one", "two", "three"):
        with pytest.raises(Invalid) as error:
            actions.update_mailbox(mailbox.owner, mailbox, {"secret": guess})
        assert "Too many" not in error.value.errors[0]["message"]
        mailbox.refresh_from_db()
    with pytest.raises(Invalid) as error:  # the right password is not even tried now
        actions.update_mailbox(mailbox.owner, mailbox, {"secret": password + "!"})
    assert error.value.errors[0]["message"].startswith("Too many refused sign-ins")
    other = f.user()  # another user's mistakes are their own
    with pytest.raises(Invalid) as error:
        actions.test_connection(Mailbox(owner=other, **_settings_of(mailbox, secret="four")))
    assert "Too many" not in error.value.errors[0]["message"]


def _settings_of(mailbox: Mailbox, **changes: str) -> dict[str, object]:
    keep = ("email", "protocol", "host", "port", "security", "login", "secret")
    return {name: getattr(mailbox, name) for name in keep} | changes


def test_mapping_a_folder_role_moves_it(synced):
    _, _, _, mailbox = synced
    kept = Folder.objects.get(mailbox=mailbox, remote_id="Kept")
    inbox = Folder.objects.get(mailbox=mailbox, remote_id="INBOX")
    actions.map_folder(mailbox.owner, kept, "archive")
    kept.refresh_from_db()
    assert kept.role == "archive" and not kept.role_from_server
    actions.map_folder(mailbox.owner, inbox, "archive")
    kept.refresh_from_db()
    assert kept.role == "" and Folder.objects.get(pk=inbox.pk).role == "archive"
    with pytest.raises(Invalid):
        actions.map_folder(mailbox.owner, kept, "spam-ish")
    actions.set_folder_sync(mailbox.owner, kept, False)
    assert not Folder.objects.get(pk=kept.pk).sync_enabled


def test_users_see_their_own_mailboxes_and_admins_all(synced):
    _, _, _, mailbox = synced
    assert list(actions.mailboxes_for(mailbox.owner)) == [mailbox]
    assert not actions.mailboxes_for(f.user()).exists()
    assert mailbox in actions.mailboxes_for(f.user(admin=True))
