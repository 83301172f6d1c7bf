"""Email intelligence, the analysis itself: pure functions over text, no Django, no network.

What the rest of crmail calls (SPEC F15): ``analyse`` a batch of messages into their reply
text, language, sentiment, intent, signature details and the meeting times they mention;
``summarise`` a long thread. Two tiers, both offline: ``default`` (rules, a lexicon and a
small classifier shipped as a file) and ``ml`` (the optional ``crmail[ml]`` extra: a
sentence-embedding model shipped inside a Python package, with a classifier head).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Sentiment = Literal["positive", "neutral", "negative"]
Intent = Literal["request", "question", "complaint", "scheduling", "unsubscribe", "other"]
Tier = Literal["default", "ml"]

SENTIMENTS: tuple[Sentiment, ...] = ("positive", "neutral", "negative")
INTENTS: tuple[Intent, ...] = (
    "request",
    "question",
    "complaint",
    "scheduling",
    "unsubscribe",
    "other",
)


@dataclass(frozen=True, slots=True)
class MailText:
    """One message as the analysis sees it."""

    subject: str
    text: str  # the plain-text body as crmail stores it (quotes and signature included)
    date: datetime | None = None  # the message's Date, timezone-aware
    time_zone: str | None = None  # the sender's IANA zone where known (else the date's offset)
    from_name: str = ""
    from_address: str = ""


@dataclass(frozen=True, slots=True)
class Signature:
    """Details read from a signature block; offered to the user, never applied silently."""

    name: str = ""
    title: str = ""
    company: str = ""
    website: str = ""
    phones: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.name or self.title or self.company or self.website or self.phones)


@dataclass(frozen=True, slots=True)
class Meeting:
    """A meeting time the text mentions, resolved against the message's date and zone."""

    start: datetime  # timezone-aware
    text: str  # the words it was read from, as written
    approximate: bool = False  # "Tuesday morning": a part of the day, not a clock time


@dataclass(frozen=True, slots=True)
class Analysis:
    language: str  # ISO 639-1: en, de, fr, es, pt (or "" when unknown)
    reply_text: str  # the new text: quotes, forwarded parts and signature removed
    sentiment: Sentiment
    sentiment_score: float  # -1.0 (most negative) .. 1.0 (most positive)
    intent: Intent
    signature: Signature | None
    meetings: tuple[Meeting, ...] = field(default=())
    tier: Tier = "default"
    version: str = ""  # the model's version: a result with another version is recomputed


def analyse(items: Sequence[MailText], tier: Tier = "default") -> list[Analysis]:
    """Analyse a batch (one result per item, in order). Never touches the network.

    Raises ``engine.TierUnavailable`` (a RuntimeError) for "ml" without the extra."""
    from . import engine

    return engine.analyse(items, tier)


def summarise(thread: Sequence[MailText], max_sentences: int = 3) -> str:
    """A short extractive summary of a thread (oldest message first): its key sentences."""
    from . import engine

    return engine.summarise(thread, max_sentences)


def available_tiers() -> list[Tier]:
    """The tiers this installation can run ("ml" only when the extra is installed)."""
    from . import engine

    return engine.available_tiers()
