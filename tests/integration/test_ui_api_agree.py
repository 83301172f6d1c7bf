"""The web UI and the REST API show each user exactly the same records.

Manager, subordinate, peer, a manager of another branch and an admin, over every module,
with the module private and then public read-only: the record links on the list page
equal the ids the API lists, and both equal the access layer's answer.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from crmail.crm.models import RECORD_MODELS
from crmail.people import access
from crmail.people.models import ModuleDefault
from tests import factories as f

pytestmark = pytest.mark.django_db


def ui_ids(user, module: str) -> set[int]:
    client = Client()
    client.force_login(user)
    body = client.get(f"/{module}/").content.decode()
    return {int(pk) for pk in re.findall(rf'href="/{module}/(\d+)/"', body)}


def api_ids(user, module: str) -> set[int]:
    client = Client()
    answer = client.get(
        f"/api/v1/{module}", {"limit": 200}, HTTP_AUTHORIZATION=f"Bearer {f.token(user)}"
    ).json()
    return {item["id"] for item in answer["items"]}


@pytest.mark.parametrize("level", ["private", "public_read"])
def test_ui_and_api_agree_for_every_viewpoint(org, level):
    ModuleDefault.objects.update(level=level)
    owners = [org.admin, org.manager, org.rep, org.peer, org.outsider_manager]
    for owner in owners:
        f.contact(owner)
        f.lead(owner)
        f.account(owner)
        f.deal(owner)
    for viewer in owners:
        for module, model in RECORD_MODELS.items():
            expected = set(access.visible(viewer, model).values_list("pk", flat=True))
            assert ui_ids(viewer, module) == expected, (viewer.email, module)
            assert api_ids(viewer, module) == expected, (viewer.email, module)
    # And the rules themselves, from the manager's and the peer's side, when private:
    if level == "private":
        assert len(ui_ids(org.manager, "contacts")) == 3  # own, the rep's, the peer's
        assert len(ui_ids(org.peer, "contacts")) == 1
        assert len(ui_ids(org.admin, "contacts")) == 5
