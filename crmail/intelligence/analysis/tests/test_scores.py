"""The shipped classifiers on the labelled set's test split: each tier must beat both
baselines (majority class, keyword rules) and stay within a small tolerance of the scores
recorded in expected_scores.json when the models were last trained
(``python -m crmail.intelligence.analysis.train``). The file is edited by hand from
``bench/intelligence_bench.py``'s table, so that a lower score is a decision."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from crmail.intelligence.analysis import analyse, dataset, evaluation, ml

pytestmark = pytest.mark.database_independent

EXPECTED = json.loads((Path(__file__).with_name("expected_scores.json")).read_text())
TOLERANCE = EXPECTED["tolerance"]


@cache
def split(name: str) -> tuple[dataset.Example, ...]:
    examples = tuple(dataset.load(split=name))
    if not examples:
        pytest.fail(f"the labelled set's {name} split is missing under {dataset.ROOT}")
    return examples


@cache
def scores(tier: str) -> evaluation.Scores:
    test = split("test")
    return evaluation.score(test, analyse([e.mail for e in test], tier))  # type: ignore[arg-type]


def baselines() -> list[evaluation.Scores]:
    return [evaluation.majority(split("train"), split("test")), evaluation.keywords(split("test"))]


def check(tier: str) -> None:
    got = scores(tier)
    expected = EXPECTED[tier]
    for task in ("intent", "sentiment"):
        macro = getattr(got, task).macro_f1
        for baseline in baselines():
            assert macro > getattr(baseline, task).macro_f1, f"{tier} {task} below a baseline"
        assert macro >= expected[f"{task}_macro_f1"] - TOLERANCE, (
            f"{tier} {task} macro-F1 {macro:.3f} < recorded {expected[f'{task}_macro_f1']}"
        )


def test_default_tier_beats_baselines_and_recorded_scores() -> None:
    check("default")


@pytest.mark.skipif(not ml.available(), reason="the crmail[ml] extra is not installed")
def test_ml_tier_beats_baselines_and_recorded_scores() -> None:
    check("ml")


def test_rules_keep_their_recorded_accuracy() -> None:
    got = scores("default")
    rules = EXPECTED["rules"]
    assert got.reply_exact is not None and got.reply_exact >= rules["reply_exact"] - TOLERANCE
    assert got.meetings is not None and got.meetings >= rules["meetings"] - TOLERANCE
    for name, value in rules["signature"].items():
        assert got.signature[name] >= value - TOLERANCE, name


def test_a_wrong_answer_lowers_the_score() -> None:
    # The metric itself: every answer flipped to one class scores far below the tier.
    test = split("test")
    flipped = evaluation.labels_scores(test, ["other"] * len(test), ["neutral"] * len(test))
    assert flipped.intent.macro_f1 < scores("default").intent.macro_f1 - 0.3
