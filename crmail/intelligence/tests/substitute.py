"""A small deterministic analyser standing in for ``intelligence.analysis`` where a test
needs a label it decides (the real one is used everywhere else): words decide the
sentiment and intent, the lines after ``-- `` are the signature, ``on 5 March at
14:30`` is a meeting."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from crmail.intelligence import analysis
from crmail.intelligence.analysis import Analysis, MailText, Meeting, Signature

NEGATIVE = ("angry", "unacceptable", "terrible", "disappointed", "broken")
POSITIVE = ("thanks", "great", "wonderful")
PHONE = re.compile(r"\+?\d[\d ()-]{6,}\d")
MEETING = re.compile(
    r"on (\d{1,2}) (January|February|March|April|May|June|July|August|"
    r"September|October|November|December) at (\d{2}):(\d{2})"
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class Substitute:
    version = "substitute-1"
    calls = 0

    def analyse(self, items: Sequence[MailText], tier: str = "default") -> list[Analysis]:
        self.calls += len(items)
        return [self._one(item, tier) for item in items]

    def _one(self, item: MailText, tier: str) -> Analysis:
        body, _, sig = item.text.partition("\n-- \n")
        words = body.lower()
        if any(w in words for w in NEGATIVE):
            sentiment, score = "negative", -0.8
        elif any(w in words for w in POSITIVE):
            sentiment, score = "positive", 0.7
        else:
            sentiment, score = "neutral", 0.0
        if "unsubscribe" in words:
            intent = "unsubscribe"
        elif sentiment == "negative":
            intent = "complaint"
        elif "meet" in words:
            intent = "scheduling"
        elif "?" in words:
            intent = "question"
        else:
            intent = "other"
        signature = None
        lines = [line.strip() for line in sig.splitlines() if line.strip()]
        if lines:
            phones = tuple(m.group(0) for line in lines for m in PHONE.finditer(line))
            others = [line for line in lines if not PHONE.search(line)]
            signature = Signature(
                name=others[0] if others else "",
                title=others[1] if len(others) > 1 else "",
                company=others[2] if len(others) > 2 else "",
                phones=phones,
            )
        meetings = tuple(self._meeting(m, item.date) for m in MEETING.finditer(body))
        return Analysis(
            language="en",
            reply_text=body.strip(),
            sentiment=sentiment,  # type: ignore[arg-type]
            sentiment_score=score,
            intent=intent,  # type: ignore[arg-type]
            signature=signature,
            meetings=meetings,
            tier=tier,  # type: ignore[arg-type]
            version=self.version,
        )

    @staticmethod
    def _meeting(found: re.Match[str], sent: datetime | None) -> Meeting:
        """``on 5 March at 14:30``: the next such day after the message's date (UTC)."""
        day, month, hour, minute = found.groups()
        base = sent or datetime.now(UTC)
        start = datetime(
            base.year, MONTHS.index(month) + 1, int(day), int(hour), int(minute), tzinfo=UTC
        )
        if start < base:
            start = start.replace(year=base.year + 1)
        return Meeting(start, found.group(0).removeprefix("on "))

    def summarise(self, thread: Sequence[MailText], max_sentences: int = 3) -> str:
        return " ".join(m.text.split(".")[0].strip() + "." for m in thread[:max_sentences])

    def available_tiers(self) -> list[str]:
        return ["default"]


def engine_installed() -> bool:
    """Whether crmail's analysis runs here (it does, once its modules are in)."""
    try:
        analysis.analyse([analysis.MailText(subject="", text="")])
    except NotImplementedError:
        return False
    return True


def use_substitute(monkeypatch: pytest.MonkeyPatch) -> Substitute:
    fake = Substitute()
    monkeypatch.setattr(analysis, "analyse", fake.analyse)
    monkeypatch.setattr(analysis, "summarise", fake.summarise)
    monkeypatch.setattr(analysis, "available_tiers", fake.available_tiers)
    return fake
