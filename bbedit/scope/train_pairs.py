"""Training the learned gate's scorer on many relations: the labelled pairs of :mod:`bbedit.scope.pairs`.

:func:`bbedit.scope.train.train_gate` fits the scorer on CounterFact alone (about 20 relations,
statement prompts). Here the edits are the pairs' facts, from every training source (CounterFact,
zsRE questions, ParaRel's 39 relations, PopQA, invented companies and QA edits with generic-word
"subjects"), all stored in one memory so that every query meets realistic distractors, and every
query goes through the same retrieval and features as at run time (:func:`bbedit.scope.features.candidates`).

Labels of a candidate row: 1 for the pair's own edit when the pair is in scope, 0 for its own edit
when it is not and for any edit of another subject that the query does not name. A candidate that
is another edit of a subject the query names is left out: whether the query asks that edit's
question is not known from the pair.

The relation projection (the ``relation_learned`` feature, also used by the memory to recognise
that a new edit replaces an old one) is fitted first, on rows whose subject the query names; then
the scorer. The threshold is the lowest one whose precision on the dev facts (split by subject, so
no dev subject is trained on) is at least ``target_precision``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bbedit.memory.memory import EditMemory
from bbedit.memory.subjects import name_key
from bbedit.scope.features import FEATURES, LEARNED, candidates, project_cos
from bbedit.scope.model import PairScorer
from bbedit.scope.pairs import Pair, generate
from bbedit.types import Edit

log = logging.getLogger(__name__)

NO_TARGET = "\u2205"
"""The pairs' facts have no objects; a target no query can contain keeps ``mentions_target`` at 0."""


@dataclass
class Rows:
    """Every (query, candidate) row: features, label (1, 0, or -1 when unknown), query index,
    and the two subject-free embeddings the relation projection compares."""

    x: np.ndarray
    y: np.ndarray
    qidx: np.ndarray
    q_ctx: np.ndarray
    e_ctx: np.ndarray


def _fact_key(p: Pair) -> tuple[str, str, tuple[str, ...]]:
    return (p.prompt, p.subject, p.aliases)


def choose_facts(pairs: Sequence[Pair], n_train: int, n_dev: int, seed: int
                 ) -> tuple[list[tuple[str, str, tuple[str, ...]]], list[Pair], list[Pair]]:
    """A sample of facts from each split, with their pairs. The sample keeps the sources' shares."""
    by_fact: dict[tuple[str, str, tuple[str, ...]], list[Pair]] = defaultdict(list)
    for p in pairs:
        by_fact[_fact_key(p)].append(p)
    rng = random.Random(seed)
    keys: list[tuple[str, str, tuple[str, ...]]] = []
    chosen: dict[str, list[Pair]] = {"train": [], "dev": []}
    for split, n in (("train", n_train), ("dev", n_dev)):
        pool = sorted(k for k, ps in by_fact.items() if ps[0].split == split)
        rng.shuffle(pool)
        for k in pool[:n]:
            keys.append(k)
            chosen[split].extend(by_fact[k])
    return keys, chosen["train"], chosen["dev"]


def featurise_pairs(memory: EditMemory, pairs: Sequence[Pair], edit_of: dict[tuple[str, str, tuple[str, ...]], Edit],
                    *, k: int = 5, chunk: int = 512) -> Rows:
    """Rows for every pair's query, routed through ``memory`` (which holds every pair's edit)."""
    xs, ys, qs, qc, ec = [], [], [], [], []
    for b in range(0, len(pairs), chunk):
        part = pairs[b:b + chunk]
        for j, r in enumerate(memory.retrieve_many([p.query for p in part], k)):
            p = part[j]
            own = edit_of[_fact_key(p)]
            own_names = {name_key(n) for n in (p.subject, *p.aliases)}
            named = {name_key(r.edits_by_row[m.row].subject) for m in r.matches}
            for cand in candidates(memory, r):
                e = cand.edit
                if e.id == own.id:
                    label = float(p.label)
                elif name_key(e.subject) in own_names or name_key(e.subject) in named:
                    label = -1.0  # another edit of a subject the query names: its label is unknown
                else:
                    label = 0.0
                xs.append(cand.features)
                ys.append(label)
                qs.append(b + j)
                qc.append(cand.query_context)
                ec.append(cand.edit_context)
    return Rows(np.stack(xs), np.asarray(ys, np.float32), np.asarray(qs), np.stack(qc), np.stack(ec))


