"""The back-office admin at /admin/ lists and searches every registered model."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from crmail.people.models import User
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_every_back_office_page_opens_for_staff(org, client_for):
    f.contact(org.rep, "x@y.example", account=f.account(org.rep, "Acme"))
    f.deal(org.rep, "Big one")
    boss = User.objects.create_superuser("root@crmail.test", f.PASSWORD, name="Root")
    client = client_for(boss)
    for model in admin.site._registry:
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        assert client.get(changelist + "?q=acme").status_code == 200, changelist
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert client.get(change).status_code == 200, change


def test_back_office_is_closed_to_non_staff(org, client_for):
    for user in (org.rep, org.admin):  # an administrator profile alone is not staff
        response = client_for(user).get("/admin/crm/contact/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
