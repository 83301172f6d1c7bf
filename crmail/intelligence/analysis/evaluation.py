"""Scores of the analysis on the labelled set, and the two baselines it must beat.

- per class precision, recall and F1 and their macro average, for intent and sentiment;
- the reply text's exact-match rate (after ``reply.normalise`` on both sides);
- signature fields: the share of messages whose field equals the label (an absent
  signature counts as empty fields);
- meetings: the share of messages whose set of (start, approximate) equals the label's.

The baselines: the majority class of the train split, and keyword rules (a few words per
intent and per sentiment in the five languages, first match wins) written without looking
at the classifier.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from crmail.intelligence.analysis import INTENTS, SENTIMENTS, Analysis

from . import reply
from .dataset import Example

SIGNATURE_FIELDS = ("name", "title", "company", "website", "phones")


@dataclass
class ClassScores:
    per_class: dict[str, tuple[float, float, float, int]]  # precision, recall, F1, support
    macro_f1: float
    accuracy: float


@dataclass
class Scores:
    intent: ClassScores
    sentiment: ClassScores
    reply_exact: float | None = None
    signature: dict[str, float] = field(default_factory=dict)
    meetings: float | None = None


def class_scores(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> ClassScores:
    per_class: dict[str, tuple[float, float, float, int]] = {}
    for label in labels:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p == label)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != label and p == label)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = (precision, recall, f1, tp + fn)
    present = [label for label in labels if per_class[label][3]]
    macro = sum(per_class[label][2] for label in present) / len(present) if present else 0.0
    correct = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p)
    return ClassScores(per_class, macro, correct / len(truth) if truth else 0.0)


def labels_scores(
    examples: Sequence[Example], intents: Sequence[str], sentiments: Sequence[str]
) -> Scores:
    return Scores(
        intent=class_scores([e.intent for e in examples], intents, INTENTS),
        sentiment=class_scores([e.sentiment for e in examples], sentiments, SENTIMENTS),
    )


def score(examples: Sequence[Example], results: Sequence[Analysis]) -> Scores:
    scores = labels_scores(examples, [r.intent for r in results], [r.sentiment for r in results])
    n = len(examples) or 1
    scores.reply_exact = (
        sum(
            reply.normalise(r.reply_text) == reply.normalise(e.reply_text)
            for e, r in zip(examples, results, strict=True)
        )
        / n
    )
    for name in SIGNATURE_FIELDS:
        hits = 0
        for e, r in zip(examples, results, strict=True):
            expected = (e.signature or {}).get(name) or ([] if name == "phones" else "")
            got = getattr(r.signature, name) if r.signature else ()
            hits += (list(got) if name == "phones" else got or "") == expected
        scores.signature[name] = hits / n
    scores.meetings = (
        sum(
            tuple(sorted((m.start.isoformat(), m.approximate) for m in r.meetings)) == e.meetings
            for e, r in zip(examples, results, strict=True)
        )
        / n
    )
    return scores


# --- baselines -----------------------------------------------------------------------


def majority(train: Sequence[Example], test: Sequence[Example]) -> Scores:
    intent = Counter(e.intent for e in train).most_common(1)[0][0]
    sentiment = Counter(e.sentiment for e in train).most_common(1)[0][0]
    return labels_scores(test, [intent] * len(test), [sentiment] * len(test))


_KEYWORD_INTENTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (intent, re.compile(words, re.IGNORECASE))
    for intent, words in (
        ("unsubscribe", r"unsubscribe|remove me|remove us|opt out|stop sending|no more emails|"
         r"gdpr|abmelden|austragen|keine weiteren|löschen|dsgvo|désinscri|désabonn|"
         r"ne plus recevoir|supprimer|rgpd|darme de baja|dar de baja|no quiero recibir|"
         r"descadastr|remover|não quero receber|lgpd"),
        ("complaint", r"disappointed|unacceptable|complaint|still not|again|refund|"
         r"enttäuscht|beschwerde|inakzeptabel|immer noch|schon wieder|déçu|inacceptable|"
         r"réclamation|toujours pas|decepcionado|inaceptable|queja|todavía no|inaceitável|"
         r"reclamação|ainda não"),
        ("scheduling", r"meeting|call|demo|reschedule|termin|rendez-vous|réunion|reunión|"
         r"llamada|reunião"),
        ("request", r"please send|could you send|can you send|bitte senden|bitte schicken|"
         r"könnten sie|pourriez-vous|merci de m'envoyer|podría enviar|por favor envíe|"
         r"poderia enviar|por favor envie"),
        ("question", r"\?"),
    )
)  # fmt: skip
_KEYWORD_POSITIVE = re.compile(
    r"thank|great|love|excellent|danke|super|toll|merci|génial|parfait|gracias|genial|"
    r"excelente|obrigad|ótimo",
    re.IGNORECASE,
)
_KEYWORD_NEGATIVE = re.compile(
    r"disappoint|unacceptable|problem|frustrat|enttäusch|ärgerlich|problem|déçu|"
    r"inacceptable|problème|decepcion|problema|inaceitável|inaceptable",
    re.IGNORECASE,
)


def keyword_intent(text: str) -> str:
    for intent, pattern in _KEYWORD_INTENTS:
        if pattern.search(text):
            return intent
    return "other"


def keyword_sentiment(text: str) -> str:
    negative = len(_KEYWORD_NEGATIVE.findall(text))
    positive = len(_KEYWORD_POSITIVE.findall(text))
    if negative > positive:
        return "negative"
    if positive > negative:
        return "positive"
    return "neutral"


def keywords(test: Sequence[Example]) -> Scores:
    """The keyword baseline, on the whole text less its quoted part (what a simple filter
    would see: the reply-text rules are the tiers' own)."""
    from crmail.linking import signatures

    texts = [e.mail.subject + "\n" + "\n".join(signatures.reply_text(e.mail.text)) for e in test]
    return labels_scores(
        test, [keyword_intent(t) for t in texts], [keyword_sentiment(t) for t in texts]
    )
