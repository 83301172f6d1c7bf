"""A multinomial logistic regression as crmail ships it: weights in a small ``.npz`` file
under ``models/``, applied with numpy (no scikit-learn at run time).

The file holds, per task, the class names, the weights of the hashed buckets that have any
(rows and values, float16), the weights of the dense features and of the sentence
embedding (float32; none in the default tier) and the intercepts. ``save`` writes the
archive with fixed timestamps, so training twice on the same data gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .features import BUCKETS, Features

MODELS = Path(__file__).resolve().parent / "models"
TASKS = ("intent", "sentiment")


@dataclass
class Head:
    """One task's classifier."""

    classes: tuple[str, ...]
    hashed: np.ndarray  # (BUCKETS, K) float32
    dense: np.ndarray  # (F, K)
    embed: np.ndarray  # (E, K), E = 0 without embeddings
    bias: np.ndarray  # (K,)

    def probabilities(
        self, features: Sequence[Features], embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """(N, K) class probabilities."""
        scores = np.empty((len(features), len(self.classes)), dtype=np.float64)
        for i, item in enumerate(features):
            idx = np.fromiter(item.hashed.keys(), dtype=np.int64, count=len(item.hashed))
            values = np.fromiter(item.hashed.values(), dtype=np.float32, count=len(item.hashed))
            scores[i] = values @ self.hashed[idx]
        dense = np.asarray([item.dense for item in features], dtype=np.float32)
        scores += dense @ self.dense + self.bias
        if self.embed.shape[0]:
            if embeddings is None:
                raise ValueError("this classifier reads sentence embeddings")
            scores += embeddings @ self.embed
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class Model:
    heads: dict[str, Head]
    meta: dict[str, Any]
    version: str


def save(path: Path, heads: dict[str, dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
    """Write a model: per task, ``classes``, ``hashed`` (BUCKETS, K), ``dense``, ``embed``
    and ``bias`` arrays."""
    arrays: dict[str, np.ndarray] = {}
    for task, head in heads.items():
        hashed = head["hashed"]
        rows = np.flatnonzero(np.abs(hashed).max(axis=1) > 1e-6).astype(np.int32)
        arrays[f"{task}.classes"] = np.asarray(head["classes"], dtype="U16")
        arrays[f"{task}.rows"] = rows
        arrays[f"{task}.hashed"] = hashed[rows].astype(np.float16)
        arrays[f"{task}.dense"] = head["dense"].astype(np.float32)
        arrays[f"{task}.embed"] = head["embed"].astype(np.float32)
        arrays[f"{task}.bias"] = head["bias"].astype(np.float32)
    arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, arrays[name], allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def load(path: Path) -> Model:
    data = path.read_bytes()
    heads: dict[str, Head] = {}
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        meta = json.loads(str(arrays["meta"]))
        for task in TASKS:
            classes = tuple(str(c) for c in arrays[f"{task}.classes"])
            hashed = np.zeros((BUCKETS, len(classes)), dtype=np.float32)
            hashed[arrays[f"{task}.rows"]] = arrays[f"{task}.hashed"].astype(np.float32)
            heads[task] = Head(
                classes,
                hashed,
                arrays[f"{task}.dense"],
                arrays[f"{task}.embed"],
                arrays[f"{task}.bias"],
            )
    version = f"{path.stem}-{hashlib.sha256(data).hexdigest()[:12]}"
    return Model(heads, meta, version)
