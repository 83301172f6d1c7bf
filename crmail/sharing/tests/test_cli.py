"""`crmail sharing set`, `show` and `classify`, as an administrator uses them."""

from __future__ import annotations

import pytest

from crmail.config.cli import main
from crmail.people.models import Group
from crmail.sharing.models import SharingSetting

pytestmark = pytest.mark.django_db


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_set_public_with_chosen_people_and_domains(capsys, org):
    Group.objects.create(name="Key accounts")
    status, out, err = run(
        capsys,
        "sharing",
        "set",
        org.rep.email,
        "public",
        "--share-with",
        org.peer.email,
        "--share-with",
        "Key accounts",
        "--exclude-domain",
        "crmail.test",
        "--exclude-domain",
        "partner.example",
        "--lock",
    )
    assert status == 0, err
    assert "group Key accounts, peer@crmail.test" in out
    setting = SharingSetting.objects.get(user=org.rep)
    assert (setting.mode, setting.audience, setting.locked) == ("public", "chosen", True)
    assert setting.excluded_domains.count() == 2


def test_set_private_keeps_domains_and_show_lists_everyone(capsys, org):
    status, out, err = run(capsys, "sharing", "set", org.rep.email, "private")
    assert status == 0, err
    status, out, err = run(capsys, "sharing", "show")
    assert status == 0, err
    lines = {line.split()[1]: line for line in out.splitlines() if "@crmail.test" in line}
    assert "Private" in lines["rep@crmail.test"]
    assert "everyone who can access the record" in lines["peer@crmail.test"]
    assert SharingSetting.objects.get(user=org.rep).excluded_domains.count() == 1
    status, out, err = run(capsys, "sharing", "show", org.rep.email)
    assert status == 0 and "private" in out and "crmail.test" in out


def test_mistakes_are_said_with_the_option_names(capsys, org):
    status, _out, err = run(
        capsys, "sharing", "set", org.rep.email, "public", "--share-with", "ghost@crmail.test",
        "--exclude-domain", "not a domain",
    )  # fmt: skip
    assert status == 1
    assert "--share-with: There is no user 'ghost@crmail.test'" in err
    assert "--exclude-domain: 'not a domain' is not a domain" in err
    status, _, err = run(capsys, "sharing", "set", "nobody@crmail.test", "private")
    assert status == 1 and "no user" in err
    status, _, err = run(capsys, "sharing", "set", org.rep.email, "custom", "--share-with", "x")
    assert status == 1 and "public mode only" in err


def test_classify_works_out_the_classes_reports_read_and_says_so(capsys, org):
    from crmail.sharing.models import MessageClass, VisibilityChange
    from crmail.sharing.tests.build import message

    mail = [
        message("jane@customer.test", [org.rep.email], in_mailboxes=[org.rep]) for _ in range(3)
    ]
    status, out, err = run(capsys, "sharing", "classify")
    assert status == 0, err
    assert "changes to mail wait for their visibility classes" in out
    assert "Visibility classes up to date" in out
    assert not VisibilityChange.objects.exists()
    assert set(MessageClass.objects.values_list("message_id", flat=True)) == {m.pk for m in mail}
    status, out, _ = run(capsys, "sharing", "classify")
    assert status == 0
    assert "Every message's visibility class is up to date." in out
