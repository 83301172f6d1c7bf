"""The labelled sales-mail set (``datasets/sales-mail/<lang>.jsonl``, its format in the
set's README): read into ``MailText`` and the labels the evaluation compares with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from crmail.intelligence.analysis import MailText

ROOT = Path(__file__).resolve().parents[3] / "datasets" / "sales-mail"
LANGUAGES = ("en", "de", "fr", "es", "pt")


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    lang: str
    split: str
    mail: MailText
    reply_text: str
    sentiment: str
    intent: str
    signature: dict[str, Any] | None
    meetings: tuple[tuple[str, bool], ...]  # (start as ISO 8601, approximate)


def load(root: Path = ROOT, split: str | None = None) -> list[Example]:
    """The examples of all languages' files (in language, then file order)."""
    examples: list[Example] = []
    for lang in LANGUAGES:
        path = root / f"{lang}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if split is not None and row["split"] != split:
                continue
            examples.append(_example(row))
    return examples


def _example(row: dict[str, Any]) -> Example:
    sent = datetime.fromisoformat(row["date"]) if row.get("date") else None
    mail = MailText(
        subject=row.get("subject") or "",
        text=row.get("text") or "",
        date=sent,
        time_zone=row.get("time_zone"),
        from_name=row.get("from_name") or "",
        from_address=row.get("from_address") or "",
    )
    meetings = tuple(
        sorted(
            (datetime.fromisoformat(m["start"]).isoformat(), bool(m.get("approximate")))
            for m in row.get("meetings") or []
        )
    )
    return Example(
        id=row["id"],
        lang=row["lang"],
        split=row["split"],
        mail=mail,
        reply_text=row.get("reply_text") or "",
        sentiment=row["sentiment"],
        intent=row["intent"],
        signature=row.get("signature"),
        meetings=meetings,
    )
