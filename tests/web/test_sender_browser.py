"""An unknown sender made a contact in real Chromium: prefilled from the signature, saved,
and the contact's page lists the sender's mail."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from playwright.sync_api import expect

from crmail.crm.models import Contact
from crmail.web.tests.mail_samples import deliver
from tests import factories as f

pytestmark = pytest.mark.browser

SENDER = "j.ruiz@levante-distribuciones.es"
SIGNED = """Hola Rex,

¿Podemos hablar mañana sobre el pedido de primavera?

Un saludo,

Javier Ruiz
Director de Compras
Distribuciones Levante S.L.
Teléfono: +34 963 52 14 70
"""


def mail(subject: str, text: str, day: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Javier Ruiz <{SENDER}>"
    msg["To"] = "Rex Rep <rep@crmail.test>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 3, day, 9, 30, tzinfo=UTC))
    msg.set_content(text)
    return msg.as_bytes()


def test_add_an_unknown_sender_as_a_contact_and_find_the_mail_on_it(app):
    rep = f.org().rep
    deliver(rep, mail("Primer contacto", "Hola, ¿nos conocemos de la feria?", 1))
    order = deliver(rep, mail("Pedido de primavera", SIGNED, 3))
    page = app.page
    app.sign_in(rep.email, f.PASSWORD)

    app.go(f"/messages/{order.pk}/")
    adding = page.get_by_role("group", name=f"Add {SENDER} to crmail")
    expect(adding.get_by_role("link", name="Add as lead")).to_be_visible()
    page.mouse.move(0, 0)
    app.shot("sender-message")
    adding.get_by_role("link", name="Add as contact").click()

    expect(page.get_by_role("heading", name=f"New contact from {SENDER}")).to_be_visible()
    expect(page.get_by_label("First name")).to_have_value("Javier")
    expect(page.get_by_label("Last name")).to_have_value("Ruiz")
    expect(page.get_by_label("Email", exact=True)).to_have_value(SENDER)
    expect(page.get_by_label("Title")).to_have_value("Director de Compras")
    expect(page.get_by_label("Phone")).to_have_value("+34 963 52 14 70")
    expect(page.get_by_label("New account")).to_have_value("Distribuciones Levante S.L.")
    page.mouse.move(0, 0)
    app.shot("sender-form")
    page.get_by_role("button", name="Create contact").click()

    contact = Contact.objects.get()
    expect(page).to_have_url(re.compile(rf"/contacts/{contact.pk}/$"))
    expect(page.get_by_role("status")).to_contain_text(
        "The contact Javier Ruiz was created, with 2 messages you can see"
    )
    expect(page.get_by_role("heading", name="Javier Ruiz", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Distribuciones Levante S.L.")).to_be_visible()
    emails = page.get_by_role("region", name=re.compile("^Emails"))
    rows = emails.locator(".email-list > .email-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Pedido de primavera")
    expect(rows.nth(1)).to_contain_text("Primer contacto")
    page.mouse.move(0, 0)
    app.shot("sender-contact")

    app.go(f"/messages/{order.pk}/")  # the sender is known now: linked, no more buttons
    expect(page.get_by_role("link", name=re.compile(f"Javier Ruiz <{SENDER}>"))).to_be_visible()
    expect(page.get_by_role("link", name="Add as contact")).to_have_count(0)
    assert page.js_errors == []
