"""``crmail group``: groups from the command line, through the same writer as the pages."""

from __future__ import annotations

import pytest

from crmail.config.cli import main
from crmail.people.models import Group
from tests import factories as f

pytestmark = pytest.mark.django_db


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_add_change_list_and_remove_a_group(capsys):
    f.user("ann@example.com"), f.user("bob@example.com")
    status, out, _ = run(
        capsys, "group", "add", "West", "--member", "ann@example.com", "--role", "Manager"
    )
    assert status == 0 and "Added group West" in out
    group = Group.objects.get(name="West")
    assert [u.email for u in group.users.all()] == ["ann@example.com"]

    status, out, _ = run(
        capsys, "group", "change", "west", "--member", "bob@example.com", "--include-roles-below"
    )
    assert status == 0
    group.refresh_from_db()
    assert [u.email for u in group.users.all()] == ["bob@example.com"]
    assert group.include_subordinate_roles and [r.name for r in group.roles.all()] == ["Manager"]

    status, out, _ = run(capsys, "group", "list")
    assert status == 0 and "West" in out and "bob@example.com" in out and "Manager and below" in out

    status, out, _ = run(capsys, "group", "remove", "West")
    assert status == 0 and not Group.objects.exists()


def test_problems_are_said_with_the_option_that_caused_them(capsys):
    status, _, err = run(capsys, "group", "add", "West", "--member", "nobody@example.com")
    assert status == 1
    assert "--member: There is no user 'nobody@example.com'" in err
    assert "Traceback" not in err
    status, _, err = run(capsys, "group", "change", "Nowhere", "--description", "x")
    assert status == 1 and "no group named 'Nowhere'" in err
