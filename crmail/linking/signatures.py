"""Who a sender is, read from the message alone: their name, and from their signature
their title, phone and company (docs/decisions/030-sender-to-record.md).

Pure functions on strings, no Django: ``senders.py`` reads the message and calls these.
Nothing here is certain; every value is a suggestion a person confirms in a form.

- ``split_name`` turns a display name into first and last name ("Doe, Jane", "Jane DOE",
  "Ludwig van Beethoven").
- ``signature_lines`` finds the signature: the block after the "-- " line, else what
  follows a closing ("Best regards", "Mit freundlichen Grüßen", "Cordialement",
  "Saludos") in the reply text above any quoted text, else its last short paragraph.
- ``read_signature`` picks from those lines a title, a phone and a company: a line (or a
  part of a line cut at "|" or "·") ending in a company suffix (Inc, GmbH, S.L., B.V., …),
  else the line under the person's name and title.
- ``company_from_domain`` is the fall-back: "sales.acme.io" → "Acme", never for the
  domains of free mail services, whose users have no company in common.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SIGNATURE_LINES = 10
MAX_FIELD = 100  # the form's title, phone and name fields hold 100 characters or fewer

# Domains of mail services anyone can sign up to: their domain says nothing of a company.
FREE_MAIL = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "msn.com", "aol.com", "ymail.com",
        "rocketmail.com", "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com",
        "protonmail.ch", "pm.me", "web.de", "t-online.de", "freenet.de", "posteo.de",
        "posteo.net", "mailbox.org", "tutanota.com", "tuta.io", "mail.ru", "zoho.com",
        "fastmail.com", "hey.com", "orange.fr", "wanadoo.fr", "free.fr", "laposte.net",
        "sfr.fr", "libero.it", "virgilio.it", "seznam.cz", "wp.pl", "o2.pl", "interia.pl",
        "qq.com", "163.com", "126.com", "naver.com", "comcast.net", "verizon.net", "att.net",
        "btinternet.com", "sky.com", "bluewin.ch", "telefonica.net", "terra.com",
    }
)  # fmt: skip
# Services with a domain per country (yahoo.co.uk, gmx.net, hotmail.fr, live.de, …).
FREE_MAIL_NAMES = frozenset({"yahoo", "gmx", "hotmail", "live", "yandex", "outlook", "aol"})
# Second-level labels under a country code that are not the organisation's own name
# ("acme.co.uk", "acme.com.au").
_PUBLIC_SECOND = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "or", "ne", "gv"})

# Legal forms that end a company's name, in the languages crmail's users write.
_SUFFIX = re.compile(
    r"(?:^|[\s,])(?:"
    r"Inc\.?|inc\.?|Incorporated|Corp\.?|Corporation|Ltd\.?|Limited|LLC|L\.L\.C\.|LLP|PLC|plc|"
    r"Ltda\.?|Lda\.?|S/A|EIRELI|Ltée|S\.\s?de\s?R\.L\.|S\.A\.\s?de\s?C\.V\.|"
    r"OG|GbR|PartG(?:mbB)?|mbH|e\.U\.|Sàrl|SNC|SCP|SELARL|SCOP|S\.R\.L\.|S\.L\.P\.|SLP|"
    r"Co\.|Pty\.?(?:\s+Ltd\.?)?|"
    r"GmbH(?:\s*&\s*Co\.?\s*KG)?|gGmbH|AG|KG|KGaA|OHG|UG(?:\s*\(haftungsbeschränkt\))?|"
    r"e\.\s?K\.|e\.\s?V\.|SE|"
    r"SA|S\.A\.|SAS|S\.A\.S\.|SARL|S\.A\.R\.L\.|S\.à\s?r\.l\.|SCS|"
    r"S\.L\.|SL|S\.L\.U\.|SLU|S\.Coop\.|"
    r"S\.r\.l\.|Srl|SRL|S\.p\.A\.|SpA|"
    r"B\.V\.|BV|N\.V\.|NV|Oy|Oyj|AB|A/S|ApS|AS|ASA|sp\.\s?z\s?o\.o\.|s\.r\.o\.|Kft\.?"
    r")[.,]?$"
)
# Words of job titles: a line holding one is a title, not a company.
_TITLE_WORDS = re.compile(
    r"\b(?:manager|director|head|chief|officer|ceo|cto|cfo|coo|cmo|vp|president|founder|"
    r"co-founder|owner|partner|engineer|developer|consultant|specialist|assistant|"
    r"executive|lead|sales|account|representative|analyst|architect|designer|buyer|"
    r"purchasing|procurement|marketing|coordinator|administrator|advisor|associate|"
    r"intern|secretary|accountant|controller|"
    r"leiter|leiterin|geschäftsführer|geschäftsführerin|vertrieb|einkauf|einkäufer|"
    r"einkäuferin|berater|beraterin|inhaber|inhaberin|vorstand|prokurist|referent|"
    r"referentin|sachbearbeiter|sachbearbeiterin|projektleiter|projektleiterin|"
    r"directeur|directrice|responsable|chargé|chargée|commercial|commerciale|gérant|"
    r"gérante|ingénieur|ingénieure|chef|acheteur|acheteuse|"
    r"director|directora|gerente|jefe|jefa|responsable|comercial|ingeniero|ingeniera|"
    r"compras|ventas|socio|socia|fundador|fundadora|consultor|consultora|"
    r"head|principal|counsel|paralegal|supervisor|clerk|operations|accounts|hr|it|legal|"
    r"administration|office|"
    r"gérant|gérante|président|présidente|vice-président|vice-présidente|coordonnateur|"
    r"coordonnatrice|coordinateur|coordinatrice|assistante|avocat|avocate|associé|associée|"
    r"comptable|comptabilité|juriste|gestionnaire|secrétariat|secrétaire|architecte|dsi|"
    r"drh|daf|pdg|dg|conseiller|conseillère|fondateur|fondatrice|technicien|technicienne|"
    r"gerenta|presidente|presidenta|coordinador|coordinadora|asistente|secretaria|"
    r"abogado|abogada|contador|contadora|encargado|encargada|administración|contabilidad|"
    r"analista|jefa|diretor|diretora|sócio|sócia|sócio-diretor|sócia-diretora|coordenador|"
    r"coordenadora|responsável|advogado|advogada|compradora|comprador|supervisora|"
    r"administrativo|administrativa|financeiro|financeira|contabilidade|produtor|produtora|"
    r"executivo|executiva|técnico|técnica|gerência|ventes|gm)\b|"
    # German compounds end in the word that makes them a title: "Teamleiterin",
    # "Datenschutzbeauftragte", "Syndikusrechtsanwältin", "Kaufmännische Leitung".
    r"\w*(?:leiter|leiterin|leitung|manager|managerin|beauftragter?|anwalt|anwältin|berater|"
    r"beraterin|führer|führerin|führender|assistenz|assistent|assistentin|sekretariat|"
    r"buchhaltung|administration|disposition|vorsitzender?|gründer|gründerin|gesellschafter|"
    r"gesellschafterin|coach|coachin|referent|referentin|verkäufer|verkäuferin|vergabestelle|"
    r"prokurist|prokuristin|inhaber|inhaberin|vorstand)\b",
    re.IGNORECASE,
)
# A closing line before the signature: "Best regards," "Viele Grüße" "Cordialement".
_CLOSING = re.compile(
    r"^(?:(?:best|kind|warm|many|with best|with kind)?\s*regards|best|cheers|thanks|"
    r"thank you|many thanks|sincerely|yours(?: sincerely| truly)?|all the best|"
    r"(?:mit )?(?:freundlichen|besten|herzlichen|viele|beste|liebe) grüßen?|"
    r"(?:mit )?(?:freundlichen|besten|herzlichen|viele|beste|liebe) grüsse?n?|"
    r"viele grüße|lg|vg|mfg|gruß|grüße|"
    r"(?:bien )?cordialement|bien à vous|salutations(?: distinguées)?|"
    r"(?:très )?bonne journée|merci(?: beaucoup)?|"
    r"(?:un )?saludos?(?: cordiales)?|atentamente|un abrazo|gracias|muchas gracias)"
    r"[\s,.!]*$",
    re.IGNORECASE,
)
# Where quoted or forwarded text starts in a reply (the signature is above it): the
# attribution lines of mail clients in English, German, French, Spanish and Portuguese, their
# separators, and the first line quoted with ">".
_QUOTE_START = re.compile(
    r"^(?:>|On\s.+(?:wrote:|<[^>]+@[^>]+>)\s*$|Am .+ schrieb .+:\s*$|Le .+ a écrit\s*:\s*$|"
    r"El .+ escribió\s*:\s*$|Em .+ escreveu\s*:\s*$|"
    r"-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Originalnachricht|"
    r"Message d'origine|Mensaje original|Mensagem original|Forwarded message|"
    r"Weitergeleitete Nachricht|Message transféré|Mensaje reenviado|Mensagem encaminhada)|"
    r"(?:Begin forwarded message|Anfang der weitergeleiteten Nachricht|"
    r"Début du message (?:réexpédié|transféré)|Inicio del mensaje reenviado|"
    r"Início da mensagem encaminhada)\s*:\s*$)",
    re.IGNORECASE,
)
# An Outlook header block without ">": "From:" and, on the next lines, "Sent:" or "Date:"
# (in the five languages: Von/Gesendet, De/Envoyé, De/Enviado, De/Enviada em).
_HEADER_FROM = re.compile(r"^\*?(?:From|Von|De|Da)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_NEXT = re.compile(
    r"^\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Date|Enviado|Enviada(?: em)?|Fecha|Data|"
    r"To|An|À|Para|Subject|Betreff|Objet|Asunto|Assunto)\s*:",
    re.IGNORECASE,
)
_RULE = re.compile(r"^_{10,}$")
# An attribution line that a client wrapped: "On Wed, 11 Mar 2026 at 16:02, Jane Doe <" and
# "jane@example.com> wrote:" on the next line.
_WRAPPED_END = re.compile(r"(?:wrote|schrieb|a écrit|escribió|escreveu)\s*:\s*$", re.IGNORECASE)
_WRAPPED_START = re.compile(r"^(?:On|Am|Le|El|Em)\s.*\d", re.IGNORECASE)
_PHONE = re.compile(
    r"^(?:(?P<label>[^\W\d_]{1,12})\.?\s*[:.]?\s*)?"
    r"(?P<number>\+?\(?\d[\d\s()./-]{5,24}\d"
    r"(?:\s*(?:poste|ext\.?|x|Durchwahl|DW|ramal|extensión)\s*\d{1,5})?)\s*$",
    re.IGNORECASE,
)
_MOBILE_LABELS = frozenset(
    {"m", "mob", "mobile", "mobil", "cell", "handy", "portable", "móvil", "movil", "port",
     "gsm", "natel", "cel", "celular", "whatsapp", "telemóvel", "tlm"}
)  # fmt: skip
_PHONE_LABELS = _MOBILE_LABELS | {
    "t", "p", "tel", "tél", "phone", "telefon", "telephone", "téléphone", "teléfono", "fon",
    "office", "direct", "dw", "d", "o", "mobilfunk", "fijo", "tfno", "telf", "zentrale",
    "direkt", "büro", "buero", "fixo", "telefone", "tlf", "standard", "ligne",
    "central", "switchboard", "main", "pabx", "direto", "escritório", "escritorio",
    "oficina", "geral", "fix", "fixe", "bureau",
}  # fmt: skip
_PARTS = re.compile(r"\s+[|·•\u2013\u2014]\s+|\s*[|·•]\s*")
# Honorifics and "on behalf of" before a name in a signature: "Mag. Christina Ebner",
# "i. A. Birgit Wendt", "Maître Catherine Duval".
_NAME_PREFIX = re.compile(
    r"^(?:i\.\s?A\.|i\.\s?V\.|ppa\.|KR|Mag\.(?:a\.)?|Maître|Me|Ing\.|DI|Dipl\.-\w+\.?|Inh\.|"
    r"Lic\.|Lcda?\.|Ldo\.|Lda\.)\s+"
)
_URL_OR_MAIL = re.compile(r"(?:https?://|www\.|@|\.(?:com|de|fr|es|io|net|org)\b)", re.I)
_NAME_WORD = re.compile(r"^[^\W\d_][\w'\u2019.-]*$")
_NAME_SUFFIX = re.compile(
    r"(?:jr|sr|ii|iii|iv|phd|ph\.d|md|mba|msc|bsc|esq|cpa)\b\.?(?:,?\s+\S+)*",
    re.IGNORECASE,
)
_PARTICLES = frozenset(
    {"van", "von", "de", "del", "della", "der", "den", "di", "da", "du", "la", "le", "ten",
     "ter", "dos", "das", "zu", "y", "af", "al", "bin"}
)  # fmt: skip


@dataclass
class Signature:
    """What a signature tells, each value empty when it does not."""

    name: str = ""
    title: str = ""
    company: str = ""
    phone: str = ""
    mobile: str = ""


# --- names ---------------------------------------------------------------------------


def clean_display_name(name: str, address: str) -> str:
    """The display name as a person's name: quotes and a trailing "(…)" or "via …" gone;
    empty when it is only the address or its local part."""
    value = " ".join((name or "").split()).strip().strip("\"'\u201c\u201d\u2018\u2019").strip()
    value = re.sub(r"\s*\([^)]*\)\s*$", "", value)
    value = re.sub(r"\s+via\s+\S+$", "", value, flags=re.IGNORECASE).strip()
    local = address.partition("@")[0].lower()
    if not value or "@" in value or value.lower() in (address.lower(), local):
        return ""
    return value


def split_name(name: str) -> tuple[str, str]:
    """(first name, last name) of a display name.

    "Doe, Jane" → ("Jane", "Doe"); "Jane DOE" and "DOE Jane" → ("Jane", "Doe");
    "Ludwig van Beethoven" → ("Ludwig", "van Beethoven"); one word is a last name.
    """
    value = " ".join(name.split())
    if not value:
        return "", ""
    if "," in value:
        head, _, tail = (part.strip() for part in value.partition(","))
        if _NAME_SUFFIX.fullmatch(tail) or not head:  # "Jane Doe, PhD"
            value = head or tail
        elif tail and "," not in tail:  # "Doe, Jane"
            return tail[:MAX_FIELD], head[:MAX_FIELD]
        value = value.replace(",", " ")
    words = value.split()
    if len(words) == 1:
        return "", words[0][:MAX_FIELD]
    upper = [w for w in words if _is_upper_name(w)]
    if upper and len(upper) < len(words):  # "Jean DUPONT", "MÜLLER Hans": the capitals
        first = " ".join(w for w in words if not _is_upper_name(w))
        last = " ".join(_title(w) for w in upper)
        return first[:MAX_FIELD], last[:MAX_FIELD]
    cut = len(words) - 1
    while cut > 1 and words[cut - 1].lower() in _PARTICLES:
        cut -= 1
    return " ".join(words[:cut])[:MAX_FIELD], " ".join(words[cut:])[:MAX_FIELD]


def _is_upper_name(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return len(letters) > 1 and all(c.isupper() for c in letters)


def _title(word: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in word.split("-"))


def looks_like_name(line: str) -> bool:
    """Two to four words, each starting with a capital, no digits: "Jane Doe"."""
    words = line.replace(",", " ").split()
    if not 2 <= len(words) <= 4 or any(c.isdigit() for c in line):
        return False
    named = [w for w in words if w.lower() not in _PARTICLES]
    return all(_NAME_WORD.match(w) and w[0].isupper() for w in named)


# --- the signature -------------------------------------------------------------------


def quote_start(lines: list[str]) -> int | None:
    """The index of the line where quoted or forwarded text starts, None when none does."""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if _QUOTE_START.match(stripped):
            return i
        if (
            _RULE.match(stripped)
            and any(  # Outlook's line above the quoted headers
                _HEADER_FROM.match(following.strip()) for following in lines[i + 1 : i + 3]
            )
        ):
            return i
        if _HEADER_FROM.match(stripped) and any(
            _HEADER_NEXT.match(following.strip()) for following in lines[i + 1 : i + 4]
        ):
            return i
        if (
            _WRAPPED_START.match(stripped)
            and i + 1 < len(lines)
            and _WRAPPED_END.search(lines[i + 1])
            and len(stripped) + len(lines[i + 1]) < 200
        ):
            return i
    return None


def reply_text(text: str) -> list[str]:
    """The lines a sender wrote in this message: those above the first quoted line; or,
    when nothing is written above it, those written below and between the ``>`` quotes
    (a reply at the foot of the quote, or answering it point by point, as on mailing
    lists), up to a forwarded message."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = quote_start(lines)
    if start is None:
        return lines
    above = [line for i, line in enumerate(lines[:start]) if not _introduces_quote(lines, i)]
    written = [line.strip() for line in above if _LETTER.search(line)]
    if written and not _greeting_alone(written):
        return above
    return [*above, *_between_quotes(lines[start:])]


