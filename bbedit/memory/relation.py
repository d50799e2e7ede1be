"""Relation similarity of two subject-free prompt embeddings: when does a new edit replace an old one.

Two edits of the same subject state the same fact when what their prompts say *around* the subject
means the same. That is compared as a cosine after a learned linear projection (trained with the
scope gate's scorer, which uses the same projection as one of its features, and shipped inside its
model file ``bbedit/scope/gate_model.json``). Only the projection is read here (numpy, no torch),
so the memory does not depend on the scope gate's code.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from bbedit.errors import ConfigError

BUILTIN_MODEL = Path(__file__).resolve().parents[1] / "scope" / "gate_model.json"
"""The shipped gate model file that carries the learned relation projection."""


def project_cos(proj: np.ndarray | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of ``a`` and ``b`` after the relation projection (plain cosine without one)."""
    if proj is not None:
        a, b = a @ proj, b @ proj
    num = (a * b).sum(-1)
    return num / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-9)


DEFAULT_SUPERSEDE_THRESHOLD = 0.85
"""The supersede threshold of a model file that does not carry its own."""


@functools.lru_cache(maxsize=1)
def _builtin_model() -> tuple[np.ndarray | None, float]:
    try:
        d = json.loads(BUILTIN_MODEL.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"bbedit's built-in gate model {BUILTIN_MODEL} is missing or unreadable: {e}") from e
    proj = d.get("relation_proj")
    return (None if proj is None else np.asarray(proj, np.float32),
            float(d.get("supersede_threshold", DEFAULT_SUPERSEDE_THRESHOLD)))


def builtin_relation_projection() -> np.ndarray | None:
    """The learned relation projection (dim x k) of the shipped gate model, or None if it has none.

    Raises :class:`ConfigError` when the shipped model file is missing or unreadable.
    """
    return _builtin_model()[0]


def builtin_supersede_threshold() -> float:
    """The relation similarity from which a new edit of a subject replaces an old one, chosen with the
    shipped projection on its dev pairs (``supersede_threshold`` in the model file)."""
    return _builtin_model()[1]


def relation_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two subject-free prompt embeddings are in relation, under the built-in
    learned projection (about 0.9 or more for the same relation). Raises :class:`ConfigError`
    when the shipped model file cannot be read."""
    return float(project_cos(builtin_relation_projection(), a, b))
