"""Email intelligence (SPEC F15) on the labelled sales-mail set's test split.

    python bench/intelligence_bench.py [--data datasets/sales-mail] [--repeat 5]
                                       [--out docs/benchmarks.md]

For the ``default`` tier, the ``ml`` tier (when the ``crmail[ml]`` extra is installed) and
two baselines (the train split's majority class; keyword rules, in
``crmail.intelligence.analysis.evaluation``): precision, recall and F1 per class for intent
and for sentiment, and their macro average; for the tiers also the reply text's exact-match
rate, the signature fields' accuracy and the meetings' accuracy (rules, the same in both
tiers), and throughput: ``analyse`` on the test split repeated ``--repeat`` times, in
batches of 64, after one warm-up batch (model loading is not counted), as messages per
second of wall time, with the CPU seconds beside it (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchenv import cpu, replaced
from crmail.intelligence.analysis import (
    INTENTS,
    SENTIMENTS,
    analyse,
    available_tiers,
    dataset,
    evaluation,
)

MARK_START = "<!-- intelligence-bench:start -->"
MARK_END = "<!-- intelligence-bench:end -->"
BATCH = 64


def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu()}; {platform.platform()}; Python {platform.python_version()}; load average {load}"
    )


def throughput(examples: list[dataset.Example], tier: str, repeat: int) -> tuple[float, float]:
    mails = [e.mail for e in examples] * repeat
    analyse(mails[:BATCH], tier)  # warm-up: loads the model
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(mails), BATCH):
        analyse(mails[i : i + BATCH], tier)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(mails) / wall, cpu


def run(root: Path, repeat: int) -> tuple[str, dict[str, evaluation.Scores]]:
    train = dataset.load(root, "train")
    test = dataset.load(root, "test")
    rows: dict[str, evaluation.Scores] = {
        "majority class": evaluation.majority(train, test),
        "keyword rules": evaluation.keywords(test),
    }
    speed: dict[str, tuple[float, float]] = {}
    for tier in available_tiers():
        rows[f"{tier} tier"] = evaluation.score(test, analyse([e.mail for e in test], tier))
        speed[f"{tier} tier"] = throughput(test, tier, repeat)
    counts = {lang: sum(1 for e in test if e.lang == lang) for lang in dataset.LANGUAGES}
    lines = [
        f"### Test split ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Machine: {machine()}.",
        "",
        f"{len(train)} train and {len(test)} test messages ("
        + ", ".join(f"{lang} {n}" for lang, n in counts.items())
        + ").",
        "",
        "| | intent macro-F1 | intent accuracy | sentiment macro-F1 | sentiment accuracy "
        "| reply text exact | meetings exact | msg/s (CPU s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in rows.items():
        rate = speed.get(name)
        lines.append(
            f"| {name} | {s.intent.macro_f1:.3f} | {s.intent.accuracy:.3f} "
            f"| {s.sentiment.macro_f1:.3f} | {s.sentiment.accuracy:.3f} "
            f"| {_pct(s.reply_exact)} | {_pct(s.meetings)} "
            f"| {f'{rate[0]:.0f} ({rate[1]:.1f})' if rate else ''} |"
        )
    for task, labels in (("intent", INTENTS), ("sentiment", SENTIMENTS)):
        lines += ["", f"{task.capitalize()}, per class (precision / recall / F1):", ""]
        lines.append(
            "| | "
            + " | ".join(
                f"{label} ({getattr(rows['majority class'], task).per_class[label][3]})"
                for label in labels
            )
            + " |"
        )
        lines.append("| --- |" + " --- |" * len(labels))
        for name, s in rows.items():
            per = getattr(s, task).per_class
            cells = [
                f"{per[label][0]:.2f} / {per[label][1]:.2f} / {per[label][2]:.2f}"
                for label in labels
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    tier_scores = next((s for name, s in rows.items() if name.endswith("tier")), None)
    if tier_scores is not None:
        lines += [
            "",
            "Signature fields, share of messages exactly right (rules, both tiers): "
            + ", ".join(f"{k} {_pct(v)}" for k, v in tier_scores.signature.items())
            + ".",
        ]
    return "\n".join(lines), rows


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=dataset.ROOT)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the results into this Markdown file")
    args = parser.parse_args()
    section, _ = run(args.data, args.repeat)
    section = f"{MARK_START}\n{section}\n{MARK_END}"
    print(section)
    if args.out:
        text = args.out.read_text()
        new = replaced(text, MARK_START, MARK_END, section)
        if new is None:
            new = text.rstrip("\n") + "\n\n## Email intelligence\n\n" + section + "\n"
        args.out.write_text(new)


if __name__ == "__main__":
    main()
