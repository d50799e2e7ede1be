"""Scope gates: decide whether a query is about an edit in memory, and which.

:class:`LearnedGate` (the default) scores every candidate edit, those whose
subject the query names and those retrieved by meaning, with a small trained
model over match and similarity features, and accepts the best one above a
calibrated threshold. :class:`SimilarityGate` is the plain cosine baseline.
:class:`CrossEncoderGate` reads the query and each candidate edit together with a
fine-tuned MiniLM cross-encoder (:mod:`bbedit.scope.cross`). All save their calibration as ``gate.json`` in the memory directory.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bbedit.errors import ConfigError, MemoryCorrupt
from bbedit.memory.memory import EditMemory, Retrieval
from bbedit.scope.cross import CrossScorer, default_model_dir, edit_text
from bbedit.scope.features import FEATURES, candidates
from bbedit.scope.model import PairScorer
from bbedit.scope.pair_templates import rule_differs
from bbedit.types import GateDecision, utc_now

log = logging.getLogger(__name__)

GATE_FILE = "gate.json"


@runtime_checkable
class ScopeGate(Protocol):
    """Decides which edit, if any, a query is about."""

    name: str
    threshold: float

    def decide(self, query: str, retrieval: Retrieval | None = None,
               threshold: float | None = None) -> GateDecision: ...

    def scores(self, query: str, retrieval: Retrieval | None = None) -> GateDecision:
        """Like ``decide`` but ``edit`` is the best candidate whatever its score."""
        ...


class GateBase:
    name = "base"
    score_range = (0.0, 1.0)

    def __init__(self, memory: EditMemory, threshold: float, k: int = 5) -> None:
        self.memory = memory
        self.set_threshold(threshold)
        self.k = k

    def set_threshold(self, threshold: float) -> None:
        """Change the minimum score to apply an edit. Raises ConfigError outside the score range."""
        lo, hi = self.score_range
        if not lo <= threshold <= hi:
            raise ConfigError(f"{self.name} gate threshold must be in {lo}..{hi}, got {threshold}")
        self.threshold = float(threshold)

    def _ranked(self, query: str, retrieval: Retrieval | None) -> list[tuple[Any, float]]:
        raise NotImplementedError

    def scores(self, query: str, retrieval: Retrieval | None = None) -> GateDecision:
        ranked = self._ranked(query, retrieval)
        if not ranked:
            return GateDecision(None, 0.0, ())
        return GateDecision(ranked[0][0], ranked[0][1], tuple(ranked))

    def decide(self, query: str, retrieval: Retrieval | None = None,
               threshold: float | None = None) -> GateDecision:
        """The edit ``query`` is about, or ``edit=None`` when it is out of scope. ``threshold`` lowers
        the gate's own for this call (never raises it): an editor with a second filter of its own,
        like the post-editor's keep decision, asks for that."""
        d = self.scores(query, retrieval)
        limit = self.threshold if threshold is None else min(threshold, self.threshold)
        if d.edit is None or d.score < limit:
            return GateDecision(None, d.score, d.candidates)
        return d

    # -- calibration --------------------------------------------------------------------------------
    def calibrate(self, queries: Sequence[str], expected: Sequence[str | None], *,
                  target_precision: float = 0.99) -> dict[str, float]:
        """Pick the threshold with the best recall whose precision on these labelled queries
        is at least ``target_precision``; ``expected[i]`` is the id of the edit query i is about, or None.

        Returns the chosen threshold with its precision and recall. Raises ConfigError on
        mismatched lengths or when no query is in scope.
        """
        if len(queries) != len(expected):
            raise ConfigError(f"{len(queries)} queries but {len(expected)} labels")
        n_pos = sum(e is not None for e in expected)
        if n_pos == 0:
            raise ConfigError("calibration needs at least one in-scope query")
        best = [self.scores(q) for q in queries]
        pts = sorted(((d.score, d.edit is not None and d.edit.id == exp, exp is not None)
                      for d, exp in zip(best, expected, strict=True)), reverse=True)
        tp = fp = 0
        choice = (1.0, 0.0, 1.0)
        for i, (score, correct, _) in enumerate(pts):
            tp += correct
            fp += not correct
            if i + 1 < len(pts) and pts[i + 1][0] == score:
                continue
            prec = tp / (tp + fp)
            if prec >= target_precision and tp / n_pos >= choice[1]:
                choice = (score, tp / n_pos, prec)
        self.threshold = float(choice[0])
        log.info("calibrated %s gate: threshold %.4f, recall %.4f, precision %.4f", self.name, *choice)
        return {"threshold": self.threshold, "recall": choice[1], "precision": choice[2]}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.name, "threshold": self.threshold, "k": self.k, "saved_at": utc_now()}

    def save(self, path: str | os.PathLike[str] | None = None) -> Path | str:
        """Write ``gate.json`` into ``path`` (default: the memory's directory), atomically; a memory in a
        database keeps it as a setting of its namespace instead, read by every replica at start.
        Returns where it went."""
        target = Path(path) if path is not None else self.memory.path
        if target is None and self.memory.in_database_server:
            self.memory.set_setting("gate", json.dumps(self.to_dict()))
            return f"{self.memory.location} (namespace {self.memory.namespace})"
        if target is None:
            raise ConfigError("this memory has no directory; pass a path to save the gate to")
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / (GATE_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target / GATE_FILE)
        return target / GATE_FILE


