"""A record's Emails list: the views of SPEC F4 and threads, on top of the visibility layer."""

from __future__ import annotations

import pytest

from crmail.linking.tests.record_mail import Scene, scene
from crmail.people.models import User
from crmail.sharing import actions, emails
from crmail.sharing.tests.build import place

pytestmark = pytest.mark.django_db


@pytest.fixture
def s(org) -> Scene:  # type: ignore[no-untyped-def]
    return scene(org)


def ids(viewer: User, s: Scene, view: str = "all", user: User | None = None) -> set[int]:
    qs = emails.record_emails(viewer, "contacts", s.jane.pk, view, user.pk if user else None)
    return set(qs.values_list("pk", flat=True))


def test_each_viewpoint_sees_what_sharing_allows(s):
    everything = s.ids("first", "reply", "claires", "sent", "popped")
    assert ids(s.claire, s) == everything
    assert ids(s.mark, s) == everything - s.ids("claires")
    assert ids(s.karl, s) == everything - s.ids("claires")
    assert ids(s.olga, s) == s.ids("sent", "popped")


def test_views_narrow_what_the_viewer_sees(s):
    assert ids(s.claire, s, "sent") == s.ids("sent")
    assert ids(s.claire, s, "imap") == s.ids("first", "reply", "claires")
    assert ids(s.claire, s, "pop") == s.ids("popped")
    assert ids(s.claire, s, "user", s.mark) == s.ids("first", "reply", "sent")
    assert ids(s.claire, s, "user", s.claire) == s.ids("claires")
    assert ids(s.olga, s, "imap") == set()
    assert ids(s.olga, s, "user", s.claire) == set()
    assert ids(s.olga, s, "user", s.mark) == s.ids("sent")


def test_newest_first(s):
    qs = emails.record_emails(s.claire, "contacts", s.jane.pk)
    assert list(qs.values_list("pk", flat=True)) == [
        s.popped.pk,
        s.sent.pk,
        s.claires.pk,
        s.reply.pk,
        s.first.pk,
    ]


def test_threads_fold_to_their_newest_visible_message_with_a_count(s):
    def heads(viewer: User, view: str = "all") -> list[tuple[int, int]]:
        qs = emails.thread_heads(emails.record_emails(viewer, "contacts", s.jane.pk, view))
        return [(m.pk, m.thread_count) for m in qs]

    assert heads(s.claire) == [(s.popped.pk, 1), (s.sent.pk, 1), (s.claires.pk, 3)]
    assert heads(s.karl) == [(s.popped.pk, 1), (s.sent.pk, 1), (s.reply.pk, 2)]
    assert heads(s.olga) == [(s.popped.pk, 1), (s.sent.pk, 1)]
    assert heads(s.claire, "user") == []  # no user chosen: nothing
    assert emails.thread_heads(emails.record_emails(s.karl, "contacts", s.jane.pk)).count() == 3
    qs = emails.record_emails(s.karl, "contacts", s.jane.pk)
    assert list(emails.thread_messages(qs, s.reply).values_list("pk", flat=True)) == [
        s.reply.pk,
        s.first.pk,
    ]


def test_the_users_to_choose_are_those_whose_mail_the_viewer_sees(s):
    def names(viewer: User) -> set[str]:
        return {u.email for u in emails.mail_users(viewer, "contacts", s.jane.pk)}

    assert names(s.claire) == {s.mark.email, s.claire.email, s.pat.email}
    assert names(s.olga) == {s.mark.email, s.pat.email}


def test_bad_views_name_their_field(s):
    for view, user, field in (
        ("nope", None, "view"),
        ("user", None, "user"),
        ("all", s.mark.pk, "user"),
        ("user", 10**9, "user"),
    ):
        with pytest.raises(emails.BadView) as caught:
            emails.check_view(view, user)
        assert caught.value.field == field
    emails.check_view("user", s.mark.pk)


def test_linked_because_is_said_once_per_reason(s):
    found = emails.extras("contacts", s.jane.pk, [s.sent.pk], recipients=True)
    assert [r.reason for r in found.reasons[s.sent.pk]] == ["manual"]
    assert found.reasons[s.sent.pk][0].explanation.startswith("Linked by")
    assert found.to[s.sent.pk] == ["jane@customer.test"]


def test_views_match_only_through_copies_the_viewer_may_see(s):
    """Claire keeps her mail private, but also holds the message Mark sent from crmail and
    Pat's popped one: Olga sees both, yet neither may show under Claire, nor through
    Claire's IMAP copy, nor make Claire a choice."""
    place(s.sent, s.claire)
    place(s.popped, s.claire)
    assert ids(s.olga, s) == s.ids("sent", "popped")
    assert ids(s.olga, s, "user", s.claire) == set()
    assert ids(s.olga, s, "imap") == set()
    assert ids(s.olga, s, "pop") == s.ids("popped")
    assert ids(s.olga, s, "user", s.mark) == s.ids("sent")
    assert ids(s.olga, s, "user", s.pat) == s.ids("popped")
    assert {u.email for u in emails.mail_users(s.olga, "contacts", s.jane.pk)} == {
        s.mark.email,
        s.pat.email,
    }
    # Claire's own copies are hers to see in every view.
    assert ids(s.claire, s, "user", s.claire) == s.ids("claires", "sent", "popped")
    assert ids(s.claire, s, "imap") == s.ids("first", "reply", "claires", "sent", "popped")


def test_a_manager_sees_a_view_through_the_shared_copy_only(s):
    """Karl manages Mark (who shares with Claire) and Claire (private): the thread's first
    message, also in Claire's mailbox, shows under Mark but not under Claire."""
    place(s.first, s.claire)
    assert ids(s.karl, s, "user", s.mark) == s.ids("first", "reply", "sent")
    assert ids(s.karl, s, "user", s.claire) == set()
    assert s.claire.email not in {u.email for u in emails.mail_users(s.karl, "contacts", s.jane.pk)}


def test_a_private_copy_of_a_crmail_sent_message_stays_out_of_the_protocol_views(s):
    """Sent from crmail, the message is visible to all who can open Jane; its Sent copy in
    Mark's IMAP mailbox counts for the IMAP view only where that copy is visible."""
    actions.set_sharing(None, s.mark, mode="private")
    place(s.sent, s.mark)
    assert s.sent.pk in ids(s.olga, s)
    assert ids(s.olga, s, "imap") == set()
    assert ids(s.olga, s, "user", s.mark) == s.ids("sent")  # the sender, by SentMessage
    assert ids(s.mark, s, "imap") == s.ids("first", "reply", "sent")
