"""Training the learned gate's scorer on many relations: the labelled pairs of :mod:`bbedit.scope.pairs`.

:func:`bbedit.scope.train.train_gate` fits the scorer on CounterFact alone (about 20 relations,
statement prompts). Here the edits are the pairs' facts, from every training source (CounterFact,
zsRE questions, ParaRel's 39 relations, PopQA, invented companies and QA edits with generic-word
"subjects"), all stored in one memory so that every query meets realistic distractors, and every
query goes through the same retrieval and features as at run time (:func:`bbedit.scope.features.candidates`).

Labels of a candidate row: 1 for the pair's own edit when the pair is in scope, 0 for its own edit
when it is not and for any edit of another subject that the query does not name. A candidate that
is another edit of a subject the query names is labelled by relation on training rows (1 when an
in-scope query's edit and that edit share their relation, else 0: "Who is the CTO of X?" is not
about X's CEO edit), and left out of the dev rows, where the pair alone is the ground truth
(``by_relation=False`` leaves it out of both).

The relation projection (the ``relation_learned`` feature, also used by the memory to recognise
that a new edit replaces an old one) is fitted first, on rows whose subject the query names; then
the scorer. The threshold is chosen on the dev facts (split by subject, so no dev subject is trained
on): the best F1 there (:func:`choose_threshold`); so is the memory's supersede threshold for that
projection (:func:`choose_supersede_threshold`), both written into the model file.
"""

from __future__ import annotations

import hashlib
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

from bbedit.errors import ConfigError
from bbedit.memory.memory import EditMemory
from bbedit.memory.subjects import name_key
from bbedit.scope.features import FEATURES, LEARNED, PAIR, candidates, project_cos
from bbedit.scope.model import PairScorer, pair_probability
from bbedit.scope.pairs import POSITIVE_KINDS, Pair, generate
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
                    *, k: int = 5, chunk: int = 512, relation_of: dict[str, str] | None = None,
                    keep_unknown: bool = True) -> Rows:
    """Rows for every pair's query, routed through ``memory`` (which holds every pair's edit).
    ``keep_unknown=False`` leaves out the rows whose label is unknown (training uses none of them;
    the dev rows keep them, since a query's best candidate may be one).

    With ``relation_of`` (edit id -> relation), another edit of the subject that a positive pair's
    query asks about is labelled by relation: in scope when it is the same relation, out of scope
    when not (the "same subject, other relation" rows that matter most); otherwise it is unknown."""
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
                elif (name_key(e.subject) in own_names and relation_of and p.kind in POSITIVE_KINDS
                      and p.relation and relation_of.get(e.id)):
                    label = 1.0 if relation_of[e.id] == p.relation else 0.0
                elif name_key(e.subject) in own_names or name_key(e.subject) in named:
                    label = -1.0  # another edit of a subject the query names: its label is unknown
                else:
                    label = 0.0
                if label < 0 and not keep_unknown:
                    continue
                xs.append(cand.features)
                ys.append(label)
                qs.append(b + j)
                qc.append(cand.query_context)
                ec.append(cand.edit_context)
    return Rows(np.stack(xs), np.asarray(ys, np.float32), np.asarray(qs), np.stack(qc), np.stack(ec))


def _cached_rows(cache: Path | None, key: str, make: Any) -> tuple[Rows, Rows]:
    """``make()`` (the training and dev rows), or the rows saved in ``cache`` under ``key`` (a digest of
    the pairs and the embedder): featurising is most of a training run, and a model variant needs none."""
    f = cache / f"rows-{key}.npz" if cache is not None else None
    if f is not None and f.exists():
        z = np.load(f)
        log.info("training rows read from %s", f)
        return tuple(Rows(*(z[f"{s}_{n}"] for n in ("x", "y", "qidx", "q_ctx", "e_ctx"))) for s in ("t", "d"))  # type: ignore[return-value]
    rows_t, rows_d = make()
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, **{f"{s}_{n}": getattr(r, n) for s, r in (("t", rows_t), ("d", rows_d))
                       for n in ("x", "y", "qidx", "q_ctx", "e_ctx")})
    return rows_t, rows_d


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


THRESHOLDS = (*(round(0.05 * i, 2) for i in range(1, 20)), 0.96, 0.97, 0.98, 0.99)


def dev_curve(best: np.ndarray, label: np.ndarray, in_scope: np.ndarray) -> list[dict[str, float]]:
    """Precision and recall at each of :data:`THRESHOLDS`."""
    out = []
    for t in THRESHOLDS:
        prec, rec = pr_at(best, label, in_scope, t)
        out.append({"threshold": t, "precision": prec, "recall": rec})
    return out


