"""The new text of a message: what the sender wrote, without quoted or forwarded parts and
without their signature block (docs/decisions/060-email-intelligence-analysis.md).

Rules in the manner of talon's, over the five languages: the quoted part starts at a mail
client's attribution line or separator (``crmail.linking.signatures.quote_start``, which the
sender-to-record suggestions use too); the signature is what follows a "-- " line, a "Sent
from my iPhone" line, or the sign-off ("Best regards," and the name under it), or the
trailing paragraphs that read as a signature (names, titles, numbers, addresses, links,
legal notices) rather than as sentences.
"""

from __future__ import annotations

import re

from crmail.linking import signatures

# "Sent from my iPhone", "Von meinem iPhone gesendet", "Envoyé de mon iPhone", …
_MOBILE_FOOTER = re.compile(
    r"^(?:sent from (?:my |mail for |outlook for )|get outlook for |sent via |"
    r"von meinem .*gesendet|gesendet von (?:meinem )?|envoyé de mon |envoyé depuis |"
    r"enviado desde mi |enviado desde |enviado do meu |enviado de meu |enviado do )",
    re.IGNORECASE,
)
# Sign-offs, in any of the five languages, alone on their line (maybe with a comma or "!").
_CLOSING_WORDS = re.compile(
    r"\b(?:regards|best|cheers|thanks|thank you|sincerely|yours|all the best|talk soon|"
    r"grüße|grüßen|grüssen|grüsse|gruß|gruss|grüß|dank|danke|vielen dank|herzlich|"
    r"alles liebe|im auftrag|i\.\s?a\.|"
    r"cordialement|salutations|bien à vous|merci|amicalement|bonne (?:journée|soirée)|"
    r"à bientôt|bises|saludos?|atentamente|un abrazo|gracias|cordiales|hasta pronto|"
    r"abraços?|carinho|atenciosamente|cumprimentos|obrigad[oa]|att|até breve|beijos?)\b|"
    r"^(?:lg|vg|mfg|bg|rgds)\b",
    re.IGNORECASE,
)
# Legal notices and company registration lines at the foot of a message.
_NOTICE = re.compile(
    r"confidential|intended recipient|privileged|disclaimer|please consider the environment|"
    r"vertraulich|empfänger|geschäftsführ|amtsgericht|registergericht|handelsregister|hrb\s|"
    r"hra\s|ust-?id|sitz der gesellschaft|handelsgericht|firmenbuch|"
    r"confidentiel|destinataire|siret|siren|rcs\s|capital social|tva intra|"
    r"confidencial|destinatario|destinatário|cif:|nif:|cnpj|registro mercantil|lgpd|rgpd|"
    r"protección de datos|proteção de dados|datenschutz|gdpr",
    re.IGNORECASE,
)
_SENTENCE_END = (".", "?", "!", ":", ";")


def split(text: str, from_name: str = "") -> tuple[list[str], list[str]]:
    """(the reply's lines, the signature's lines) of a plain-text body."""
    lines = [line.rstrip() for line in signatures.reply_text(text)]
    signature: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        delimiter = stripped in ("--", "—") or bool(re.fullmatch(r"_{3,}|-{3,}|={3,}", stripped))
        if delimiter or _MOBILE_FOOTER.match(stripped):
            signature = lines[i + 1 :]
            signature = [] if _MOBILE_FOOTER.match(stripped) else signature
            lines = lines[:i]
            break
    _trim(lines)
    paragraphs = _paragraphs(lines)
    # Trailing paragraphs that read as a signature, from the end up.
    while len(paragraphs) > 1 and _is_signature(paragraphs[-1], _signed(paragraphs[-2])):
        signature = [*paragraphs.pop(), "", *signature]
    if paragraphs:
        last = paragraphs[-1]
        cut = _after_sign_off(last)
        if cut is not None and cut < len(last):
            signature = [*last[cut:], "", *signature]
            paragraphs[-1] = last[:cut]
    body: list[str] = []
    for paragraph in paragraphs:
        if body:
            body.append("")
        body.extend(paragraph)
    return body, [line.strip() for line in signature if line.strip()]


