"""The analysis itself: one message's reply text, language, signature and meetings by
rules, its intent and sentiment by the tier's classifier; and thread summaries.

``crmail.intelligence.analysis.analyse`` / ``summarise`` / ``available_tiers`` call these.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from crmail.intelligence.analysis import (
    INTENTS,
    SENTIMENTS,
    Analysis,
    Intent,
    MailText,
    Meeting,
    Sentiment,
    Signature,
    Tier,
)

from . import features, language, meetings, ml, model, reply, signature

INTENT_CLASSES: tuple[str, ...] = INTENTS
SENTIMENT_CLASSES: tuple[str, ...] = SENTIMENTS
# The rules' revision, part of a result's version beside the model's: a change to what they
# read of a message makes earlier results stale, as a new model does (``crmail
# intelligence rerun`` computes them again). 2: the reply written below or between the quotes
# is read; a reply with nothing written has no intent. 3: "mailing list" signals an opt-out
# only after "off" or "from"; "[team] Re: …", "Re[2]: …" and "… (fwd)" are replies' and
# forwards' subjects (``features``).
RULES = 3


_ANY_WORD = re.compile(r"[^\W\d_]")


class TierUnavailable(RuntimeError):
    """The ``ml`` tier was asked for on an installation without the ``crmail[ml]`` extra."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the rules read of a message, before the classifier."""

    reply_text: str
    language: str
    signature: Signature | None
    meetings: tuple[Meeting, ...]
    features: features.Features
    embedding_text: str
    # Nothing written: no word in the reply text, nor in the subject unless it is the
    # answered message's ("Re: …").
    empty: bool = False


def prepare(item: MailText) -> Prepared:
    body, sig_lines = reply.split(item.text or "", item.from_name)
    text = "\n".join(body)
    lang = language.detect(item.subject + "\n" + text) or language.detect(item.text or "")
    found = tuple(meetings.extract(text, item.date, item.time_zone))
    return Prepared(
        reply_text=text,
        language=lang,
        signature=signature.from_lines(sig_lines, item.from_name),
        meetings=found,
        features=features.extract(item.subject, text, lang, bool(found)),
        embedding_text=(item.subject + "\n" + text)[:2000],
        empty=not _ANY_WORD.search(
            ("" if features.is_reply_subject(item.subject) else item.subject) + "\n" + text
        ),
    )


@cache
def load(tier: Tier) -> model.Model:
    return model.load(model.MODELS / f"{tier}.npz")


def available_tiers() -> list[Tier]:
    tiers: list[Tier] = ["default"]
    if ml.available() and (model.MODELS / "ml.npz").exists():
        tiers.append("ml")
    return tiers


def analyse(items: Sequence[MailText], tier: Tier = "default") -> list[Analysis]:
    if tier not in ("default", "ml"):
        raise ValueError(f"unknown analysis tier {tier!r}")
    if tier == "ml" and "ml" not in available_tiers():
        raise TierUnavailable("the ml tier needs crmail's optional extra: pip install 'crmail[ml]'")
    if not items:
        return []
    prepared = [prepare(item) for item in items]
    return classify(prepared, tier)


def classify(prepared: Sequence[Prepared], tier: Tier) -> list[Analysis]:
    chosen = load(tier)
    embeddings = ml.embed([p.embedding_text for p in prepared]) if tier == "ml" else None
    feats = [p.features for p in prepared]
    intents = chosen.heads["intent"].probabilities(feats, embeddings)
    sentiments = chosen.heads["sentiment"].probabilities(feats, embeddings)
    intent_classes = chosen.heads["intent"].classes
    sentiment_classes = chosen.heads["sentiment"].classes
    positive = sentiment_classes.index("positive")
    negative = sentiment_classes.index("negative")
    results: list[Analysis] = []
    for i, item in enumerate(prepared):
        intent: Intent = intent_classes[int(np.argmax(intents[i]))]  # type: ignore[assignment]
        sentiment: Sentiment = sentiment_classes[int(np.argmax(sentiments[i]))]  # type: ignore[assignment]
        # -1..1: how much likelier positive is than negative.
        score = float(sentiments[i, positive] - sentiments[i, negative])
        if item.empty:  # nothing written: nothing to classify
            intent, sentiment, score = "other", "neutral", 0.0
        results.append(
            Analysis(
                language=item.language,
                reply_text=item.reply_text,
                sentiment=sentiment,
                sentiment_score=round(max(-1.0, min(1.0, score)), 4),
                intent=intent,
                signature=item.signature,
                meetings=item.meetings,
                tier=tier,
                version=f"{chosen.version}-r{RULES}",
            )
        )
    return results


