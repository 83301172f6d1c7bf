"""A small deterministic analyser standing in for ``intelligence.analysis`` where a test
needs a label it decides (the real one is used everywhere else): words decide the
sentiment and intent, the lines after ``-- `` are the signature, ``on YYYY-MM-DD at
HH:MM`` is a meeting."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from crmail.intelligence.analysis import Analysis, MailText, Meeting, Signature

NEGATIVE = ("angry", "unacceptable", "terrible", "disappointed", "broken")
POSITIVE = ("thanks", "great", "wonderful")
PHONE = re.compile(r"\+?\d[\d ()-]{6,}\d")
MEETING = re.compile(r"on (\d{4}-\d{2}-\d{2}) at (\d{2}:\d{2})")


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
        meetings = tuple(
            Meeting(datetime.fromisoformat(f"{d}T{t}").replace(tzinfo=UTC), f"on {d} at {t}")
            for d, t in MEETING.findall(body)
        )
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

    def summarise(self, thread: Sequence[MailText], max_sentences: int = 3) -> str:
        return " ".join(m.text.split(".")[0].strip() + "." for m in thread[:max_sentences])

    def available_tiers(self) -> list[str]:
        return ["default"]