class LearnedGate(GateBase):
    """Subject/alias matching + relation similarity, scored by a small trained model.

    Two rules override the model. A query that names its relation by a Wikidata label ("The place of
    birth of X is") is not about an edit whose prompt names another ("The sex or gender of X is"):
    that candidate scores 0 (:func:`~bbedit.scope.pair_templates.labels_differ`; on label-form
    prompts about training subjects the model alone accepted several per cent of such pairs:
    ``eval/label_forms.py``). Nor is a query about another holder of the edit's office ("Who was the
    first prime minister of the UK?" against "Who is the prime minister of the UK?", the former CEO
    against the CEO: :func:`~bbedit.scope.pair_templates.roles_differ`), which the model, reading the
    relation only, scored 0.95. ``label_rule=False`` leaves the model alone.

    ``scorer`` defaults to the model shipped with bbedit (trained on
    counterfact-train pairs only); ``threshold`` is the minimum score to apply an edit
    (default: the threshold recommended with the built-in model).
    """

    name = "learned"

    def __init__(self, memory: EditMemory, scorer: PairScorer | None = None, threshold: float | None = None,
                 k: int = 5, label_rule: bool = True) -> None:
        super().__init__(memory, builtin_threshold() if threshold is None else threshold, k)
        self.scorer = scorer if scorer is not None else builtin_scorer()
        self._builtin = scorer is None
        self.label_rule = bool(label_rule)  # False: the model alone (for comparison)

    def _ranked(self, query: str, retrieval: Retrieval | None) -> list[tuple[Any, float]]:
        r = retrieval if retrieval is not None else self.memory.retrieve(query, self.k)
        cands = candidates(self.memory, r, self.scorer.relation_proj, self.scorer.pair_model)
        if not cands:
            return []
        p = self.scorer.score(np.stack([c.features for c in cands]))
        for i, c in enumerate(cands):  # another Wikidata property, or another holder of the same office
            if self.label_rule and rule_differs(query, c.edit.prompt, (c.edit.subject, *c.edit.aliases)) is not None:
                p[i] = 0.0
        order = np.argsort(-p, kind="stable")
        return [(cands[i].edit, float(p[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["model"] = "builtin" if self._builtin else self.scorer.to_dict()
        if not self.label_rule:
            d["label_rule"] = False
        return d


class SimilarityGate(GateBase):
    """Baseline: the nearest edit by cosine similarity, in scope above ``threshold``."""

    name = "similarity"
    score_range = (-1.0, 1.0)  # cosine

    def __init__(self, memory: EditMemory, threshold: float = 0.75, k: int = 5) -> None:
        super().__init__(memory, threshold, k)

    def _ranked(self, query: str, retrieval: Retrieval | None) -> list[tuple[Any, float]]:
        r = retrieval if retrieval is not None else self.memory.retrieve(query, self.k)
        return [(h.edit, h.score) for h in r.hits]


class CrossEncoderGate(GateBase):
    """Scores every candidate the retrieval proposes (nearest edits and edits whose subject the
    query names) with a cross-encoder over (query, edit prompt + subject + aliases), best first.

    ``model`` is a saved cross-encoder folder (default: ``models/scope-cross``, which
    ``python -m bbedit.scope.train_cross`` writes; no trained model ships yet: the first one, trained for
    38 CPU minutes, is in ``eval/results/scope-cross`` and is too weak in recall to ship);
    ``threshold`` defaults to the one chosen on that model's dev split (its ``training.json``);
    ``max_candidates`` caps how many candidates are scored per query (the closest by cosine).
    The model is loaded on first use. Raises ConfigError when the model folder has no threshold.
    """

    name = "cross"

    def __init__(self, memory: EditMemory, threshold: float | None = None, k: int = 5,
                 model: str | os.PathLike[str] | None = None, max_candidates: int = 8) -> None:
        self.model_dir = Path(model) if model is not None else None
        super().__init__(memory, self.model_threshold() if threshold is None else threshold, k)
        if max_candidates < 1:
            raise ConfigError(f"max_candidates must be positive, got {max_candidates}")
        self.max_candidates = int(max_candidates)

    def _dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else default_model_dir()

    def model_threshold(self) -> float:
        """The threshold recorded with the model (chosen on its dev split). Raises ConfigError if absent."""
        f = self._dir() / "training.json"
        try:
            return float(json.loads(f.read_text(encoding="utf-8"))["threshold"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"no usable cross-encoder threshold in {f}: {e}") from e

    @property
    def scorer(self) -> CrossScorer:
        """The cross-encoder (loaded once per folder and process)."""
        return _cross_scorer(str(self._dir().resolve()))

    def _candidates(self, r: Retrieval) -> list[tuple[Any, float, bool]]:
        named = {m.row for m in r.matches}
        rows = list(dict.fromkeys([*(self.memory.row_of(h.edit) for h in r.hits), *named]))
        out = []
        for row in rows:
            edit = r.edits_by_row[row]
            cos = float(r.vector @ self.memory.edit_vectors(edit)[0])
            out.append((edit, cos, row in named))
        out.sort(key=lambda c: -c[1])
        return out[:self.max_candidates]

    def explain(self, query: str, retrieval: Retrieval | None = None) -> list[dict[str, Any]]:
        """Every scored candidate, best first: id, subject, prompt, cosine, subject_named, score."""
        r = retrieval if retrieval is not None else self.memory.retrieve(query, self.k)
        cands = self._candidates(r)
        if not cands:
            return []
        p = self.scorer.score([query] * len(cands), [edit_text(e.prompt, e.subject, e.aliases) for e, _, _ in cands])
        rows = [{"id": e.id, "subject": e.subject, "prompt": e.prompt, "cosine": round(c, 4), "subject_named": n,
                 "score": round(float(s), 4)} for (e, c, n), s in zip(cands, p, strict=True)]
        return sorted(rows, key=lambda d: -float(d["score"]))

    def _ranked(self, query: str, retrieval: Retrieval | None) -> list[tuple[Any, float]]:
        r = retrieval if retrieval is not None else self.memory.retrieve(query, self.k)
        cands = self._candidates(r)
        if not cands:
            return []
        p = self.scorer.score([query] * len(cands), [edit_text(e.prompt, e.subject, e.aliases) for e, _, _ in cands])
        order = np.argsort(-p, kind="stable")
        return [(cands[i][0], float(p[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["model"] = "builtin" if self.model_dir is None else str(self.model_dir)
        d["max_candidates"] = self.max_candidates
        return d


_CROSS: dict[str, CrossScorer] = {}


def _cross_scorer(path: str) -> CrossScorer:
    if path not in _CROSS:
        _CROSS[path] = CrossScorer.load(path)
    return _CROSS[path]


_BUILTIN: tuple[PairScorer, float] | None = None


def _builtin() -> tuple[PairScorer, float]:
    global _BUILTIN
    if _BUILTIN is None:
        try:
            d = json.loads(resources.files("bbedit.scope").joinpath("gate_model.json").read_text())
        except FileNotFoundError as e:
            raise ConfigError("bbedit's built-in gate model is missing; run `bbedit gate train`") from e
        _BUILTIN = (PairScorer.from_dict(d, FEATURES), float(d.get("recommended_threshold", 0.5)))
    return _BUILTIN


def builtin_scorer() -> PairScorer:
    """The scorer shipped in ``bbedit/scope/gate_model.json``: fitted on the multi-relation pairs of
    :mod:`bbedit.scope.pairs` (``python -m bbedit.scope.train_pairs``; its training summary is kept in
    the file under ``trained_on``)."""
    return _builtin()[0]


def builtin_threshold() -> float:
    """The threshold recommended with the built-in scorer (the best F1 on its dev subjects)."""
    return _builtin()[1]


def load_gate(memory: EditMemory, path: str | os.PathLike[str] | None = None) -> GateBase:
    """The gate saved with a memory (``gate.json``), or a default :class:`LearnedGate`.

    Raises :class:`MemoryCorrupt` when ``gate.json`` exists but cannot be read.
    """
    base = Path(path) if path is not None else memory.path
    f = base / GATE_FILE if base is not None else None
    stored = memory.get_setting("gate") if path is None and memory.in_database_server else None
    if stored is None and (f is None or not f.exists()):
        return LearnedGate(memory)
    where = f if stored is None else f"the gate setting of {memory.location}"
    try:
        d = json.loads(stored if stored is not None else f.read_text(encoding="utf-8"))  # type: ignore[union-attr]
        kind = d["kind"]
        threshold = float(d["threshold"])
        k = int(d.get("k", 5))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MemoryCorrupt(f"{where} is not a readable gate calibration: {e}") from e
    if kind == "similarity":
        return SimilarityGate(memory, threshold, k)
    if kind == "learned":
        model = d.get("model", "builtin")
        scorer = None if model == "builtin" else PairScorer.from_dict(model, FEATURES)
        return LearnedGate(memory, scorer, threshold, k, label_rule=bool(d.get("label_rule", True)))
    if kind == "cross":
        model = d.get("model", "builtin")
        try:
            return CrossEncoderGate(memory, threshold, k, None if model == "builtin" else str(model),
                                    int(d.get("max_candidates", 8)))
        except ConfigError as e:
            raise MemoryCorrupt(f"{where}: {e}") from e
    raise MemoryCorrupt(f"{where}: unknown gate kind {kind!r}")

