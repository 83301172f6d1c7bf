"""Names, titles, phones and companies read from real-looking mail, in four languages."""

from __future__ import annotations

import pytest

from crmail.linking import signatures as s

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

ENGLISH = """Hi Rex,

thanks for the quote. Could you send the updated price list?

Best regards,
Jane Doe
Head of Purchasing
Northwind Traders Ltd.
Tel: +44 20 7946 0958
Mobile: +44 7700 900123
www.northwind.example

On Tue, 3 Mar 2026 at 10:00, Rex Rep <rep@crmail.test> wrote:
> Hello Jane,
> here is the quote.
> Best regards,
> Rex
> Crmail Inc.
"""

GERMAN = """Hallo Herr Rep,

anbei die Unterlagen zur Anfrage.

Mit freundlichen Grüßen

Hans Müller
Leiter Einkauf

Maschinenbau Schmidt GmbH & Co. KG
Industriestraße 12 · 70565 Stuttgart
Tel. +49 711 123456-0 · Fax +49 711 123456-99
Geschäftsführer: Peter Schmidt · Amtsgericht Stuttgart HRB 12345

-----Ursprüngliche Nachricht-----
Von: Rex Rep <rep@crmail.test>
Gesendet: Montag, 2. März 2026 09:12
"""

FRENCH = """Bonjour,

Je vous confirme notre rendez-vous de jeudi.

Cordialement,
--\x20
Claire Dubois
Directrice commerciale | Lumière Conseil SARL
Tél. : +33 1 42 68 53 00
Portable : +33 6 12 34 56 78

Le lun. 2 mars 2026 à 09:30, Rex Rep <rep@crmail.test> a écrit :
> Bonjour Claire,
"""

SPANISH = """Hola Rex,

¿Podemos hablar mañana sobre el pedido?

Un saludo,

Javier Ruiz
Director de Compras
Distribuciones Levante S.L.
Teléfono: +34 963 52 14 70

El mar, 3 mar 2026 a las 11:00, Rex Rep (<rep@crmail.test>) escribió:
> Hola Javier,
> Saludos,
> Rex Rep
> Otra Empresa S.A.
"""

NO_SUFFIX = """Thanks, that works for us.

--\x20
Ana Lima
Sales Manager
Orbital
+1 (415) 555-0132
"""


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        (
            ENGLISH,
            "Jane Doe",
            s.Signature(
                "Jane Doe",
                "Head of Purchasing",
                "Northwind Traders Ltd.",
                "+44 20 7946 0958",
                "+44 7700 900123",
            ),
        ),
        (
            GERMAN,
            "Müller, Hans",
            s.Signature(
                "Hans Müller",
                "Leiter Einkauf",
                "Maschinenbau Schmidt GmbH & Co. KG",
                "+49 711 123456-0",
                "",
            ),
        ),
        (
            FRENCH,
            "Claire DUBOIS",
            s.Signature(
                "Claire Dubois",
                "Directrice commerciale",
                "Lumière Conseil SARL",
                "+33 1 42 68 53 00",
                "+33 6 12 34 56 78",
            ),
        ),
        (
            SPANISH,
            "Javier Ruiz",
            s.Signature(
                "Javier Ruiz",
                "Director de Compras",
                "Distribuciones Levante S.L.",
                "+34 963 52 14 70",
                "",
            ),
        ),
        (NO_SUFFIX, "", s.Signature("Ana Lima", "Sales Manager", "Orbital", "+1 (415) 555-0132")),
    ],
    ids=["english", "german", "french", "spanish", "line-under-the-title"],
)
def test_signature_gives_title_phones_and_company(text, name, expected):
    lines = s.signature_lines(text)
    assert s.read_signature(lines, name) == expected


def test_the_quoted_signature_of_the_user_is_not_the_senders():
    # The reply has no signature of its own; the quoted one (Rex's, Crmail Inc.) is not read.
    text = "Sounds good, see you then.\n\nOn Tue, 3 Mar 2026, Rex <rep@crmail.test> wrote:\n" + (
        "> Best regards,\n> Rex Rep\n> Crmail Inc.\n"
    )
    lines = s.signature_lines(text)
    assert s.read_signature(lines, "Bob Stone").company == ""


def test_a_sentence_at_the_end_is_not_a_signature():
    text = "Hi,\n\nplease call me.\n\nWe are registered as Foo Ltd in England and Wales."
    assert s.signature_lines(text) == []


def test_a_long_disclaimer_naming_a_company_is_not_the_company():
    lines = [
        "Jane Doe",
        "This e-mail is confidential and intended only for the addressee of Megacorp Inc.",
    ]
    assert s.read_signature(lines, "Jane Doe").company == ""


@pytest.mark.parametrize(
    ("display", "address", "first", "last"),
    [
        ("Jane Doe", "jane@acme.io", "Jane", "Doe"),
        ("Doe, Jane", "jane@acme.io", "Jane", "Doe"),
        ('"Doe, Jane"', "jane@acme.io", "Jane", "Doe"),
        ("Jane Doe, PhD", "jane@acme.io", "Jane", "Doe"),
        ("Jean DUPONT", "jd@acme.fr", "Jean", "Dupont"),
        ("MÜLLER Hans", "hm@acme.de", "Hans", "Müller"),
        ("Ludwig van Beethoven", "lvb@acme.de", "Ludwig", "van Beethoven"),
        ("Juan de la Cruz", "juan@acme.es", "Juan", "de la Cruz"),
        ("José Ñúñez (Ventas)", "jose@acme.es", "José", "Ñúñez"),
        ("Cher", "office@acme.io", "", "Cher"),
        ("jane@acme.io", "jane@acme.io", "", ""),
        ("'jane@acme.io'", "jane@acme.io", "", ""),
        ("jane", "jane@acme.io", "", ""),
        ("", "jane@acme.io", "", ""),
    ],
)
def test_display_names_become_first_and_last_names(display, address, first, last):
    assert s.split_name(s.clean_display_name(display, address)) == (first, last)


@pytest.mark.parametrize(
    ("domain", "company"),
    [
        ("acme.io", "Acme"),
        ("sales.acme.io", "Acme"),
        ("mail.acme-robotics.co.uk", "Acme-Robotics"),
        ("levante.com.es", "Levante"),
        ("gmail.com", ""),
        ("googlemail.com", ""),
        ("outlook.com", ""),
        ("yahoo.co.uk", ""),
        ("yahoo.fr", ""),
        ("gmx.net", ""),
        ("gmx.de", ""),
        ("web.de", ""),
        ("hotmail.es", ""),
        ("icloud.com", ""),
        ("proton.me", ""),
        ("localhost", ""),
    ],
)
def test_company_from_domain_but_never_from_free_mail(domain, company):
    assert s.company_from_domain(domain) == company


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("Tel: +44 20 7946 0958", ("phone", "+44 20 7946 0958")),
        ("M +49 170 1234567", ("mobile", "+49 170 1234567")),
        ("Handy: 0170/1234567", ("mobile", "0170/1234567")),
        ("(415) 555-0132", ("phone", "(415) 555-0132")),
        ("Industriestraße 12", None),
        ("70565 Stuttgart", None),
        ("HRB 12345", None),
        ("Invoice 2026-03-01", None),
    ],
)
def test_phone_lines(line, found):
    assert s.phone_of(line) == found
