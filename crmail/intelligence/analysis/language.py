"""Which language a text is in: English, German, French, Spanish or Portuguese.

A count of each language's commonest short words (and of letters only one of them uses) is
enough to tell these five apart in a few lines of mail, and needs no model.
"""

from __future__ import annotations

import re

LANGUAGES = ("en", "de", "fr", "es", "pt")

_WORDS = {
    "en": "the and to of a in is it you that for on with be are this have we i will your can "
    "would could please thanks thank as at our not but if me my from do so just let know",
    "de": "der die das und ist nicht ich sie wir ein eine zu mit für auf den dem des im es "
    "bitte danke uns ihr ihnen sind haben wird wäre können noch auch aber oder wie bei "
    "vielen dank grüße gerne",
    "fr": "le la les et est pas je vous nous un une de des du pour sur avec dans ce cette "
    "qui que merci bonjour au aux sont avons êtes pouvez serait mais ou votre vos nos "
    "cordialement",
    "es": "el la los las y es no yo usted nosotros un una de del para con en por que qué "
    "gracias hola su sus nuestro nuestra muy pero podemos puede sería está están le les "
    "saludos también",
    "pt": "o a os as e é não eu você nós um uma de do da dos das para com em no na por que "
    "obrigado obrigada olá seu sua nosso nossa muito mas podemos pode seria está estão "
    "atenciosamente também vocês",
}
_SETS = {lang: frozenset(words.split()) for lang, words in _WORDS.items()}
# Letters and letter pairs one of the five languages has and the others lack.
_MARKS = {
    "de": re.compile(r"[äöüß]|sch|\bich\b"),
    "fr": re.compile(r"[èêàùûœç]|\b[ldjqn]['\u2019]"),
    "es": re.compile(r"[ñ¿¡]|ción\b"),
    "pt": re.compile(r"[ãõ]|ção\b|ções\b|\bnão\b"),
}
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect(text: str) -> str:
    """The ISO 639-1 code of the text's language, or "" when the text has too few words."""
    words = _TOKEN.findall(text.lower()[:4000])
    if not words:
        return ""
    scores = {lang: 0.0 for lang in LANGUAGES}
    for word in words:
        for lang, common in _SETS.items():
            if word in common:
                scores[lang] += 1.0
    lowered = text.lower()[:4000]
    for lang, mark in _MARKS.items():
        scores[lang] += 0.5 * len(mark.findall(lowered))
    best = max(LANGUAGES, key=lambda lang: scores[lang])
    return best if scores[best] >= 1.0 else ""
