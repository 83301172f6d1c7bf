"""Sentiment by lexicon: VADER for English, and small hand-written lexicons of the words of
sales mail for German, French, Spanish and Portuguese (valence -3..+3, VADER's scale).

The score is VADER's "compound" (-1..1); for the other languages it is computed the same
way: the sum of the words' valences, a negation word in the three words before flipping
and damping one, normalised by x / sqrt(x² + 15). The classifier of the default tier takes
these scores as features; they are not the tier's answer by themselves.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

_LEXICONS: dict[str, str] = {
    "de": """
    danke:1.5 dank:1.5 vielen:0.5 super:2.5 toll:2.5 prima:2 klasse:2 großartig:3 grossartig:3
    hervorragend:3 ausgezeichnet:3 perfekt:2.5 gerne:1.5 gern:1.5 freuen:2 freue:2 freuen:2
    freut:2 froh:2 glücklich:2.5 zufrieden:2 begeistert:3 überzeugt:2 gelungen:2 klappt:1.5
    passt:1 hilfreich:2 schnell:1 empfehlen:2 lob:2 wunderbar:3 spitze:2.5 gut:1.5 besten:1
    beste:1 schön:2 schöne:2 erfreulich:2 dankbar:2 herzlich:1 reibungslos:2 problemlos:1.5
    enttäuscht:-2.5 enttäuschend:-2.5 enttäuschung:-2.5 ärgerlich:-2.5 verärgert:-3 ärger:-2
    leider:-1 problem:-1.5 probleme:-1.5 fehler:-1.5 falsch:-1.5 schlecht:-2.5 schlechter:-2.5
    unzufrieden:-2.5 inakzeptabel:-3 unverschämt:-3 katastrophe:-3 katastrophal:-3
    beschwerde:-2 beschweren:-2 mangelhaft:-2.5 nervt:-2.5 nervig:-2 frustrierend:-2.5
    frustriert:-2.5 zweimal:-0.5 doppelt:-0.5 kündigen:-2 kündigung:-2 verspätet:-1.5
    verspätung:-1.5 wiederholt:-1 wiederholten:-1 immer:-0.3 noch:-0.2 nicht:-0.3 nie:-1.5
    niemand:-1.5 abbricht:-1.5 ausfall:-2 störung:-2 erwarte:-1 unmöglich:-2 sauer:-2.5
    zumutung:-3 teuer:-1 zu:-0.1 dringend:-1 absagen:-1 bedauern:-1.5 schade:-1.5
    """,
    "fr": """
    merci:1.5 super:2.5 génial:3 excellent:3 excellente:3 parfait:2.5 parfaite:2.5 ravi:2.5
    ravie:2.5 ravis:2.5 content:2 contente:2 contents:2 satisfait:2 satisfaite:2 satisfaits:2
    heureux:2.5 heureuse:2.5 plaisir:2 top:2 bravo:2.5 efficace:2 rapide:1 recommander:2
    formidable:3 impeccable:2.5 enchanté:2 enchantée:2 apprécié:2 apprécions:2 bien:1 bon:1
    bonne:1 belle:1.5 beau:1.5 merveilleux:3 réactivité:1 hâte:2 volontiers:1.5 convaincu:2
    déçu:-2.5 déçue:-2.5 déçus:-2.5 décevant:-2.5 déception:-2.5 mécontent:-2.5 mécontente:-2.5
    inacceptable:-3 inadmissible:-3 scandaleux:-3 problème:-1.5 problèmes:-1.5 erreur:-1.5
    erreurs:-1.5 bug:-1.5 panne:-2 retard:-1.5 retards:-1.5 plainte:-2 réclamation:-2
    malheureusement:-1 agacé:-2.5 agacée:-2.5 énervé:-2.5 furieux:-3 frustrant:-2.5
    lamentable:-3 nul:-2.5 mauvais:-2 mauvaise:-2 pire:-2.5 jamais:-1 toujours:-0.2 pas:-0.3
    rien:-1 aucun:-0.5 aucune:-0.5 ailleurs:-1 résilier:-2 résiliation:-2 double:-0.5 deux:-0.1
    sérieusement:-1 pénalise:-2 impossible:-2 cher:-1 urgent:-1 désolé:-0.5
    """,
    "es": """
    gracias:1.5 genial:3 excelente:3 perfecto:2.5 perfecta:2.5 encantado:2.5 encantada:2.5
    encantados:2.5 contento:2 contenta:2 contentos:2 satisfecho:2 satisfecha:2 feliz:2.5
    felices:2.5 estupendo:3 estupenda:3 maravilloso:3 fantástico:3 buen:1 bueno:1.5 buena:1.5
    gran:1 rápido:1 recomendar:2 agradecemos:2 agradezco:2 agradecido:2 ilusión:2 gusto:1.5
    placer:2 encanta:2.5 fenomenal:3 útil:1.5 bien:1 enhorabuena:2.5 felicidades:2.5
    decepcionado:-2.5 decepcionada:-2.5 decepción:-2.5 molesto:-2.5 molesta:-2.5 enfadado:-3
    inaceptable:-3 problema:-1.5 problemas:-1.5 error:-1.5 errores:-1.5 fallo:-2 fallos:-2
    retraso:-1.5 retrasos:-1.5 queja:-2 reclamación:-2 lamentablemente:-1 desgraciadamente:-1
    mal:-2 malo:-2 mala:-2 peor:-2.5 nunca:-1 nadie:-1.5 cancelar:-2 baja:-1 harto:-3 harta:-3
    indignado:-3 vergüenza:-2.5 frustrante:-2.5 impresentable:-3 insatisfecho:-2.5 caro:-1
    urgente:-1 duplicado:-0.5 dos:-0.1 sigue:-0.3 todavía:-0.3 aún:-0.3 no:-0.3 ni:-0.5
    lamento:-1 siento:-0.5 imposible:-2
    """,
    "pt": """
    obrigado:1.5 obrigada:1.5 ótimo:2.5 otimo:2.5 ótima:2.5 excelente:3 perfeito:2.5
    perfeita:2.5 adorei:3 adoramos:3 gostei:2 gostamos:2 satisfeito:2 satisfeita:2
    satisfeitos:2 feliz:2.5 felizes:2.5 contente:2 contentes:2 maravilhoso:3 fantástico:3
    incrível:3 bom:1.5 boa:1.5 parabéns:2.5 rápido:1 recomendar:2 agradeço:2 agradecemos:2
    prazer:2 top:2 show:2 sucesso:2 útil:1.5 bem:1 animado:2 animados:2 encantado:2.5
    decepcionado:-2.5 decepcionada:-2.5 decepção:-2.5 chateado:-2.5 chateada:-2.5 irritado:-3
    inaceitável:-3 absurdo:-3 problema:-1.5 problemas:-1.5 erro:-1.5 erros:-1.5 falha:-2
    falhas:-2 atraso:-1.5 atrasos:-1.5 atrasado:-1.5 reclamação:-2 infelizmente:-1
    mau:-2 ruim:-2.5 péssimo:-3 pior:-2.5 nunca:-1 ninguém:-1.5 cancelar:-2 cancelamento:-2
    frustrante:-2.5 insatisfeito:-2.5 insatisfeita:-2.5 lamentável:-3 vergonha:-2.5 caro:-1
    urgente:-1 duplicada:-0.5 duplicado:-0.5 duas:-0.1 ainda:-0.3 não:-0.3 nem:-0.5
    descaso:-3 desrespeito:-3 impossível:-2 lamento:-1
    """,
}
_NEGATIONS = {
    "de": {"nicht", "kein", "keine", "keinen", "keiner", "nie", "niemals", "ohne"},
    "fr": {"pas", "ne", "n", "jamais", "plus", "sans", "aucun", "aucune"},
    "es": {"no", "nunca", "sin", "ni", "tampoco", "jamás"},
    "pt": {"não", "nunca", "sem", "nem", "jamais"},
}
_BOOSTERS = {
    "de": {"sehr", "wirklich", "extrem", "absolut", "total", "äußerst", "ziemlich", "echt"},
    "fr": {"très", "vraiment", "extrêmement", "absolument", "totalement", "tellement", "trop"},
    "es": {"muy", "realmente", "extremadamente", "absolutamente", "totalmente", "súper", "tan"},
    "pt": {"muito", "realmente", "extremamente", "absolutamente", "totalmente", "super", "tão"},
}
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?", re.UNICODE)


@cache
def _lexicon(lang: str) -> dict[str, float]:
    table: dict[str, float] = {}
    for item in _LEXICONS.get(lang, "").split():
        word, _, value = item.rpartition(":")
        table[word] = float(value)
    return table


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def scores(text: str, lang: str) -> tuple[float, float, float]:
    """(compound -1..1, positive share 0..1, negative share 0..1) of a text."""
    text = text[:3000]
    if lang == "en" or lang not in _LEXICONS:
        found = _vader().polarity_scores(text)
        return found["compound"], found["pos"], found["neg"]
    table = _lexicon(lang)
    negations, boosters = _NEGATIONS[lang], _BOOSTERS[lang]
    words = [w.lower() for w in _WORD.findall(text)]
    total = positive = negative = 0.0
    for i, word in enumerate(words):
        value = table.get(word)
        if value is None:
            continue
        window = words[max(0, i - 3) : i]
        if any(w in boosters for w in window):
            value *= 1.3
        if any(w in negations for w in window):
            value *= -0.74
        total += value
        if value > 0:
            positive += value
        else:
            negative -= value
    compound = total / math.sqrt(total * total + 15) if total else 0.0
    size = max(len(words), 1)
    return compound, min(positive / size, 1.0), min(negative / size, 1.0)