def _greeting_alone(written: list[str]) -> bool:
    """Whether the lines written above a quote are a greeting alone ("Hello Bill,"), the
    answers following between the quoted lines."""
    return len(written) == 1 and len(written[0].split()) <= 4 and written[0].endswith(",")


_LETTER = re.compile(r"[^\W\d_]")
# The line that introduces a quote, besides ``_QUOTE_START``'s: "jane@example.com said:",
# "Jane Doe writes:", "Shane asked:", "Quoting Jane <jane@example.com>:", "Gordon Mohr:"
# (mailing lists, webmail): a name alone before a colon is one too.
_SAID = re.compile(
    r"(?:said|says|writes|wrote|asked|asks|replied|answered|schrieb|a écrit|escribió|"
    r"escreveu)\s*:\s*$|^quoting\s.*:\s*$|^[^\W\d_][^\W\d_.'-]*(?:[ .'-]+[^\W\d_]+){0,3}:$",
    re.IGNORECASE,
)


def _between_quotes(lines: list[str]) -> list[str]:
    """Of ``lines`` (starting at a quote), those outside the ``>`` quotes: each line that
    introduces a quote left out, and what follows the start of a forwarded message or of
    an Outlook header block (quoted without ``>``)."""
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if stripped and _introduces_quote(lines, i):
            continue
        if stripped and quote_start(lines[i : i + 4]) == 0:
            break
        kept.append(line)
    return kept