def choose_threshold(curve: Sequence[dict[str, float]], target_precision: float | None = None) -> float:
    """The threshold with the best F1 on the dev pairs, or with ``target_precision`` the lowest one
    whose precision reaches it (the most recall at that precision).

    F1 is the default because the dev pairs are mostly hard negatives (same subject, other relation;
    similar names), far more than real traffic holds: a precision target on them buys precision that
    traffic does not need with recall that it does."""
    if target_precision is None:
        return max(curve, key=lambda c: (2 * c["precision"] * c["recall"] / max(c["precision"] + c["recall"], 1e-9),
                                         c["threshold"]))["threshold"]
    return next((c["threshold"] for c in curve if c["precision"] >= target_precision), curve[-1]["threshold"])


SUPERSEDE_GRID = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))


def choose_supersede_threshold(rel_cos: np.ndarray, same: np.ndarray, target_precision: float = 0.98) -> float:
    """The lowest relation similarity at which at least ``target_precision`` of the pairs that reach it
    are the same relation (a wrong supersede hides an edit, a missed one leaves two active): on dev
    rows whose query names the candidate's subject, ``same`` marking the in-scope ones."""
    for t in SUPERSEDE_GRID:
        hit = rel_cos >= t
        if hit.any() and same[hit].mean() >= target_precision:
            return t
    return SUPERSEDE_GRID[-1]