# --- summaries -----------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[^\W\d_]|\d)|\n+")
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon)|hallo|guten (?:morgen|tag)|"
    r"sehr geehrte|liebe|lieber|moin|servus|bonjour|bonsoir|salut|cher|chère|hola|"
    r"estimad[oa]s?|buen(?:os|as) (?:días|tardes)|olá|ola|oi|prezad[oa]s?|bom dia|boa tarde|"
    r"caro|cara)\b",
    re.IGNORECASE,
)
_STOP = frozenset().union(*language._SETS.values())


def _sentences(text: str, from_name: str) -> list[str]:
    body = reply.split(text, from_name)[0]
    lines = [line.strip() for line in body]
    while lines and (not lines[0] or (_GREETING.match(lines[0]) and len(lines[0]) < 60)):
        lines.pop(0)
    while lines and (not lines[-1] or reply.is_closing(lines[-1]) or len(lines[-1].split()) <= 3):
        lines.pop()
    out: list[str] = []
    for paragraph in "\n".join(lines).split("\n\n"):
        text = " ".join(paragraph.split())
        for sentence in _SENTENCE.split(text):
            sentence = sentence.strip()
            if len(sentence.split()) >= 4:
                out.append(sentence)
    return out


# A thread's summary is made for each of its messages as of that message, so the same
# earlier messages are read again and again (up to ``THREAD_LIMIT`` of them each time):
# each one's sentences are worked out once. Bodies are at most 200,000 characters; 128 of
# them are at most 25 MB and usually a few hundred KB.
@lru_cache(maxsize=128)
def _sentence_words(text: str, from_name: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """The key-sentence candidates of a body: each sentence with its words (stop words
    left out)."""
    return tuple(
        (sentence, frozenset(w.lower() for w in _WORD.findall(sentence)) - _STOP)
        for sentence in _sentences(text, from_name)
    )


def summarise(thread: Sequence[MailText], max_sentences: int = 3) -> str:
    """The thread's key sentences, in thread order: those whose words recur most across the
    thread's messages (a word in many messages is what the thread is about), questions and
    sentences with dates or figures a little ahead, the newest message's a little more."""
    candidates: list[tuple[int, int, str, frozenset[str]]] = []
    frequency: Counter[str] = Counter()
    for m, message in enumerate(thread):
        message_words: set[str] = set()
        for s, (sentence, words) in enumerate(
            _sentence_words(message.text or "", message.from_name)
        ):
            message_words |= words
            candidates.append((m, s, sentence, words))
        frequency.update(message_words)
    if not candidates or max_sentences <= 0:
        return ""
    last = len(thread) - 1
    scored: list[tuple[float, int, int, str]] = []
    for m, s, sentence, words in candidates:
        weight = sum(frequency[w] for w in words) / math.sqrt(len(words) + 1)
        if "?" in sentence:
            weight *= 1.2
        if re.search(r"\d", sentence):
            weight *= 1.1
        if m == last:
            weight *= 1.15
        scored.append((weight, m, s, sentence))
    best = sorted(scored, key=lambda x: (-x[0], x[1], x[2]))[:max_sentences]
    return " ".join(sentence for _, _, _, sentence in sorted(best, key=lambda x: (x[1], x[2])))