def _introduces_quote(lines: list[str], i: int) -> bool:
    """Whether line ``i`` introduces the ``>`` quote right under it (blank lines between):
    "On … wrote:" (wrapped onto two lines too) or "… said:"."""
    stripped = lines[i].strip()
    following = [line.strip() for line in lines[i + 1 : i + 4] if line.strip()]
    wrapped = _WRAPPED_START.match(stripped) and following and _WRAPPED_END.search(following[0])
    if wrapped:
        following = following[1:]
    quoted = bool(following) and following[0].startswith(">")
    # (The second line of a wrapped one ends with "wrote:", as ``_SAID`` reads.)
    return quoted and bool(wrapped or _QUOTE_START.match(stripped) or _SAID.search(stripped))


def signature_lines(text: str) -> list[str]:
    """The sender's signature lines (stripped, without blank ones); [] when none is found."""
    lines = reply_text(text)
    while lines and not lines[-1].strip():
        lines.pop()
    block: list[str] | None = None
    for i in range(len(lines) - 1, -1, -1):  # the last "-- " separator (RFC 3676 §4.3)
        if lines[i].rstrip() in ("--", "-- ", "—"):
            block = lines[i + 1 :]
            break
    if block is None:
        for i in range(len(lines) - 1, -1, -1):
            if _CLOSING.match(lines[i].strip()):
                block = lines[i + 1 :]
                break
    if block is None:  # the last paragraph, when it is short and not a sentence
        start = max((i for i, line in enumerate(lines) if not line.strip()), default=-1) + 1
        block = lines[start:] if start > 0 else []
        if len(block) > 6 or any(line.strip().endswith((".", "?", "!")) for line in block):
            block = []
    found = [" ".join(line.split()) for line in block if line.strip()]
    return [line for line in found if not re.fullmatch(r"[-_=*~.]+", line)][:MAX_SIGNATURE_LINES]


