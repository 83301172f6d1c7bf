"""What the classifiers read of a message: hashed word and character n-grams of its reply
text and subject, and a few numbers (the lexicon's sentiment, question marks, a meeting
time found, words that signal an opt-out, a complaint, a request …).

Hashing (CRC-32 into 2^18 buckets) needs no vocabulary file and gives the same features on
every machine and Python version. The hashed part is L2-normalised; the numbers are kept
to about 0..1.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass

from . import lexicon

BUCKETS = 1 << 18
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?", re.UNICODE)
_NUMBER = re.compile(r"\d")
# "Re: …", "AW: …", "Fwd: …", "Re[2]: …", also behind a mailing list's tag ("[team] Re: …").
_REPLY_PREFIX = re.compile(
    r"^(?:\[[^\]\n]{1,80}\]\s*)?(?:(?:re|aw|wg|fw|fwd|tr|rv|res|enc)(?:\[\d{1,3}\])?\s*:\s*)+",
    re.IGNORECASE,
)
_FORWARDED_SUFFIX = re.compile(r"\((?:fwd|fw)\)\s*$", re.IGNORECASE)  # "… (fwd)", as Pine writes

# Cues in the five languages, each a number among the features.
_CUES: dict[str, re.Pattern[str]] = {
    "unsubscribe": re.compile(
        r"unsubscribe|opt[ -]?out|remove (?:me|us|my)|take (?:me|us) off|stop (?:sending|emailing)|"
        # "Mailing list" only as what someone asks to be taken off or removed from: mail
        # that talks about a list (its archive, a post to it) is not an opt-out.
        r"(?:(?<=off )|(?<=from ))(?:(?:all|any|each|of|your|this|the|our|these|those) )*"
        r"mailing lists?|"
        r"gdpr|no longer (?:wish|want) to receive|abmelden|austragen|abbestellen|"
        r"keine (?:weiteren )?(?:e-?mails|newsletter|werbung)|dsgvo|löschen sie|löschung|"
        r"désinscri|désabonn|retirez|ne plus recevoir|rgpd|supprimer mes|"
        r"darme de baja|dar de baja|baja de|no (?:deseo|quiero) recibir|eliminen|lopd|"
        r"descadastr|cancelar (?:a )?inscrição|remover|não (?:desejo|quero) (?:mais )?receber|lgpd",
    ),
    "complaint": re.compile(
        r"disappoint|unacceptable|frustrat|complain|still (?:not|waiting|no)|again\b|twice|"
        r"not working|broken|refund|overcharg|charged|delay|late\b|wrong|error|"
        r"enttäusch|inakzeptabel|beschwer|immer noch|schon wieder|zweimal|funktioniert nicht|"
        r"fehler|verspät|falsch|déçu|inacceptable|toujours pas|encore|deux fois|ne fonctionne|"
        r"erreur|retard|réclamation|decepcion|inaceptable|todavía no|otra vez|dos veces|"
        r"no funciona|retraso|queja|decepcion|inaceitável|ainda não|de novo|duas vezes|"
        r"não funciona|atraso|reclama",
    ),
    "request": re.compile(
        r"could you|can you|would you|please (?:send|call|add|update|change|share|provide)|"
        r"send (?:me|us|over)|könnten sie|können sie|würden sie|bitte (?:senden|schicken|"
        r"rufen|ändern|passen)|schicken sie|senden sie|pourriez-vous|pouvez-vous|merci de|"
        r"envoyez|podría|podrían|puede enviar|envíe|enviar|me envíe|poderia|podem|pode enviar|"
        r"envie|enviar|por favor",
    ),
    "schedule": re.compile(
        r"meeting|call\b|demo\b|calendar|invite|reschedul|works for (?:me|us)|available|"
        r"termin|treffen|verschieben|kalender|einladung|rendez-vous|réunion|créneau|"
        r"disponible|décaler|reunión|llamada|cita|agenda|reunião|horário|remarcar",
    ),
    "thanks": re.compile(
        r"thank|appreciate|great job|danke|dank\b|merci|gracias|agradec|obrigad|agradeç",
    ),
    "away": re.compile(
        r"out of (?:the )?office|on leave|abwesen|außer haus|urlaub|absent|congés|"
        r"fuera de la oficina|vacaciones|ausente|férias|fora do escritório",
    ),
}
DENSE_NAMES = (
    "compound",
    "positive",
    "negative",
    "questions",
    "exclamations",
    "meeting",
    *_CUES,
    "length",
)


TONE_CHARS = 1000


def is_reply_subject(subject: str) -> bool:
    """A subject carried over from the message answered or forwarded ("Re: …", "AW: …",
    "Fwd: …", "[team] Re: …", "… (fwd)"): not words the sender wrote."""
    subject = subject.strip()
    return bool(_REPLY_PREFIX.match(subject) or _FORWARDED_SUFFIX.search(subject))


@dataclass(frozen=True, slots=True)
class Features:
    hashed: dict[int, float]  # bucket → value (L2-normalised)
    dense: tuple[float, ...]


def extract(subject: str, reply: str, lang: str, has_meeting: bool) -> Features:
    """The features of one message (``reply`` is its reply text)."""
    body = reply[:2000]
    words = [_NUMBER.sub("0", w.lower()) for w in _WORD.findall(body)]
    keys = ["w:" + w for w in words]
    keys += ["b:" + a + " " + b for a, b in itertools.pairwise(words)]
    for word in words:
        padded = f"<{word}>"
        keys += ["c:" + padded[j : j + 3] for j in range(len(padded) - 2)]
        keys += ["c:" + padded[j : j + 4] for j in range(len(padded) - 3)]
    subject_words = _REPLY_PREFIX.sub("", subject)
    keys += ["s:" + w for w in _WORD.findall(subject_words.lower())]
    keys.append("lang:" + lang)
    counts: dict[int, float] = {}
    for key, count in Counter(keys).items():
        bucket = zlib.crc32(key.encode("utf-8")) & (BUCKETS - 1)
        counts[bucket] = counts.get(bucket, 0.0) + count
    hashed = {k: 1.0 + math.log(v) for k, v in counts.items()}
    norm = math.sqrt(sum(v * v for v in hashed.values())) or 1.0
    hashed = {k: v / norm for k, v in hashed.items()}

    # The lexicon's tone of the first 1,000 characters: VADER's cost grows with the text
    # (6 ms for 2,000), and the labelled set's longest reply is 513.
    compound, positive, negative = lexicon.scores(body[:TONE_CHARS], lang)
    text = (subject + "\n" + body).lower()
    dense = (
        compound,
        positive,
        negative,
        min(body.count("?"), 3) / 3,
        min(body.count("!"), 3) / 3,
        1.0 if has_meeting else 0.0,
        *(min(len(cue.findall(text)), 3) / 3 for cue in _CUES.values()),
        min(math.log1p(len(words)) / 6, 1.0),
    )
    return Features(hashed, dense)
