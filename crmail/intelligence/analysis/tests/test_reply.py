"""The reply text: what the sender wrote, without the quoted history, forwarded parts or
their signature, in the five languages and the quoting styles of their mail clients."""

from __future__ import annotations

import pytest

from crmail.intelligence.analysis import reply

pytestmark = pytest.mark.database_independent

CASES = {
    "en-gmail-wrapped-attribution": (
        "Hi Sam,\n\nTuesday works for us.\n\nThanks,\nDana\n\n"
        "On Wed, Mar 11, 2026 at 4:02 PM Sam Lee <\nsam@example.com> wrote:\n"
        "> Would Tuesday work?\n",
        "Hi Sam,\n\nTuesday works for us.\n\nThanks,\nDana",
    ),
    "en-outlook-no-quote-marks": (
        "Please send the revised quote.\n\nKind regards,\nOliver\n\nOliver Pennington\n"
        "Head of IT\nHarrowgate Legal LLP\nT: +44 20 7946 0321\n\n"
        "This email and any attachments are confidential.\n\n"
        "________________________________\nFrom: Priya <priya@example.com>\n"
        "Sent: 03 February 2026 16:20\nTo: Oliver\nSubject: Quote\n\nHi Oliver,\n",
        "Please send the revised quote.\n\nKind regards,\nOliver",
    ),
    "de-attribution-and-signature-block": (
        "Hallo Herr Lehmann,\n\nkönnten Sie das Angebot anpassen?\n\nViele Grüße\n"
        "Katrin Hoffmann\n\n--\nKatrin Hoffmann\nLeitung Vertrieb\nBrandt GmbH\n"
        "Tel. +49 (0)711 4820-316\n\nAm 09.03.2026 um 16:41 schrieb Jonas <j@example.de>:\n"
        "> Hallo Frau Hoffmann,\n",
        "Hallo Herr Lehmann,\n\nkönnten Sie das Angebot anpassen?\n\nViele Grüße\nKatrin Hoffmann",
    ),
    "de-outlook-headers": (
        "Bitte austragen, danke.\n\nW. Scholz\n\n-----Ursprüngliche Nachricht-----\n"
        "Von: crmail <news@example.de>\nGesendet: Montag, 2. März 2026 09:12\nAn: Scholz\n",
        "Bitte austragen, danke.\n\nW. Scholz",
    ),
    "fr-attribution-and-mobile-footer": (
        "Bonjour,\n\nJeudi 2 avril à 14h30, c'est parfait pour moi.\n\nÀ jeudi,\nJulien\n\n"
        "Envoyé de mon iPhone\n\nLe lun. 30 mars 2026 à 10:03, Thomas <t@example.fr> a écrit :\n"
        "> Bonjour Julien,\n",
        "Bonjour,\n\nJeudi 2 avril à 14h30, c'est parfait pour moi.\n\nÀ jeudi,\nJulien",
    ),
    "fr-outlook-headers": (
        "Merci de me rappeler.\n\nCordialement,\n\nDe : Thomas Renard <t@example.fr>\n"
        "Envoyé : lundi 30 mars 2026 10:03\nÀ : Patricia\nObjet : Démo\n",
        "Merci de me rappeler.\n\nCordialement,",
    ),
    "es-attribution-and-disclaimer": (
        "Hola Marta,\n\n¿Podemos pasar la llamada al jueves?\n\nUn saludo,\nPilar\n\n"
        "Pilar Navarro\nTécnica de Contratación\nAyuntamiento de Villanueva\nTel. 925 555 063\n"
        "Este mensaje va dirigido exclusivamente a su destinatario y es confidencial.\n\n"
        "El mar, 10 mar 2026 a las 16:02, Marta (<m@example.es>) escribió:\n> Hola Pilar,\n",
        "Hola Marta,\n\n¿Podemos pasar la llamada al jueves?\n\nUn saludo,\nPilar",
    ),
    "es-forwarded": (
        "Te reenvío la factura duplicada.\n\nSaludos,\nJavier\n\n"
        "---------- Mensaje reenviado ---------\nDe: Facturación <f@example.com>\n"
        "Fecha: 2 mar 2026\nAsunto: Factura\n",
        "Te reenvío la factura duplicada.\n\nSaludos,\nJavier",
    ),
    "pt-attribution-and-signature": (
        "Olá Rafael,\n\nPodem enviar o contrato revisto?\n\nAtenciosamente,\nMariana Oliveira\n"
        "Coordenadora Comercial\nVitalog Transportes Ltda.\nTel.: (11) 3555-0142\n\n"
        "Em ter., 10 de mar. de 2026 às 16:02, Rafael <r@example.com.br> escreveu:\n"
        "> Olá Mariana,\n",
        "Olá Rafael,\n\nPodem enviar o contrato revisto?\n\nAtenciosamente,",
    ),
    "pt-outlook-headers": (
        "Por favor, removam o meu contacto da vossa lista.\n\nDe: Newsletter <n@example.pt>\n"
        "Enviada em: terça-feira, 10 de março de 2026 16:02\nPara: Luís\nAssunto: Novidades\n",
        "Por favor, removam o meu contacto da vossa lista.",
    ),
    "one-line-no-signature": ("Sounds good, Tuesday works.\n", "Sounds good, Tuesday works."),
    "en-written-below-the-quote": (
        "On Wed, Mar 11, 2026 at 4:02 PM Sam Lee <\nsam@example.com> wrote:\n"
        "> Would Tuesday work?\n> We could do 10am.\n\nTuesday at 10 is fine.\n\nThanks,\nDana\n",
        "Tuesday at 10 is fine.\n\nThanks,\nDana",
    ),
    "en-mailing-list-answer-between-the-quotes": (
        "> On Thu, 22 Aug 2002, John Looney wrote:\n> > Sun's hardware is more reliable,\n"
        "> Not in our experience.\n\nWell, at least our keyboards work.\n\n"
        "peter@example.ie said:\n> If I hit Caps-Lock twice, the machine crashes.\n\n"
        "Which keyboard is that?\n\nCheers,\nAl\n\n-- \nIrish Linux Users' Group\n"
        "http://www.linux.ie/mailman/listinfo/ilug for (un)subscription information.\n",
        "Well, at least our keyboards work.\n\nWhich keyboard is that?\n\nCheers,\nAl",
    ),
    "de-written-below-the-quote-then-forwarded": (
        "Am 09.03.2026 um 16:41 schrieb Jonas <j@example.de>:\n> Passt Donnerstag?\n\n"
        "Ja, Donnerstag passt.\n\n---------- Weitergeleitete Nachricht ----------\n"
        "Von: Jonas <j@example.de>\nDatum: 8. März 2026\n\nDer alte Text.\n",
        "Ja, Donnerstag passt.",
    ),
    "en-name-wrote-then-the-reply-below": (
        "Bill Stoddard wrote:\n> Has anyone tried the new release?\n\n"
        "Yes, it fixed the crash for us.\n",
        "Yes, it fixed the crash for us.",
    ),
    "en-webmail-quoting-then-the-reply-below": (
        "Quoting Ronan Waide <waider@example.ie>:\n> How do I copy the files?\n\n"
        "Use rsync -a, it keeps the dates.\n",
        "Use rsync -a, it keeps the dates.",
    ),
    "en-answers-under-a-name-and-under-asked": (
        "Gordon Mohr:\n> Is the mirror back up?\n\nIt is, since this morning.\n\n"
        "Shane Ryan asked:\n> And the old archive?\n\nGone, sorry.\n",
        "It is, since this morning.\n\nGone, sorry.",
    ),
    "en-greeting-above-the-answers-between-the-quotes": (
        "Hello Bill,\n\n> Can you ship on Friday?\n\nYes, Friday works.\n\n"
        "> And the invoice?\n\nIt goes out with the parcel.\n",
        "Hello Bill,\n\nYes, Friday works.\n\nIt goes out with the parcel.",
    ),
    "en-thanks-above-the-quote": (
        "Thanks,\n\nOn Mon, 2 Mar 2026 at 09:12, Jo <jo@example.com> wrote:\n> Sent the file.\n",
        "Thanks,",
    ),
    "en-reply-above-a-name-wrote": (
        "Thanks, will do.\n\nBill Stoddard wrote:\n> Can you send the logs?\n",
        "Thanks, will do.",
    ),
    "forwarded-without-a-word-of-its-own": (
        "---------- Forwarded message ---------\nFrom: Billing <b@example.com>\n"
        "Date: 2 Mar 2026\nSubject: Invoice\n\nPlease find the invoice attached.\n",
        "",
    ),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_reply_text(text: str, expected: str) -> None:
    assert reply.normalise(reply.reply_text(text)) == expected


def test_a_line_from_in_the_text_is_not_a_quote() -> None:
    text = "From: the procurement side, all is approved.\nPlease send the contract.\n"
    assert reply.reply_text(text) == text.rstrip("\n")


def test_normalise_follows_the_comparison_rule() -> None:
    assert reply.normalise("\n\nHi  \n\n\n\nThanks,  \nJo\n\n") == "Hi\n\nThanks,\nJo"
