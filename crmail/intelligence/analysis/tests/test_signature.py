"""Signature details (name, title, company, website, every phone) from real-looking
blocks in the five languages, and from the edge-case mail in tests/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmail.intelligence.analysis import Signature, signature

pytestmark = pytest.mark.database_independent

CPYTHON = Path(__file__).resolve().parents[4] / "tests" / "data" / "cpython_email"

BLOCKS = {
    "en-pipes-and-two-phones": (
        "Quote attached?\n\nKind regards,\nOliver\n\nOliver Pennington\n"
        "Head of Practice Technology | Harrowgate Legal LLP\nT: +44 20 7946 0321\n"
        "M: +44 7700 900412\nwww.harrowgate-legal.example.co.uk\n",
        "Oliver Pennington",
        Signature(
            "Oliver Pennington",
            "Head of Practice Technology",
            "Harrowgate Legal LLP",
            "www.harrowgate-legal.example.co.uk",
            ("+44 20 7946 0321", "+44 7700 900412"),
        ),
    ),
    "de-compound-title-register-lines": (
        "Danke.\n\nViele Grüße\nSandra Mayer\n\nSandra Mayer\nTeamleiterin Vermietung\n\n"
        "Rheinland Immobilien Verwaltung GmbH & Co. KG\nHohenzollernring 58 · 50672 Köln\n"
        "Telefon +49 221 9873 4410 · Mobil +49 171 5550142\nwww.rheinland-immobilien.de\n"
        "Sitz der Gesellschaft: Köln, Registergericht Köln HRA 29871\n",
        "Sandra Mayer",
        Signature(
            "Sandra Mayer",
            "Teamleiterin Vermietung",
            "Rheinland Immobilien Verwaltung GmbH & Co. KG",
            "www.rheinland-immobilien.de",
            ("+49 221 9873 4410", "+49 171 5550142"),
        ),
    ),
    "fr-local-numbers-slash": (
        "Merci,\nStéphane\n\nStéphane Roussel\nDirecteur général\nRoussel Énergies SAS\n"
        "03 99 00 31 66 / 06 39 98 57 02\nroussel-energies.fr\n",
        "Stéphane Roussel",
        Signature(
            "Stéphane Roussel",
            "Directeur général",
            "Roussel Énergies SAS",
            "roussel-energies.fr",
            ("03 99 00 31 66", "06 39 98 57 02"),
        ),
    ),
    "es-company-with-comma-suffix": (
        "Gracias.\n\nUn saludo,\n\nLaura Gómez\nDirectora de Compras\n"
        "Grupo Alba Distribución, S.L.\nTel. +34 963 52 14 70\n",
        "Laura Gómez",
        Signature(
            "Laura Gómez",
            "Directora de Compras",
            "Grupo Alba Distribución, S.L.",
            "",
            ("+34 963 52 14 70",),
        ),
    ),
    "pt-brazilian-numbers-and-postcode": (
        "Obrigada!\n\nAtenciosamente,\n\nMariana Oliveira\nCoordenadora Comercial\n"
        "Vitalog Transportes Ltda.\nRua das Flores, 120 \u2013 4470-158 Maia\n"
        "Tel.: (11) 3555-0142 | Cel.: (11) 95550-1187\nwww.vitalog-transportes.com.br\n",
        "Mariana Oliveira",
        Signature(
            "Mariana Oliveira",
            "Coordenadora Comercial",
            "Vitalog Transportes Ltda.",
            "www.vitalog-transportes.com.br",
            ("(11) 3555-0142", "(11) 95550-1187"),
        ),
    ),
    "honorific-and-linkedin": (
        "Bitte um Rückruf.\n\nBeste Grüße\n\nMag. Christina Ebner\nSteuerberaterin\n"
        "Ebner Steuerberatung GmbH\nMobil: +43 664 555 0117\n"
        "LinkedIn: linkedin.com/in/christina-ebner\n",
        "Christina Ebner",
        Signature(
            "Christina Ebner",
            "Steuerberaterin",
            "Ebner Steuerberatung GmbH",
            "",
            ("+43 664 555 0117",),
        ),
    ),
}


@pytest.mark.parametrize(("text", "name", "expected"), BLOCKS.values(), ids=BLOCKS.keys())
def test_signature_details(text: str, name: str, expected: Signature) -> None:
    assert signature.read(text, name) == expected


def test_no_signature_when_there_is_only_a_sign_off() -> None:
    assert (
        signature.read("Sounds good, Tuesday works.\n\nThanks,\nJerome\n\nSent from my iPhone\n")
        is None
    )


def test_a_quotation_as_signature_has_no_details() -> None:
    # CPython's edge-case mail: a "-- " block holding only a saying, then a MIME boundary.
    lines = (CPYTHON / "msg_38.txt").read_text(errors="replace").splitlines()
    at = lines.index("--")
    body = "\n".join(["Here is the file.", *lines[at : at + 3]])
    assert signature.read(body, "Barry A. Warsaw") is None


def test_the_signature_of_the_quoted_message_is_not_the_senders() -> None:
    text = (
        "Yes, please go ahead.\n\nOn Tue, Mar 10, 2026 at 4:02 PM Rex <rex@example.com> wrote:\n"
        "> Shall I send it?\n> --\n> Rex Rep\n> Sales Director\n> Crmail Inc.\n> +1 312 555 0100\n"
    )
    assert signature.read(text, "Ana Lima") is None
