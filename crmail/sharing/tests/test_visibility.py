"""Who sees which mail on which record: one test per rule of SPEC F5, and the four
viewpoints (manager, subordinate, peer, outsider) of the issue."""

from __future__ import annotations

import pytest

from crmail.mailboxes.models import Location, Mailbox
from crmail.people.models import Group, ModuleDefault, User
from crmail.sharing import actions
from crmail.sharing.models import SharingSetting
from crmail.sharing.tests.build import mailbox, message, place
from crmail.sharing.visibility import may_see_message, visible_copies, visible_messages
from tests import factories as f

pytestmark = pytest.mark.django_db

CUSTOMER = "jane@customer.test"


def on(viewer: User, record) -> set[int]:  # type: ignore[no-untyped-def]
    return set(
        visible_messages(viewer, type(record).MODULE, record.pk).values_list("pk", flat=True)
    )


def everyone_sees_contacts() -> None:
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})


@pytest.fixture
def jane(org):  # type: ignore[no-untyped-def]
    everyone_sees_contacts()
    return f.contact(org.rep, CUSTOMER)


def test_new_users_share_publicly_with_their_own_domain_excluded(org):
    setting = SharingSetting.objects.get(user=org.rep)
    assert (setting.mode, setting.audience) == ("public", "everyone")
    assert list(setting.excluded_domains.values_list("domain", flat=True)) == ["crmail.test"]


def test_public_mail_is_seen_by_everyone_who_can_access_the_record(org, jane):
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    for viewer in (org.rep, org.peer, org.manager, org.outsider_manager, org.admin):
        assert on(viewer, jane) == {msg.pk}, viewer


def test_mail_on_a_record_needs_access_to_the_record(org):
    jane = f.contact(org.rep, CUSTOMER)  # contacts private: owner and superiors only
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    assert on(org.manager, jane) == {msg.pk}
    assert on(org.peer, jane) == set()
    assert on(org.outsider_manager, jane) == set()
    assert not may_see_message(org.peer, msg)


def test_private_mail_is_seen_by_its_owner_only_whatever_the_hierarchy(org, jane):
    actions.set_sharing(None, org.rep, mode="private")
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    assert on(org.rep, jane) == {msg.pk}
    for viewer in (org.manager, org.peer, org.admin, org.outsider_manager):
        assert on(viewer, jane) == set(), viewer
        assert not may_see_message(viewer, msg)


def test_mail_sent_from_crmail_is_seen_whatever_the_sender_setting(org, jane):
    actions.set_sharing(None, org.rep, mode="private")
    sent = message(org.rep.email, [CUSTOMER], on=[jane], in_mailboxes=[org.rep], sent_by=org.rep)
    assert on(org.peer, jane) == {sent.pk}
    assert may_see_message(org.peer, sent)


def test_shared_with_chosen_peers_reaches_them_and_the_managers_above(org, jane):
    actions.set_sharing(None, org.rep, mode="public", share_with=[org.peer.email])
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    assert on(org.peer, jane) == {msg.pk}
    assert on(org.manager, jane) == {msg.pk}  # above the rep
    assert on(org.admin, jane) == {msg.pk}  # CEO: above too
    assert on(org.outsider_manager, jane) == set()  # another branch


def test_shared_with_a_group_reaches_its_members_by_role(org, jane):
    east = f.user("east-rep@crmail.test", role_name="Rep East")
    team = Group.objects.create(name="East", include_subordinate_roles=True)
    team.roles.add(org.outsider_manager.role)
    actions.set_sharing(None, org.rep, mode="public", share_with=["East"])
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    assert on(org.outsider_manager, jane) == {msg.pk}
    assert on(east, jane) == {msg.pk}  # a role below the group's role
    assert on(org.peer, jane) == set()


def test_mail_with_only_excluded_domains_stays_private(org, jane):
    internal = message(org.rep.email, [org.peer.email], on=[jane], in_mailboxes=[org.rep])
    external = message(org.rep.email, [CUSTOMER], on=[jane], in_mailboxes=[org.rep])
    assert on(org.manager, jane) == {external.pk}
    assert on(org.rep, jane) == {internal.pk, external.pk}


def test_excluded_domains_cover_subdomains_and_skip_the_owner_own_addresses(org, jane):
    actions.set_sharing(None, org.rep, excluded_domains=["partner.test"])
    mailbox(org.rep, "Rex@Private.test")
    to_partner = message(
        "rex@private.test", ["a@eu.partner.test"], on=[jane], in_mailboxes=[org.rep]
    )
    to_both = message(
        org.rep.email, ["a@partner.test", CUSTOMER], on=[jane], in_mailboxes=[org.rep]
    )
    assert on(org.peer, jane) == {to_both.pk}
    assert to_partner.pk in on(org.rep, jane)