def reply_text(text: str, from_name: str = "") -> str:
    """The sender's new text, its lines as written."""
    return "\n".join(split(text, from_name)[0])


def normalise(text: str) -> str:
    """The comparison form of a reply text: trailing spaces gone, no blank lines at either
    end, runs of blank lines made one."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    _trim(lines)
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return "\n".join(out)


def _trim(lines: list[str]) -> None:
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)


def _paragraphs(lines: list[str]) -> list[list[str]]:
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


def is_closing(line: str) -> bool:
    """A sign-off line: "Best regards," "Viele Grüße" "Un saludo," "Thanks!"."""
    words = line.split()
    if not words or len(words) > 6 or not _CLOSING_WORDS.search(line):
        return False
    if line.endswith("?"):
        return False
    return not line.endswith((".", ":", ";")) or len(words) <= 3


def _name_like(line: str) -> bool:
    """A person's name, or a few words that could be one: "Jane", "Jane Doe", "W. Scholz"."""
    words = line.replace(",", " ").split()
    if not 0 < len(words) <= 4 or any(c.isdigit() for c in line) or signatures.is_title(line):
        return False
    if line.endswith("."):  # initials: "Pooja V.", "W. Scholz"
        return len(words) <= 3 and all(w[:1].isupper() for w in words)
    return not line.endswith(_SENTENCE_END)


def _after_sign_off(paragraph: list[str]) -> int | None:
    """Where the signature starts inside the last paragraph: after its sign-off line, or
    after the one line under it when nothing else follows ("Thanks,\nDana" is the
    sign-off; "Best regards,\nJane Doe\nHead of Sales\n…" is a sign-off and a signature)."""
    for i in range(len(paragraph) - 1, -1, -1):
        if is_closing(paragraph[i].strip()):
            rest = paragraph[i + 1 :]
            if len(rest) <= 1:
                return None
            if all(_signature_line(line.strip()) for line in rest):
                return i + 1
            return None
    return None


def _signature_line(line: str) -> bool:
    """A line of a signature block: short and not a sentence, or a number, link or notice."""
    if _NOTICE.search(line) or signatures.phones_in([line]) or signatures.website_in([line]):
        return True
    if "@" in line or sum(c.isdigit() for c in line) >= 6:
        return True
    return len(line.split()) <= 10 and not line.endswith(("?", "!"))


def _signed(paragraph: list[str]) -> bool:
    """Whether a paragraph is a sign-off with a name: the name alone ("Jane"), or a closing
    and the name under it ("Thanks,\nJane")."""
    last = paragraph[-1].strip()
    if len(paragraph) == 1:
        return _name_like(last) and not is_closing(last)
    return _name_like(last) and is_closing(paragraph[-2].strip())


def _is_signature(paragraph: list[str], signed: bool) -> bool:
    lines = [line.strip() for line in paragraph]
    if any(is_closing(line) for line in lines):
        return False
    if _NOTICE.search(" ".join(lines)):
        return True
    if len(lines) == 1 and _name_like(lines[0]) and not _has_contact(lines):
        # A name alone under the text is the sign-off; a line under the sign-off is the
        # signature's ("Jane\n\nAcme Optics").
        return signed

    if lines[0].endswith((",", "!")) and len(lines) == 2 and _name_like(lines[1]):
        return False  # "À jeudi,\nJulien"
    if not all(_signature_line(line) for line in lines):
        return False
    if len(lines) == 1 and re.search(r"\s[|·•]\s", lines[0]):
        return True  # "Jane Doe | Acme Surveyors"
    if _has_contact(lines):
        return True
    # Words only: a block of short lines (name, title, company), not a sentence among them.
    return len(lines) >= 2 and not any(line.endswith(_SENTENCE_END) for line in lines)


def _has_contact(lines: list[str]) -> bool:
    return bool(
        signatures.phones_in(lines)
        or signatures.website_in(lines)
        or any("@" in line for line in lines)
        or any(signatures.is_company(line) for line in lines)
    )