def _parts(line: str) -> list[str]:
    """The pieces of a signature line cut at "|", "·", a dash between spaces, and at the
    first comma after a name, a title or a company ("Carsten Möller, Prokurist", "Acme GmbH,
    Hauptstraße 1")."""
    parts: list[str] = []
    for piece in _PARTS.split(line):
        piece = piece.strip(" ,;")
        head, comma, tail = piece.partition(", ")
        if (
            comma
            and (
                is_company(head) or looks_like_name(head) or (is_title(head) and not is_title(tail))
            )
            and not _NAME_SUFFIX.match(tail)
            and not is_company(piece)  # "Grupo Alba, S.L." is one name
        ):
            parts.extend(p for p in (head.strip(" ,;"), tail.strip(" ,;")) if p)
        elif piece:
            parts.append(piece)
    return parts


def phone_of(line: str) -> tuple[str, str] | None:
    """("phone" or "mobile", the number) when the line is a phone number, maybe labelled."""
    found = _PHONE.match(line.strip())
    if not found:
        return None
    label = (found["label"] or "").lower().rstrip(".")
    if label and label not in _PHONE_LABELS:
        return None
    digits = sum(c.isdigit() for c in found["number"])
    if digits < 7 or (digits < 8 and not label):  # not a postcode ("4470-158")
        return None
    kind = "mobile" if label in _MOBILE_LABELS else "phone"
    return kind, found["number"].strip()[:50]