def test_custom_shares_exactly_the_chosen_records(org, jane):
    other = f.contact(org.rep, "joe@customer.test")
    actions.set_sharing(None, org.rep, mode="custom")
    actions.share_record(org.rep, org.rep, "contacts", jane.pk)
    with_jane = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    with_joe = message("joe@customer.test", [org.rep.email], on=[other], in_mailboxes=[org.rep])
    assert on(org.peer, jane) == {with_jane.pk}
    assert on(org.peer, other) == set()
    assert on(org.manager, other) == set()
    both = message(CUSTOMER, ["joe@customer.test"], on=[jane, other], in_mailboxes=[org.rep])
    assert both.pk in on(org.peer, jane) and both.pk not in on(org.peer, other)
    assert may_see_message(org.peer, both) and not may_see_message(org.peer, with_joe)


def test_a_deactivated_user_synced_mail_leaves_and_comes_back(org, jane):
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    sent = message(org.rep.email, [CUSTOMER], on=[jane], sent_by=org.rep)
    User.objects.filter(pk=org.rep.pk).update(is_active=False)
    assert on(org.peer, jane) == {sent.pk}
    User.objects.filter(pk=org.rep.pk).update(is_active=True)
    assert on(org.peer, jane) == {msg.pk, sent.pk}


def test_the_same_message_in_two_mailboxes_is_seen_through_either(org, jane):
    actions.set_sharing(None, org.rep, mode="private")
    msg = message(CUSTOMER, [org.rep.email, org.peer.email], on=[jane], in_mailboxes=[org.rep])
    assert on(org.manager, jane) == set()
    place(msg, org.peer)  # the peer's copy: the same message, another location
    assert on(org.manager, jane) == {msg.pk}


def test_own_mail_is_seen_without_links_and_on_records_only_with_access(org):
    actions.set_sharing(None, org.rep, mode="private")
    unlinked = message(CUSTOMER, [org.rep.email], in_mailboxes=[org.rep])
    assert may_see_message(org.rep, unlinked)
    assert set(visible_messages(org.rep).values_list("pk", flat=True)) == {unlinked.pk}
    assert not may_see_message(org.manager, unlinked)


def test_account_lists_its_contacts_mail_for_those_who_see_the_account(org):
    ModuleDefault.objects.update_or_create(module="accounts", defaults={"level": "public_read"})
    acme = f.account(org.rep, "Acme")
    jane = f.contact(org.rep, CUSTOMER, account=acme)  # contacts private
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    assert on(org.peer, jane) == set()
    assert on(org.peer, acme) == {msg.pk}
    assert may_see_message(org.peer, msg)


def test_admins_do_not_see_private_mail_of_others(org, jane):
    actions.set_sharing(None, org.peer, mode="private")
    msg = message(CUSTOMER, [org.peer.email], on=[jane], in_mailboxes=[org.peer])
    assert on(org.admin, jane) == set()
    assert not may_see_message(org.admin, msg)


def test_inactive_or_anonymous_viewers_see_nothing(org, jane):
    from django.contrib.auth.models import AnonymousUser

    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    User.objects.filter(pk=org.rep.pk).update(is_active=False)
    org.rep.refresh_from_db()
    assert not may_see_message(org.rep, msg)
    assert not visible_messages(AnonymousUser()).exists()  # type: ignore[arg-type]


def test_a_user_without_a_setting_shares_nothing(org, jane):
    SharingSetting.objects.filter(user=org.rep).delete()
    msg = message(CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep])
    assert on(org.manager, jane) == set()
    assert on(org.rep, jane) == {msg.pk}


def test_four_viewpoints_see_what_the_spec_says(org):
    """Mark shares only with Claire; Karl manages both; Olga is in another branch
    (the seeds' example)."""
    everyone_sees_contacts()
    karl, mark, claire, olga = org.manager, org.rep, org.peer, org.outsider_manager
    jane = f.contact(mark, CUSTOMER)
    actions.set_sharing(None, mark, mode="public", share_with=[claire])
    actions.set_sharing(None, claire, mode="private")
    marks = message(CUSTOMER, [mark.email], on=[jane], in_mailboxes=[mark])
    claires = message(CUSTOMER, [claire.email], on=[jane], in_mailboxes=[claire])
    sent = message(mark.email, [CUSTOMER], on=[jane], sent_by=mark)
    unlinked = message(mark.email, [karl.email], in_mailboxes=[mark])
    assert on(mark, jane) == {marks.pk, sent.pk}
    assert on(claire, jane) == {marks.pk, claires.pk, sent.pk}
    assert on(karl, jane) == {marks.pk, sent.pk}
    assert on(olga, jane) == {sent.pk}
    assert not may_see_message(karl, unlinked) and may_see_message(mark, unlinked)


