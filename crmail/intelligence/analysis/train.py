"""Rebuild the shipped classifiers from the labelled set's train split.

    python -m crmail.intelligence.analysis.train            # both tiers (ml if installed)
    python -m crmail.intelligence.analysis.train --tier default

Needs the ``train`` extra (scikit-learn), the ``ml`` tier also the ``ml`` extra; crmail
itself never imports this module. Deterministic: the same data gives the same files (the
solver is lbfgs, the folds unshuffled, the archive's timestamps fixed).

Per task (intent, sentiment) a multinomial logistic regression with balanced class
weights over the default features (hashed n-grams + the dense numbers), in the ``ml`` tier
with the sentence embedding beside them; its inverse regularisation C is picked from a
small grid by macro-F1 in 5-fold cross-validation on the train split.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import dataset, engine, features, ml, model

GRID = (1.0, 4.0, 16.0)
DENSE_SCALE = 1.0
EMBED_SCALE = 1.0


def matrix(prepared: Sequence[engine.Prepared], embeddings: np.ndarray | None) -> Any:
    from scipy import sparse

    rows, cols, values = [], [], []
    for i, item in enumerate(prepared):
        for bucket, value in item.features.hashed.items():
            rows.append(i)
            cols.append(bucket)
            values.append(value)
    hashed = sparse.csr_matrix(
        (values, (rows, cols)), shape=(len(prepared), features.BUCKETS), dtype=np.float64
    )
    blocks = [hashed, sparse.csr_matrix(np.asarray([p.features.dense for p in prepared]))]
    if embeddings is not None:
        blocks.append(sparse.csr_matrix(embeddings.astype(np.float64)))
    return sparse.hstack(blocks, format="csr")


def fit(x: Any, y: Sequence[str], labels: Sequence[str]) -> tuple[Any, float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    y_array = np.asarray(y)
    folds = StratifiedKFold(n_splits=5, shuffle=False)
    best_c, best_f1 = GRID[0], -1.0
    for c in GRID:
        predicted = np.empty(len(y_array), dtype=object)
        for train_idx, test_idx in folds.split(np.zeros(len(y_array)), y_array):
            clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
            clf.fit(x[train_idx], y_array[train_idx])
            predicted[test_idx] = clf.predict(x[test_idx])
        f1 = f1_score(y_array, predicted.astype(str), labels=list(labels), average="macro")
        if f1 > best_f1 + 1e-9:
            best_c, best_f1 = c, f1
    clf = LogisticRegression(C=best_c, max_iter=3000, class_weight="balanced")
    clf.fit(x, y_array)
    return clf, best_c, best_f1


def train(tier: str, root: Path, out: Path) -> dict[str, Any]:
    examples = dataset.load(root, split="train")
    if not examples:
        raise SystemExit(f"no training examples under {root}")
    prepared = [engine.prepare(e.mail) for e in examples]
    embeddings = ml.embed([p.embedding_text for p in prepared]) if tier == "ml" else None
    full = matrix(prepared, embeddings)
    # Only the columns some example has: the solver's work shrinks from 2^18 columns to a
    # few tens of thousands; the weights go back to their buckets afterwards.
    used = np.unique(full.indices)
    x = full[:, used]
    dense_size = len(features.DENSE_NAMES)
    heads: dict[str, dict[str, np.ndarray]] = {}
    meta: dict[str, Any] = {
        "tier": tier,
        "examples": len(examples),
        "languages": sorted({e.lang for e in examples}),
    }
    for task, labels in (
        ("intent", engine.INTENT_CLASSES),
        ("sentiment", engine.SENTIMENT_CLASSES),
    ):
        y = [getattr(e, task) for e in examples]
        clf, c, cv_f1 = fit(x, y, labels)
        classes = [str(c_) for c_ in clf.classes_]
        coef = np.zeros((full.shape[1], len(classes)))
        coef[used] = clf.coef_.T  # (features, K)
        heads[task] = {
            "classes": np.asarray(classes),
            "hashed": coef[: features.BUCKETS],
            "dense": coef[features.BUCKETS : features.BUCKETS + dense_size],
            "embed": coef[features.BUCKETS + dense_size :],
            "bias": clf.intercept_,
        }
        meta[task] = {"C": c, "cv_macro_f1": round(float(cv_f1), 4)}
        print(f"{tier} {task}: C={c} cross-validated macro-F1 {cv_f1:.3f}", file=sys.stderr)
    model.save(out / f"{tier}.npz", heads, meta)
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tier", choices=("default", "ml", "all"), default="all")
    parser.add_argument("--data", type=Path, default=dataset.ROOT)
    parser.add_argument("--out", type=Path, default=model.MODELS)
    args = parser.parse_args(argv)
    tiers = ["default", "ml"] if args.tier == "all" else [args.tier]
    if "ml" in tiers and not ml.available():
        if args.tier == "ml":
            raise SystemExit("the ml tier needs the ml extra: pip install -e '.[ml]'")
        tiers.remove("ml")
        print("ml extra not installed: the ml tier is not trained", file=sys.stderr)
    for tier in tiers:
        train(tier, args.data, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