def is_company(text: str) -> bool:
    """A name ending in a legal form, not a sentence: "Acme GmbH", "Foo & Bar S.L."."""
    return bool(_SUFFIX.search(text)) and len(text.split()) <= 8 and not _URL_OR_MAIL.search(text)


def is_title(text: str) -> bool:
    return bool(_TITLE_WORDS.search(text)) and len(text.split()) <= 8 and not is_company(text)


def _plain(text: str) -> bool:
    """A short line of words: neither a number, an address, a link nor a sentence."""
    return (
        bool(text)
        and len(text.split()) <= 6
        and not any(c.isdigit() for c in text)
        and not _URL_OR_MAIL.search(text)
        and not text.endswith((".", "?", "!", ":"))
    )


def read_signature(lines: list[str], name: str = "") -> Signature:
    """Title, phone and company from signature lines; ``name`` is the sender's display
    name, to find the line that names them."""
    sig = Signature()
    parts_by_line = [_parts(line) for line in lines]
    for parts in parts_by_line:
        for part in parts:
            phone = phone_of(part)
            if phone is None:
                # "Tel. +49 30 1234567 · Fax …": the labelled number at the start of a part
                found = re.match(r"^(\S+\.?\s*:?\s*\+?[\d\s()./-]{6,}\d)", part)
                phone = phone_of(found[1]) if found else None
            if phone is not None and not getattr(sig, phone[0]):
                setattr(sig, phone[0], phone[1])
    for parts in parts_by_line:
        company = next((p for p in parts if is_company(p)), "")
        if company:
            sig.company = company[: MAX_FIELD * 2]
            break
    # The name line: the one holding all the display name's words (or most of them), else
    # the first line that looks like a name; never a company's line ("Krämer Optik").
    wanted = {w.lower() for w in name.replace(",", " ").split() if len(w) > 1}
    at, best = -1, 0
    for i, parts in enumerate(parts_by_line):
        first_part = _NAME_PREFIX.sub("", parts[0]) if parts else ""
        words = {w.lower() for w in first_part.replace(",", " ").split()}
        if not first_part or is_company(first_part) or len(words) > 5:
            continue
        overlap = len(wanted & words)
        enough = overlap == len(wanted) or (overlap >= 2 and looks_like_name(first_part))
        if wanted and overlap > best and enough:
            at, best = i, overlap
        elif at < 0 and not wanted and looks_like_name(first_part):
            at = i
    if at < 0 and parts_by_line and parts_by_line[0]:
        first_part = _NAME_PREFIX.sub("", parts_by_line[0][0])
        if looks_like_name(first_part) and not is_company(first_part) and not is_title(first_part):
            at = 0
    following: list[str] = [p for parts in parts_by_line for p in parts]
    if at >= 0:
        sig.name = _NAME_PREFIX.sub("", parts_by_line[at][0])[:MAX_FIELD]
        # What follows the name, on its line ("Jane Doe | Head of Sales") and below it.
        following = parts_by_line[at][1:] + [p for parts in parts_by_line[at + 1 :] for p in parts]
    elif looks_like_name(name):
        sig.name = name[:MAX_FIELD]  # signed above the block ("Best regards,\nJane Doe")
    for part in following[:3]:
        if is_title(part) and not phone_of(part):
            sig.title = part[:MAX_FIELD]
            break
    if not sig.company:
        after = [p for p in following[:3] if p != sig.title]
        candidate = after[0] if after else ""
        if _plain(candidate) and not is_title(candidate) and not looks_like_name(candidate):
            sig.company = candidate[: MAX_FIELD * 2]
        elif candidate and looks_like_name(candidate) and sig.name and not is_title(candidate):
            sig.company = candidate[: MAX_FIELD * 2]  # "Lemoine Immobilier" under the name
    return sig