def test_visible_messages_wants_both_module_and_record(org):
    with pytest.raises(ValueError):
        visible_messages(org.rep, "contacts")
    with pytest.raises(ValueError):
        visible_messages(org.rep, "widgets", 1)


def test_extra_from_addresses_count_as_the_owner_own(org, jane):
    """Rex sends as sales@private.test too: mail between that address and an excluded
    domain is internal, like mail from his own address; the case of the setting is not
    the case of the mail."""
    actions.set_sharing(None, org.rep, excluded_domains=["partner.test"])
    box = mailbox(org.rep, "rex@crmail.test")
    box.extra_from_addresses = ["Sales@Private.test"]
    box.save(update_fields=["extra_from_addresses"])
    internal = message(
        "sales@private.test", ["a@eu.partner.test"], on=[jane], in_mailboxes=[org.rep]
    )
    other = message("ops@private.test", ["a@partner.test"], on=[jane], in_mailboxes=[org.rep])
    with_customer = message(
        "sales@private.test", ["a@partner.test", CUSTOMER], on=[jane], in_mailboxes=[org.rep]
    )
    assert on(org.peer, jane) == {other.pk, with_customer.pk}
    assert on(org.rep, jane) == {internal.pk, other.pk, with_customer.pk}
    assert not may_see_message(org.peer, internal)


def test_extra_from_addresses_of_another_user_do_not_count(org, jane):
    actions.set_sharing(None, org.rep, excluded_domains=["partner.test"])
    box = mailbox(org.peer, "claire@crmail.test")
    box.extra_from_addresses = ["sales@private.test"]
    box.save(update_fields=["extra_from_addresses"])
    msg = message("sales@private.test", ["a@partner.test"], on=[jane], in_mailboxes=[org.rep])
    assert on(org.manager, jane) == {msg.pk}


def test_odd_extra_from_addresses_values_are_no_addresses(org, jane):
    """Not a list (a bad write), or a list with something else than strings: no error, and
    nothing in it counts as the owner's."""
    actions.set_sharing(None, org.rep, excluded_domains=["partner.test"])
    mailbox(org.rep, "rex@crmail.test")
    msg = message("sales@private.test", ["a@partner.test"], on=[jane], in_mailboxes=[org.rep])
    for odd in ("sales@private.test", {"sales@private.test": 1}, [1, None, ["x"]], []):
        Mailbox.objects.filter(owner=org.rep).update(extra_from_addresses=odd)
        assert on(org.peer, jane) == {msg.pk}, odd


def copies(viewer: User, record, msg) -> set[int]:  # type: ignore[no-untyped-def]
    """The owners of the copies of ``msg`` on ``record`` that ``viewer`` may see."""
    rows = Location.objects.filter(
        visible_copies(viewer, type(record).MODULE, record.pk), message=msg
    )
    return set(rows.values_list("mailbox__owner_id", flat=True))


def test_visible_copies_are_those_the_viewer_may_see_one_by_one(org, jane):
    """One message in three mailboxes: the rep's (public), the peer's (private), the
    manager's (custom, Jane shared)."""
    actions.set_sharing(None, org.peer, mode="private")
    actions.set_sharing(None, org.manager, mode="custom")
    actions.share_record(org.manager, org.manager, "contacts", jane.pk)
    msg = message(
        CUSTOMER, [org.rep.email], on=[jane], in_mailboxes=[org.rep, org.peer, org.manager]
    )
    rep, peer, manager = org.rep.pk, org.peer.pk, org.manager.pk
    assert copies(org.rep, jane, msg) == {rep, manager}
    assert copies(org.peer, jane, msg) == {rep, peer, manager}
    assert copies(org.manager, jane, msg) == {rep, manager}
    assert copies(org.outsider_manager, jane, msg) == {rep, manager}
    other = f.contact(org.rep, "joe@customer.test")  # not shared by the manager
    assert copies(org.outsider_manager, other, msg) == {rep}
    User.objects.filter(pk=org.rep.pk).update(is_active=False)
    assert copies(org.outsider_manager, jane, msg) == {manager}


def test_visible_copies_skip_internal_mail_and_inactive_viewers(org, jane):
    internal = message(org.rep.email, [org.peer.email], on=[jane], in_mailboxes=[org.rep])
    assert copies(org.manager, jane, internal) == set()
    assert copies(org.rep, jane, internal) == {org.rep.pk}
    User.objects.filter(pk=org.rep.pk).update(is_active=False)
    org.rep.refresh_from_db()
    assert copies(org.rep, jane, internal) == set()