def fit_pair_model(rows_t: Rows, rows_d: Rows, train: Sequence[Pair], named: np.ndarray, *, seed: int = 0,
                   folds: int = 4) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit the relation pair model (:meth:`PairScorer.fit_relation_pair`) on the labelled training rows
    whose query names the candidate's subject (``named``; the rows the relation projection learns from
    too), and fill the ``relation_pair`` column of both row sets. Measured on two folds of relations held
    out, these rows gave a better model (AUC 0.939 / 0.908) than the pairs that differ by relation alone
    (0.935 / 0.894).

    The training rows get out-of-fold values: the relations are split into ``folds`` groups and each
    group's rows are scored by a model fitted without that group, so the scorer fitted on them learns how
    far to trust the feature on a relation the pair model never saw (most of a user's relations), not on
    the ones it memorised. The dev rows and the returned model use a fit on every group."""
    import zlib

    fold_of = {q: zlib.crc32((train[q].relation or train[q].kind).encode()) % folds for q in np.unique(rows_t.qidx)}
    fold = np.array([fold_of[q] for q in rows_t.qidx])
    held_auc = []
    for k in range(folds):
        m = named & (fold != k)
        mlp_k = PairScorer.fit_relation_pair(rows_t.q_ctx[m], rows_t.e_ctx[m], rows_t.y[m], seed=seed + k)
        held = fold == k
        rows_t.x[held, PAIR] = pair_probability(mlp_k, rows_t.q_ctx[held], rows_t.e_ctx[held])
        h = held & named
        held_auc.append(_auc(rows_t.x[h, PAIR], rows_t.y[h]))
        log.info("relation pair model, fold %d: held-out AUC %.4f on %d rows", k, held_auc[-1], int(h.sum()))
    mlp = PairScorer.fit_relation_pair(rows_t.q_ctx[named], rows_t.e_ctx[named], rows_t.y[named], seed=seed)
    rows_d.x[:, PAIR] = pair_probability(mlp, rows_d.q_ctx, rows_d.e_ctx)
    dn = (rows_d.y >= 0) & (rows_d.x[:, FEATURES.index("subject_named")] > 0)
    return mlp, {"fit_rows": int(named.sum()), "folds": folds, "held_out_relation_auc": held_auc,
                 "dev_auc_named": _auc(rows_d.x[dn, PAIR], rows_d.y[dn]),
                 "dev_auc_named_projection": _auc(rows_d.x[dn, LEARNED], rows_d.y[dn])}


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); 0.5 when one class is absent."""
    pos, neg = score[y == 1], score[y == 0]
    if not len(pos) or not len(neg):
        return 0.5
    # rank of each score among all, ties sharing their average rank
    _, inv, counts = np.unique(np.concatenate([pos, neg]), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inv]
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def train_from_pairs(data: str | Path, out: str | Path | None = None, *, n_train: int = 12000, n_dev: int = 2000,
                     seed: int = 0, target_precision: float | None = None, kind_weights: dict[str, float] | None = None,
                     embedder: Any = None, hidden: int = 32, epochs: int = 400,
                     compare: str | Path | None = None, dev_fraction: float = 0.1,
                     by_relation: bool = True, rows_cache: str | Path | None = None,
                     rows_only: bool = False, pair_folds: int = 4) -> dict[str, Any]:
    """Fit the relation projection and the scorer on ``n_train`` training facts (their pairs as
    queries) with ``n_dev`` dev facts held out for the threshold (:func:`choose_threshold`); write the
    model JSON to ``out``. ``rows_cache`` (a folder) keeps the featurised rows for a rerun on the same pairs.
    ``pair_folds`` > 0 also fits the relation pair model (:func:`fit_pair_model`); 0 leaves it out.

    Returns a summary (counts, dev precision/recall per threshold, per pair kind). Raises
    ConfigError when a training file under ``data`` is missing.
    """
    t0 = time.perf_counter()
    ps = generate(data, seed=seed, dev_fraction=dev_fraction)
    keys, train, dev = choose_facts(ps.pairs, n_train, n_dev, seed)
    if not train or not dev:
        raise ConfigError(f"{data}: the training files gave {len(train)} training and {len(dev)} dev pairs; "
                          "both are needed")
    edits = [Edit(subject=s, prompt=pr, target_new=NO_TARGET, aliases=al, id=f"f{n}")
             for n, (pr, s, al) in enumerate(keys)]
    edit_of = dict(zip(keys, edits, strict=True))
    rel_of_key = {_fact_key(p): p.relation for p in (*train, *dev) if p.relation}
    relation_of = {e.id: rel_of_key[k] for k, e in edit_of.items() if k in rel_of_key} if by_relation else None
    memory = EditMemory(embedder=embedder)

    def make() -> tuple[Rows, Rows]:
        log.info("storing %d facts (%d train pairs, %d dev pairs)", len(edits), len(train), len(dev))
        memory.add_many(edits, supersede=False, progress=True)
        return (featurise_pairs(memory, train, edit_of, relation_of=relation_of, keep_unknown=False),
                featurise_pairs(memory, dev, edit_of))  # dev keeps the plain labels: the same measure for every model

    digest = hashlib.sha256(json.dumps([memory.embedder_name, FEATURES, by_relation,
                                        [p.to_dict() for p in (*train, *dev)]]).encode()).hexdigest()[:16]
    rows_t, rows_d = _cached_rows(Path(rows_cache) if rows_cache is not None else None, digest, make)
    t_feat = time.perf_counter() - t0
    if rows_only:
        return {"train_rows": len(rows_t.y), "dev_rows": len(rows_d.y), "featurise_seconds": t_feat}
    known = rows_t.y >= 0
    named = known & (rows_t.x[:, FEATURES.index("subject_named")] > 0)
    proj = PairScorer.fit_relation(rows_t.q_ctx[named], rows_t.e_ctx[named], rows_t.y[named], seed=seed)
    for rows in (rows_t, rows_d):
        rows.x[:, LEARNED] = project_cos(proj, rows.q_ctx, rows.e_ctx)
    relation_mlp, pair_summary = fit_pair_model(rows_t, rows_d, train, named, seed=seed, folds=pair_folds) \
        if pair_folds else (None, None)
    weights = {**{"other_relation": 1.0}, **(kind_weights or {})}
    w = np.array([weights.get(train[q].kind, 1.0) for q in rows_t.qidx], np.float32)
    scorer = PairScorer.fit(FEATURES, rows_t.x[known], rows_t.y[known], hidden=hidden, epochs=epochs, seed=seed,
                            sample_weight=w[known])
    scorer.relation_proj = proj
    scorer.relation_mlp = relation_mlp
    best, label = query_decisions(scorer.score(rows_d.x), rows_d, len(dev))
    in_scope = np.array([p.label == 1 for p in dev])
    curve = dev_curve(best, label, in_scope)
    threshold = choose_threshold(curve, target_precision)
    baseline = None
    if compare is not None:  # another model JSON (the shipped gate) on the same dev rows
        d = json.loads(Path(compare).read_text())
        other = PairScorer.from_dict(d, FEATURES)
        x = rows_d.x.copy()
        x[:, LEARNED] = project_cos(other.relation_proj, rows_d.q_ctx, rows_d.e_ctx)
        ob, ol = query_decisions(other.score(x), rows_d, len(dev))
        ot = float(d.get("recommended_threshold", 0.5))
        op, orc = pr_at(ob, ol, in_scope, ot)
        baseline = {"model": str(compare), "threshold": ot, "dev_precision": op, "dev_recall": orc,
                    "curve": dev_curve(ob, ol, in_scope)}
    prec, rec = pr_at(best, label, in_scope, threshold)
    acc = best >= threshold
    per_kind: dict[str, dict[str, float]] = {}
    kinds = Counter(p.kind for p in dev)
    for kind in sorted(kinds):
        m = np.array([p.kind == kind for p in dev])
        right = (acc & (label == 1)) if in_scope[m].all() else ~(acc & (label == 0))
        per_kind[kind] = {"n": int(m.sum()), "handled_right": float(right[m].mean())}
    rel_t = rows_d.x[:, LEARNED]  # the relation projection's cosine, set on the dev rows above
    dn = (rows_d.y >= 0) & (rows_d.x[:, FEATURES.index("subject_named")] > 0)
    supersede = choose_supersede_threshold(rel_t[dn], rows_d.y[dn] == 1)
    summary = {
        "what": "learned gate scorer fitted on multi-relation pairs (bbedit.scope.pairs), training files only",
        "n_train_facts": n_train, "n_dev_facts": n_dev, "train_pairs": len(train), "dev_pairs": len(dev),
        "train_rows": len(rows_t.y), "train_rows_unknown": "left out when featurised",
        "train_pairs_per_kind": dict(Counter(p.kind for p in train)),
        "train_pairs_per_source": dict(Counter(p.source for p in train)),
        "data": ps.stats, "seed": seed, "labels_by_relation": by_relation, "kind_weights": weights, "target_precision": target_precision,
        "threshold": threshold, "dev_precision": prec, "dev_recall": rec, "curve": curve, "dev_per_kind": per_kind,
        "supersede_threshold": supersede,
        "dev_relation_cos_same": float(rel_t[dn & (rows_d.y == 1)].mean()) if (dn & (rows_d.y == 1)).any() else None,
        "dev_relation_cos_other": float(rel_t[dn & (rows_d.y == 0)].mean()) if (dn & (rows_d.y == 0)).any() else None,
        "relation_pair_model": pair_summary,
        "baseline": baseline, "featurise_seconds": t_feat, "train_seconds": time.perf_counter() - t0,
    }
    log.info("gate trained on pairs: dev precision %.4f recall %.4f at threshold %.2f", prec, rec, threshold)
    if out is not None:
        d = scorer.to_dict()
        d["recommended_threshold"] = threshold
        d["supersede_threshold"] = supersede
        d["trained_on"] = {"file": "bbedit.scope.pairs (../shared/data training files)",
                           **{k: v for k, v in summary.items() if k != "data"}}
        Path(out).write_text(json.dumps(d, separators=(",", ":")))  # the pair model makes it large
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
    ap.add_argument("--target-precision", type=float, default=None,
                    help="choose the lowest threshold with this dev precision (default: the best dev F1)")
    ap.add_argument("--other-relation-weight", type=float, default=1.0)
    ap.add_argument("--no-relation-labels", action="store_true",
                    help="leave other edits of a positive query's subject unlabelled instead of labelling them by relation")
    ap.add_argument("--compare", help="another model JSON scored on the same dev rows (e.g. the shipped gate)")
    ap.add_argument("--rows-cache", help="folder that keeps the featurised rows between runs on the same pairs")
    ap.add_argument("--rows-only", action="store_true", help="featurise into --rows-cache and stop")
    ap.add_argument("--pair-folds", type=int, default=4,
                    help="relation folds for the relation pair model's out-of-fold feature (0: no pair model)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    s = train_from_pairs(a.data, a.out, n_train=a.n_train, n_dev=a.n_dev, seed=a.seed,
                         target_precision=a.target_precision,
                         kind_weights={"other_relation": a.other_relation_weight}, compare=a.compare,
                         by_relation=not a.no_relation_labels, rows_cache=a.rows_cache, rows_only=a.rows_only,
                         pair_folds=a.pair_folds)
    if a.rows_only:
        print(json.dumps(s))
        return
    if a.summary:
        Path(a.summary).write_text(json.dumps(s, indent=1))
    print(json.dumps({k: s[k] for k in ("threshold", "dev_precision", "dev_recall", "dev_per_kind",
                                        "supersede_threshold", "dev_relation_cos_same", "dev_relation_cos_other",
                                        "relation_pair_model", "train_seconds")}, indent=1))
    if s["baseline"]:
        print(json.dumps({k: v for k, v in s["baseline"].items() if k != "curve"}, indent=1))


if __name__ == "__main__":
    main()