def company_from_domain(domain: str) -> str:
    """The organisation a domain names, "mail.acme-robotics.co.uk" → "Acme-Robotics";
    empty for free mail services and for what is not a domain."""
    labels = [label for label in domain.lower().strip(".").split(".") if label]
    if len(labels) < 2 or domain.lower() in FREE_MAIL:
        return ""
    if len(labels) >= 3 and labels[-2] in _PUBLIC_SECOND and len(labels[-1]) == 2:
        label = labels[-3]
    else:
        label = labels[-2]
    if ".".join(labels[-2:]) in FREE_MAIL or label in FREE_MAIL_NAMES:
        return ""
    if not re.fullmatch(r"[a-z0-9-]+", label) or label.isdigit() or label.startswith("xn--"):
        return ""
    return "-".join(part[:1].upper() + part[1:] for part in label.split("-"))


# --- every phone number and the website ----------------------------------------------

_WEBSITE = re.compile(
    r"(?<![@\w.-])(?:https?://)?(?:www\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,24}(?:/[^\s|·•,;]*)?(?![@\w-])",
    re.IGNORECASE,
)
# Profiles on networks are a person's page, not their organisation's website.
_NOT_WEBSITE = re.compile(r"linkedin\.|xing\.|twitter\.|x\.com|facebook\.|instagram\.", re.I)


def phones_in(lines: list[str]) -> list[str]:
    """Every phone and mobile number of signature lines, in order, each once (not fax)."""
    found: list[str] = []
    for line in lines:
        for part in (
            p for chunk in re.split(r"\s+[/\u2013\u2014-]\s+", line) for p in _parts(chunk)
        ):
            phone = phone_of(part)
            if phone is None:
                labelled = re.match(r"^(\S+\.?\s*:?\s*\+?[\d\s()./-]{6,}\d)", part)
                phone = phone_of(labelled[1]) if labelled else None
            if phone is not None and phone[1] not in found:
                found.append(phone[1])
    return found


def website_in(lines: list[str]) -> str:
    """The first website of signature lines ("www.acme.example", "https://acme.example"),
    not an address, nor a profile on a social network."""
    for line in lines:
        for candidate in _WEBSITE.findall(line):
            host = re.sub(r"^https?://", "", candidate, flags=re.I)
            if _NOT_WEBSITE.search(host) or "." not in host.split("/")[0]:
                continue
            if re.fullmatch(r"[\d.]+", host.split("/")[0]):
                continue
            return candidate.rstrip(".")[: MAX_FIELD * 2]
    return ""