def query_decisions(scores: np.ndarray, rows: Rows, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the best candidate's score and its label (1, 0, -1 unknown; -2 no candidate)."""
    best = np.full(n, -1.0)
    label = np.full(n, -2.0)
    for s, y, q in zip(scores, rows.y, rows.qidx, strict=True):
        if s > best[q]:
            best[q], label[q] = s, y
    return best, label


def pr_at(best: np.ndarray, label: np.ndarray, in_scope: np.ndarray, t: float) -> tuple[float, float]:
    """Precision and recall of accepting the best candidate at threshold ``t``; an accepted
    candidate whose label is unknown counts neither way."""
    acc = best >= t
    tp = int((acc & (label == 1)).sum())
    fp = int((acc & (label == 0)).sum())
    return tp / max(tp + fp, 1), tp / max(int(in_scope.sum()), 1)


def train_from_pairs(data: str | Path, out: str | Path | None = None, *, n_train: int = 12000, n_dev: int = 2000,
                     seed: int = 0, target_precision: float = 0.98, kind_weights: dict[str, float] | None = None,
                     embedder: Any = None, hidden: int = 32, epochs: int = 400) -> dict[str, Any]:
    """Fit the relation projection and the scorer on ``n_train`` training facts (their pairs as
    queries) with ``n_dev`` dev facts held out for the threshold; write the model JSON to ``out``.

    Returns a summary (counts, dev precision/recall per threshold, per pair kind). Raises
    ConfigError when a training file under ``data`` is missing.
    """
    t0 = time.perf_counter()
    ps = generate(data, seed=seed)
    keys, train, dev = choose_facts(ps.pairs, n_train, n_dev, seed)
    edits = [Edit(subject=s, prompt=pr, target_new=NO_TARGET, aliases=al, id=f"f{n}")
             for n, (pr, s, al) in enumerate(keys)]
    edit_of = dict(zip(keys, edits, strict=True))
    memory = EditMemory(embedder=embedder)
    log.info("storing %d facts (%d train pairs, %d dev pairs)", len(edits), len(train), len(dev))
    memory.add_many(edits, supersede=False, progress=True)
    rows_t = featurise_pairs(memory, train, edit_of)
    rows_d = featurise_pairs(memory, dev, edit_of)
    t_feat = time.perf_counter() - t0
    known = rows_t.y >= 0
    named = known & (rows_t.x[:, FEATURES.index("subject_named")] > 0)
    proj = PairScorer.fit_relation(rows_t.q_ctx[named], rows_t.e_ctx[named], rows_t.y[named], seed=seed)
    for rows in (rows_t, rows_d):
        rows.x[:, LEARNED] = project_cos(proj, rows.q_ctx, rows.e_ctx)
    weights = {**{"other_relation": 1.0}, **(kind_weights or {})}
    w = np.array([weights.get(train[q].kind, 1.0) for q in rows_t.qidx], np.float32)
    scorer = PairScorer.fit(FEATURES, rows_t.x[known], rows_t.y[known], hidden=hidden, epochs=epochs, seed=seed,
                            sample_weight=w[known])
    scorer.relation_proj = proj
    best, label = query_decisions(scorer.score(rows_d.x), rows_d, len(dev))
    in_scope = np.array([p.label == 1 for p in dev])
    curve = []
    threshold = 0.95
    for t in np.round(np.linspace(0.05, 0.95, 19), 2):
        prec, rec = pr_at(best, label, in_scope, float(t))
        curve.append({"threshold": float(t), "precision": prec, "recall": rec})
    for c in curve:  # the lowest threshold that keeps the target precision (the most recall)
        if c["precision"] >= target_precision:
            threshold = c["threshold"]
            break
    prec, rec = pr_at(best, label, in_scope, threshold)
    acc = best >= threshold
    per_kind: dict[str, dict[str, float]] = {}
    kinds = Counter(p.kind for p in dev)
    for kind in sorted(kinds):
        m = np.array([p.kind == kind for p in dev])
        right = (acc & (label == 1)) if in_scope[m].all() else ~(acc & (label == 0))
        per_kind[kind] = {"n": int(m.sum()), "handled_right": float(right[m].mean())}
    rel_t = project_cos(proj, rows_d.q_ctx, rows_d.e_ctx)
    dn = (rows_d.y >= 0) & (rows_d.x[:, FEATURES.index("subject_named")] > 0)
    summary = {
        "what": "learned gate scorer fitted on multi-relation pairs (bbedit.scope.pairs), training files only",
        "n_train_facts": n_train, "n_dev_facts": n_dev, "train_pairs": len(train), "dev_pairs": len(dev),
        "train_rows": len(rows_t.y), "train_rows_unknown": int((rows_t.y < 0).sum()),
        "train_pairs_per_kind": dict(Counter(p.kind for p in train)),
        "train_pairs_per_source": dict(Counter(p.source for p in train)),
        "data": ps.stats, "seed": seed, "kind_weights": weights, "target_precision": target_precision,
        "threshold": threshold, "dev_precision": prec, "dev_recall": rec, "curve": curve, "dev_per_kind": per_kind,
        "dev_relation_cos_same": float(rel_t[dn & (rows_d.y == 1)].mean()) if (dn & (rows_d.y == 1)).any() else None,
        "dev_relation_cos_other": float(rel_t[dn & (rows_d.y == 0)].mean()) if (dn & (rows_d.y == 0)).any() else None,
        "featurise_seconds": t_feat, "train_seconds": time.perf_counter() - t0,
    }
    log.info("gate trained on pairs: dev precision %.4f recall %.4f at threshold %.2f", prec, rec, threshold)
    if out is not None:
        d = scorer.to_dict()
        d["recommended_threshold"] = threshold
        d["trained_on"] = {"file": "bbedit.scope.pairs (../shared/data training files)",
                           **{k: v for k, v in summary.items() if k != "data"}}
        Path(out).write_text(json.dumps(d, indent=1))
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", required=True, help="model JSON to write (the shipped one is bbedit/scope/gate_model.json)")
    ap.add_argument("--summary", help="also write the summary JSON here")
    ap.add_argument("--n-train", type=int, default=12000)
    ap.add_argument("--n-dev", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target-precision", type=float, default=0.98)
    ap.add_argument("--other-relation-weight", type=float, default=1.0)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    s = train_from_pairs(a.data, a.out, n_train=a.n_train, n_dev=a.n_dev, seed=a.seed,
                         target_precision=a.target_precision,
                         kind_weights={"other_relation": a.other_relation_weight})
    if a.summary:
        Path(a.summary).write_text(json.dumps(s, indent=1))
    print(json.dumps({k: s[k] for k in ("threshold", "dev_precision", "dev_recall", "dev_per_kind",
                                        "dev_relation_cos_same", "dev_relation_cos_other", "train_seconds")}, indent=1))


if __name__ == "__main__":
    main()
