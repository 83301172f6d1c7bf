"""Organisation addresses (SPEC F16): added by administrators, proved by a code mailed
through a real SMTP sink, allowed per profile; refusals in words."""

from __future__ import annotations

import pytest

from crmail.orgaddresses import actions, queries
from crmail.orgaddresses.models import OrganisationAddress
from crmail.orgaddresses.tests.helpers import mailed_code
from crmail.people.models import Profile
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(own_mail_sink):
    return own_mail_sink


@pytest.fixture
def sales_profile():
    return Profile.objects.create(name="Sales", permissions={})


def test_the_code_mailed_to_the_address_verifies_it(org, sink):
    added = actions.add(org.admin, " Sales@Acme.Example ", name="Acme Sales", everyone=True)
    assert added.address == "sales@acme.example" and not added.verified
    assert queries.usable(org.rep, "sales@acme.example") is None  # not before the code

    actions.send_code(added, org.admin)
    code = mailed_code(sink, to="sales@acme.example")
    assert queries.waiting_code(added).address == "sales@acme.example"
    with pytest.raises(actions.Invalid, match="not right"):
        actions.verify(added, org.admin, "000000" if code != "000000" else "111111")
    actions.verify(added, org.admin, code)

    added.refresh_from_db()
    assert added.verified_at is not None
    assert queries.usable(org.rep, "SALES@acme.example") == added
    with pytest.raises(actions.CodeNotSent, match="verified already"):
        actions.send_code(added, org.admin)


def test_a_changed_address_is_verified_again(org, sink):
    added = actions.add(org.admin, "sales@acme.example", everyone=True)
    actions.send_code(added, org.admin)
    actions.verify(added, org.admin, mailed_code(sink))

    actions.change(added, org.admin, address="sales@acme.example")  # the same: still verified
    assert OrganisationAddress.objects.get().verified
    actions.change(added, org.admin, address="hello@acme.example", name="Acme")
    added.refresh_from_db()
    assert (added.address, added.name, added.verified) == ("hello@acme.example", "Acme", False)
    assert queries.usable(org.rep, "hello@acme.example") is None
    with pytest.raises(actions.Invalid, match="No code is waiting"):
        actions.verify(added, org.admin, "123456")


def test_who_may_send_as_it_follows_the_profiles(org, sink, sales_profile):
    seller = f.user("seller@crmail.test")
    seller.profile = sales_profile
    seller.save(update_fields=["profile"])
    added = actions.add(org.admin, "sales@acme.example", profile_ids=[sales_profile.pk])
    actions.send_code(added, org.admin)
    actions.verify(added, org.admin, mailed_code(sink))

    assert queries.usable(seller, "sales@acme.example") == added
    assert queries.usable(org.admin, "sales@acme.example") == added  # administrators always
    assert queries.usable(org.rep, "sales@acme.example") is None  # Standard is not allowed
    assert "Your profile (Standard) may not send as the organisation address" in (
        queries.refusal(org.rep, "sales@acme.example")
    )
    assert queries.who_may(added) == "Administrators and the profile Sales"

    actions.change(added, org.admin, profile_ids=[], everyone=True)
    assert queries.usable(org.rep, "sales@acme.example") == added
    assert queries.who_may(added) == "Everyone"
    org.rep.is_active = False
    org.rep.save(update_fields=["is_active"])
    assert queries.usable(org.rep, "sales@acme.example") is None


def test_an_unverified_address_is_refused_in_words(org):
    actions.add(org.admin, "support@acme.example", everyone=True)
    assert "is not verified yet" in queries.refusal(org.rep, "support@acme.example")
    assert queries.refusal(org.rep, "nobody@acme.example") == ""  # not one at all


def test_bad_input_is_answered_in_words(org, sales_profile):
    with pytest.raises(actions.Invalid) as err:
        actions.add(org.admin, "not an address", name="Sales\nBcc: x@y.z", profile_ids=[99999])
    assert {e["field"] for e in err.value.errors} == {"address", "name", "profile_ids"}
    assert "is not a valid email address" in str(err.value)
    assert "There is no profile with the id 99999" in str(err.value)
    actions.add(org.admin, "sales@acme.example")
    with pytest.raises(actions.Invalid, match="is an organisation address already"):
        actions.add(org.admin, "SALES@acme.example")
    with pytest.raises(actions.Invalid, match="at most 200 characters"):
        actions.add(org.admin, "big@acme.example", name="x" * 201)


def test_only_administrators_manage_them(org, sink):
    with pytest.raises(actions.NotAllowed, match="Only administrators"):
        actions.add(org.rep, "sales@acme.example")
    added = actions.add(org.admin, "sales@acme.example")
    for attempt in (
        lambda: actions.change(added, org.rep, everyone=True),
        lambda: actions.send_code(added, org.rep),
        lambda: actions.verify(added, org.rep, "123456"),
        lambda: actions.delete(added, org.rep),
    ):
        with pytest.raises(actions.NotAllowed):
            attempt()
    assert not sink.messages


def test_a_code_that_cannot_be_mailed_says_why(org, settings):
    settings.CRMAIL_SMTP_URL = ""
    added = actions.add(org.admin, "sales@acme.example")
    with pytest.raises(actions.CodeNotSent, match="CRMAIL_SMTP_URL"):
        actions.send_code(added, org.admin)


def test_deleting_forgets_the_address_and_its_code(org, sink):
    from crmail.mail.models import VerificationCode

    added = actions.add(org.admin, "sales@acme.example", everyone=True)
    actions.send_code(added, org.admin)
    actions.delete(added, org.admin)
    assert not OrganisationAddress.objects.exists()
    assert not VerificationCode.objects.exists()
