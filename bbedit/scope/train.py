"""Training the scope gate's scorer from CounterFact-style cases (counterfact-train only).

Positives: each case's prompt and paraphrase about its own edit, plus the
case's subject put into other templates of the same relation. Negatives: the
neighbourhood prompt (same relation, another subject), the case's subject put
into a template of *another* relation (same subject, other relation), and
every other candidate the memory proposes for any query. Relations are
recovered by clustering prompt templates: a neighbourhood prompt shares its
case's relation, so templates it instantiates are joined to the case's.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bbedit.memory.memory import EditMemory
from bbedit.scope.features import FEATURES, LEARNED, candidates, project_cos
from bbedit.scope.model import PairScorer
from bbedit.types import Edit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledQuery:
    text: str
    edit_ids: frozenset[str]  # the edits the query is about; empty when out of scope
    kind: str
    case: int

    @property
    def in_scope(self) -> bool:
        return bool(self.edit_ids)


def template_of(case: dict[str, Any]) -> str:
    """A case's prompt with its subject replaced by "{}" ("The capital of {} is")."""
    return str(case["prompt"]).replace(case["subject"], "{}")


def relation_clusters(cases: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Map each prompt template ("The capital of {} is") to a representative of its relation."""
    templates = {template_of(c) for c in cases if c["subject"] in c["prompt"]}
    parent = {t: t for t in templates}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    by_last: dict[str, list[tuple[str, re.Pattern[str]]]] = defaultdict(list)
    for t in templates:
        rx = re.compile("^" + re.escape(t).replace(r"\{\}", "(.+)") + "$")
        by_last["{}" if t.endswith("{}") else t.split()[-1]].append((t, rx))
    for c in cases:
        if c["subject"] not in c["prompt"] or not c.get("locality_prompt"):
            continue
        own = template_of(c)
        lp = c["locality_prompt"]
        for t, rx in by_last.get(lp.split()[-1], []) + by_last.get("{}", []):
            if rx.match(lp):
                parent[find(t)] = find(own)
    return {t: find(t) for t in templates}


def labelled_queries(cases: Sequence[dict[str, Any]], ids: Sequence[str], *, seed: int = 0,
                     synthetic: float = 0.5) -> list[LabelledQuery]:
    """The labelled queries for ``cases`` whose edits are stored under ``ids``.

    A query is in scope of every edit with the same subject and relation, so a
    neighbourhood prompt whose subject has an edit of that relation in memory is
    labelled in scope of that edit, not out of scope. With ``synthetic`` > 0,
    template positives and other-relation negatives are added for that share of cases.
    """
    rng = random.Random(seed)
    cluster = relation_clusters(cases)
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for t, rep in cluster.items():
        by_cluster[rep].append(t)
    rx = {t: re.compile("^" + re.escape(t).replace(r"\{\}", "(.+)") + "$") for t in cluster}
    facts: dict[tuple[str, str], set[str]] = defaultdict(set)  # (subject, relation) -> edit ids
    clusters_of_subject: dict[str, set[str]] = defaultdict(set)
    case_rel: list[str | None] = []
    for c, eid in zip(cases, ids, strict=True):
        t = template_of(c)
        rel = cluster.get(t)
        case_rel.append(rel)
        if rel is not None:
            facts[(c["subject"], rel)].add(eid)
            clusters_of_subject[c["subject"]].add(rel)

    def about(text: str, rel: str | None) -> frozenset[str]:
        if rel is None:
            return frozenset()
        out: set[str] = set()
        for t in by_cluster[rel]:
            m = rx[t].match(text)
            if m:
                out |= facts.get((m.group(1), rel), set())
        return frozenset(out)

    all_templates = sorted(cluster)
    questions = question_forms(cluster)
    out: list[LabelledQuery] = []
    for n, (c, eid) in enumerate(zip(cases, ids, strict=True)):
        rel = case_rel[n]
        same_fact = frozenset({eid} | facts.get((c["subject"], rel), set())) if rel else frozenset({eid})
        out.append(LabelledQuery(c["prompt"], same_fact, "prompt", n))
        if c.get("rephrase_prompt"):
            out.append(LabelledQuery(c["rephrase_prompt"], same_fact, "rephrase", n))
        if c.get("locality_prompt"):
            out.append(LabelledQuery(c["locality_prompt"], about(c["locality_prompt"], rel), "locality", n))
        if rel is None or rng.random() > synthetic:
            continue
        own = template_of(c)
        same = [t for t in by_cluster[rel] if t != own]
        if same:
            out.append(LabelledQuery(rng.choice(same).replace("{}", c["subject"]), same_fact, "template", n))
        for _ in range(5):
            t = rng.choice(all_templates)
            if cluster[t] not in clusters_of_subject[c["subject"]]:
                out.append(LabelledQuery(t.replace("{}", c["subject"]), frozenset(), "other_relation", n))
                break
        if questions.get(rel):
            out.append(LabelledQuery(rng.choice(questions[rel]).replace("{}", c["subject"]), same_fact, "question", n))
        others = [r for r in questions if r not in clusters_of_subject[c["subject"]]]
        if others:
            q = rng.choice(questions[rng.choice(others)])
            out.append(LabelledQuery(q.replace("{}", c["subject"]), frozenset(), "other_relation_question", n))
    return out


def question_forms(cluster: dict[str, str]) -> dict[str, list[str]]:
    """Question templates per relation cluster, from ``question_templates.json`` beside this module."""
    from importlib import resources

    data = json.loads(resources.files("bbedit.scope").joinpath("question_templates.json").read_text())
    out: dict[str, list[str]] = {}
    for anchor, qs in data.items():
        if anchor in cluster:
            out.setdefault(cluster[anchor], []).extend(qs)
    return out


@dataclass
class Pairs:
    """Every (query, candidate edit) pair: features, label, query index, and the two
    subject-free embeddings the relation head compares."""

    x: np.ndarray
    y: np.ndarray
    qidx: np.ndarray
    q_ctx: np.ndarray
    e_ctx: np.ndarray


def featurise(memory: EditMemory, queries: Sequence[LabelledQuery], *, k: int = 5,
              chunk: int = 512, relation_proj: np.ndarray | None = None) -> Pairs:
    """Feature rows for every (query, candidate) pair, with labels."""
    xs, ys, qs, qc, ec = [], [], [], [], []
    for b in range(0, len(queries), chunk):
        part = queries[b:b + chunk]
        for j, r in enumerate(memory.retrieve_many([q.text for q in part], k)):
            for cand in candidates(memory, r, relation_proj):
                xs.append(cand.features)
                ys.append(1.0 if cand.edit.id in part[j].edit_ids else 0.0)
                qs.append(b + j)
                qc.append(cand.query_context)
                ec.append(cand.edit_context)
    return Pairs(np.stack(xs), np.asarray(ys, np.float32), np.asarray(qs), np.stack(qc), np.stack(ec))


def decisions(scores: np.ndarray, labels: np.ndarray, qidx: np.ndarray, n_queries: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the best candidate's score and whether that candidate is the right edit."""
    best = np.full(n_queries, -1.0)
    right = np.zeros(n_queries, bool)
    for s, y, q in zip(scores, labels, qidx, strict=True):
        if s > best[q]:
            best[q], right[q] = s, y > 0.5
    return best, right


def precision_recall(best: np.ndarray, right: np.ndarray, in_scope: np.ndarray, threshold: float
                     ) -> tuple[float, float]:
    accepted = best >= threshold
    tp = int((accepted & right).sum())
    prec = tp / max(int(accepted.sum()), 1)
    rec = tp / max(int(in_scope.sum()), 1)
    return prec, rec


def train_gate(data: Path, out: Path | None = None, *, n_cases: int | None = None, seed: int = 0,
               target_precision: float = 0.99, min_recall: float = 0.98, other_relation_weight: float = 0.25,
               cross_fit_folds: int = 0, embedder: Any = None) -> dict[str, Any]:
    """Train the scorer on a CounterFact (EasyEdit flattened) file and write the model JSON.

    10% of the cases are held out. The recommended threshold is the strictest one
    whose held-out precision is at least ``target_precision`` and whose recall on
    prompts and paraphrases is at least ``min_recall``: the strictest threshold
    rejects the most other-relation queries. ``other_relation_weight`` weighs the
    synthetic same-subject/other-relation negatives (CounterFact paraphrases often
    drift in relation, so a full weight costs recall). Returns a summary.
    """
    t0 = time.perf_counter()
    cases = json.loads(Path(data).read_text(encoding="utf-8"))[: n_cases or None]
    memory = EditMemory(embedder=embedder)
    edits = [Edit(subject=c["subject"], prompt=c["prompt"], target_new=c["target_new"],
                  target_old=c.get("ground_truth"), id=f"train-{n}") for n, c in enumerate(cases)]
    memory.add_many(edits, supersede=False, progress=True)
    queries = labelled_queries(cases, [e.id for e in edits], seed=seed)
    log.info("featurising %d training queries", len(queries))
    pairs = featurise(memory, queries)
    x, y, qidx = pairs.x, pairs.y, pairs.qidx
    rng = np.random.default_rng(seed)
    val_cases = set(rng.choice(len(cases), size=max(len(cases) // 10, 1), replace=False).tolist())
    q_val = np.array([q.case in val_cases for q in queries])
    row_val = q_val[qidx]
    # the relation head learns from candidates that name the query's subject: there the
    # only question left is whether the relation is the same
    named = (x[:, FEATURES.index("subject_named")] > 0) & ~row_val
    proj = PairScorer.fit_relation(pairs.q_ctx[named], pairs.e_ctx[named], y[named], seed=seed)
    x = x.copy()
    x[:, LEARNED] = project_cos(proj, pairs.q_ctx, pairs.e_ctx)
    if cross_fit_folds > 1:
        # Users' relations are mostly not CounterFact's. So that the scorer learns how far to trust
        # the learned relation similarity on relations it has never seen, its training rows get that
        # feature from a projection fitted without their relation (folds over relation clusters).
        cluster = relation_clusters(cases)
        rel_of_case = [cluster.get(template_of(c), "") for c in cases]
        rels = sorted(set(rel_of_case))
        fold_of = {r: i % cross_fit_folds for i, r in enumerate(rng.permutation(rels).tolist())}
        row_fold = np.array([fold_of[rel_of_case[queries[q].case]] for q in qidx])
        for k in range(cross_fit_folds):
            fit_rows = named & (row_fold != k)
            proj_k = PairScorer.fit_relation(pairs.q_ctx[fit_rows], pairs.e_ctx[fit_rows], y[fit_rows], seed=seed)
            held = (row_fold == k) & ~row_val
            x[held, LEARNED] = project_cos(proj_k, pairs.q_ctx[held], pairs.e_ctx[held])
    weight = np.array([other_relation_weight if queries[q].kind.startswith("other_relation") else 1.0 for q in qidx])
    scorer = PairScorer.fit(FEATURES, x[~row_val], y[~row_val], seed=seed, sample_weight=weight[~row_val])
    scorer.relation_proj = proj
    best, right = decisions(scorer.score(x[row_val]), y[row_val], qidx[row_val], len(queries))
    val_q = np.flatnonzero(q_val)
    kinds = np.array([queries[i].kind for i in val_q])
    cf = np.isin(kinds, ["prompt", "rephrase", "locality"])  # what the CounterFact benchmark asks
    in_scope = np.array([queries[i].in_scope for i in val_q])
    b, r = best[val_q], right[val_q]
    threshold, curve = 0.5, []
    for t in np.round(np.linspace(0.05, 0.95, 19), 2):
        prec, rec = precision_recall(b[cf], r[cf], in_scope[cf], float(t))
        other = np.char.startswith(kinds.astype(str), "other_relation")
        rejected = float((b[other] < t).mean()) if other.any() else float("nan")
        curve.append({"threshold": float(t), "precision": prec, "recall": rec, "other_relation_rejected": rejected})
        if prec >= target_precision and rec >= min_recall:
            threshold = float(t)
    prec, rec = precision_recall(b[cf], r[cf], in_scope[cf], threshold)
    summary = {"n_cases": len(cases), "n_queries": len(queries), "n_pairs": len(y),
               "val_precision": prec, "val_recall": rec, "threshold": threshold, "curve": curve,
               "other_relation_weight": other_relation_weight, "cross_fit_folds": cross_fit_folds, "train_seconds": time.perf_counter() - t0}
    log.info("gate trained: precision %.4f recall %.4f at threshold %.2f", prec, rec, threshold)
    if out is not None:
        d = scorer.to_dict()
        d["recommended_threshold"] = threshold
        d["trained_on"] = {"file": Path(data).name, **summary}
        Path(out).write_text(json.dumps(d, indent=1))
    return summary
