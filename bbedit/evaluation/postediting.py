"""Post-editing systems in the editing task, and PostEdit's per-query-type table.

A post-editing system sends the question to the model unchanged; when the gate routes it to an
edit, a post-editor rewrites the answer (the learned ``postedit`` editor or the rule-based
``replace`` baseline): an :class:`~bbedit.pipeline.EditedModel` with the post-editor as its answer
editor, asked through ``chat``. Rewrites are cached like model calls (keyed by the editor's adapter
file, code and templates, :class:`~bbedit.evaluation.systems.CachedAnswerEditor`); a rewrite's time
counts only in the run that made it, never from the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError
from bbedit.evaluation import metrics as M
from bbedit.evaluation.harness import RunContext, system_prefix
from bbedit.evaluation.systems import CachedAnswerEditor, RecordedBackend, chat_all
from bbedit.pipeline import EditedModel
from bbedit.routing import Route
from bbedit.types import Completion

log = logging.getLogger(__name__)

QUERY_TYPES = ("naive", "paraphrase", "neighbor")
# rewrite latency is reported for answers of about 60 tokens (the yardstick) and for all
SIXTY = (45, 75)


def make_post_editor(ctx: RunContext, system: str) -> Any:
    from bbedit.editors.base import make_editor

    opts = dict(ctx.cfg.options.get(system, {}) or {})
    return make_editor(system, **opts)


def _editor_id(editor: Any) -> str:
    """Identifies the editor's behaviour for the cache: its name, config, code and templates, and adapter weights."""
    from bbedit.evaluation.manifest import postedit_fingerprint

    parts = [editor.name, repr(getattr(editor, "config", "")), postedit_fingerprint()]
    folder = getattr(editor, "adapter_dir", None)
    if folder is not None:
        parts.append(hashlib.sha256((Path(folder) / "adapter_model.safetensors").read_bytes()).hexdigest())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cached_post_editor(ctx: RunContext, system: str) -> CachedAnswerEditor:
    """``system``'s post-editor (configured by ``options.<system>``) with its rewrites in the suite's
    cache, keyed by :func:`_editor_id`; not told the old value with ``options.hide_old``. Raises
    ConfigError for an unknown editor or bad options."""
    inner = make_post_editor(ctx, system)
    return CachedAnswerEditor(inner, ctx.cache, f"{system}:{_editor_id(inner)}",
                              hide_old=bool(ctx.cfg.options.get("hide_old", False)))


def post_edit_all(ctx: RunContext, model: EditedModel, system: str, items: Sequence[Any], routes: Sequence[Route],
                  originals: Sequence[Completion], recorded: bool = False
                  ) -> tuple[list[Completion], list[dict[str, Any]]]:
    """Each item's answer from ``model.chat`` on its route: the post-edited answer where the gate routed
    it (its latency: the original's plus the rewrite's), the original where it passed through; and per
    routed item the rewrite's record (p_keep, seconds, tokens, passes, script). ``model``'s editor is a
    :class:`~bbedit.evaluation.systems.CachedAnswerEditor`. With ``recorded``, the answer rewritten is
    each item's recorded one (``originals``, served by a
    :class:`~bbedit.evaluation.systems.RecordedBackend`), else ``model``'s backend's."""
    editor = model.editor
    if not isinstance(editor, CachedAnswerEditor):
        raise ConfigError(f"{system}: post-editing systems run a cached answer editor")
    queries = [it.probe.text for it in items]
    if recorded:
        jobs = [(EditedModel(RecordedBackend({q: o.text}), router=model.router, editor=editor), q, r)
                for q, o, r in zip(queries, originals, routes, strict=True)]
    else:
        jobs = list(zip([model] * len(queries), queries, routes, strict=True))
    n_routed = sum(1 for r in routes if r.edit is not None)
    got = chat_all(jobs, 1, f"{ctx.cfg.suite}: {system} rewrites ({n_routed})")
    answers: list[Completion] = []
    recs: list[dict[str, Any]] = []
    for i, (o, a, r) in enumerate(zip(originals, got, routes, strict=True)):
        if r.edit is None or a.original_text is None:
            answers.append(dataclasses.replace(o, text=a.text))
            continue
        rec = editor.record(queries[i], a.original_text, r.edit)
        answers.append(Completion(a.text, -1, -1, o.latency_s + float(rec["latency_s"]), "stop"))
        recs.append({"item": i, **rec})
    return answers, recs


def rewrite_latency(recs: Sequence[dict[str, Any]]) -> dict[str, float]:
    """p50/p95 seconds of rewrites that changed an answer of about 60 tokens, and of every routed answer,
    over the rewrites made in this run (``rewrite_n_measured`` of ``n_rewrites``; those from the cache
    have no time). No figure when none was made in this run."""
    sixty = M.measured(r["latency_s"] for r in recs
                       if r["changed"] and SIXTY[0] <= r.get("answer_tokens", 0) <= SIXTY[1])
    every = M.measured(r["latency_s"] for r in recs)
    out = {"n_rewrites": float(len(recs)), "rewrite_n_measured": float(len(every))}
    if every:
        out["rewrite_p50_s_all"] = M.AGGREGATES["p50"](every)
    if sixty:
        out.update({"rewrite_p50_s": M.AGGREGATES["p50"](sixty), "rewrite_p95_s": M.AGGREGATES["p95"](sixty),
                    "n_rewrites_60_tokens": float(len(sixty))})
    return out


def by_query_type(items: Sequence[Any], answers: Sequence[Completion], base: Sequence[Completion],
                  semantic: Sequence[float] | None) -> dict[str, dict[str, float]]:
    """PostEdit's table for one system: per query type (naive, paraphrase, neighbor) and overall,
    the edit success (new target in, old out), PostEdit's lexical edit score, the share of answers
    left untouched, ROUGE-1 retention and SBERT similarity (targets masked in scope)."""
    per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for j, (it, a, b) in enumerate(zip(items, answers, base, strict=True)):
        p, e = it.probe, it.case.edits[0]
        qt = p.label if p.label in QUERY_TYPES else ("neighbor" if not p.in_scope else "naive")
        rows = [per[qt], per["overall"]] + ([per["in_scope"]] if p.in_scope else [])
        for row in rows:
            if p.in_scope:
                row["edit_success"].append(float(M.edit_success(a.text, p.answers, p.old_answers,
                                                                (e.subject, *e.aliases))))
            if e.target_old:
                row["lexical_edit"].append(M.lexical_edit_score(a.text, e.target_new, e.target_old, p.in_scope))
            row["untouched"].append(float(M.unchanged(a.text, b.text)))
            row["rouge1_retention"].append(M.lexical_retention(a.text, b.text, e.target_new, e.target_old, p.in_scope))
            if semantic is not None:
                row["sbert_retention"].append(semantic[j])
    return {qt: {k: sum(v) / len(v) for k, v in row.items() if v} for qt, row in per.items()}


def headline(table: dict[str, dict[str, dict[str, float]]], latency: dict[str, dict[str, float]],
             primary: str) -> dict[str, float]:
    """The PostEdit keys (``edit_success_naive``, ``neighbor_untouched``, ``rouge1_retention``...) per
    system, prefixed as :func:`~bbedit.evaluation.harness.system_prefix` says."""
    h: dict[str, float] = {}
    for s, t in table.items():
        if s == "none":
            continue
        pre = system_prefix(s, primary)
        for qt in ("naive", "paraphrase"):
            if "edit_success" in t.get(qt, {}):
                h[f"{pre}edit_success_{qt}"] = t[qt]["edit_success"]
        if "neighbor" in t:
            h[f"{pre}neighbor_untouched"] = t["neighbor"]["untouched"]
            if "untouched_true_neighbours" in t["neighbor"]:
                h[f"{pre}neighbor_untouched_true_neighbours"] = t["neighbor"]["untouched_true_neighbours"]
        for k in ("rouge1_retention", "sbert_retention", "lexical_edit"):
            if k in t.get("overall", {}):
                h[f"{pre}{k}"] = t["overall"][k]
            if k in t.get("in_scope", {}):
                h[f"{pre}{k}_in_scope"] = t["in_scope"][k]
        for k, v in latency.get(s, {}).items():
            h[f"{pre}{k}"] = v
    return h


def neighbours_in_scope(ctx: RunContext, items: Sequence[Any], edits: Sequence[Any]) -> dict[str, set[str]]:
    """PostEdit's CounterFact neighbours that are in scope of an edit in memory: CounterFact reuses
    subjects, so a "neighbor" query ("Mehmed the Conqueror is affiliated with the religion") can name
    the subject of another edit of the same relation, and editing it is then right. Maps each such
    query to those edits' ids. The relation of a prompt is found as for the gate's training labels,
    with the CounterFact files' prompt templates (when present) as the catalogue of relations."""
    import json

    from bbedit.evaluation import harness

    texts = {it.probe.text for it in items if it.probe.label == "neighbor"}
    path = str(ctx.cfg.dataset.get("path", ""))
    cf_files = [ctx.data_root / "counterfact" / n for n in ("counterfact-edit.json", "counterfact-train.json")]
    if not texts or "counterfact" not in path or not all(p.is_file() for p in cf_files):
        return {}
    nb_of: dict[str, list[str]] = defaultdict(list)
    for it in items:
        if it.probe.label == "neighbor":
            nb_of[it.case.edits[0].id].append(it.probe.text)
    records, ids = [], []
    for e in edits:
        for nb in nb_of.get(e.id) or [""]:
            records.append({"subject": e.subject, "prompt": e.prompt, "target_new": e.target_new,
                            "ground_truth": e.target_old or "", "rephrase_prompt": "", "locality_prompt": nb,
                            "locality_ground_truth": ""})
            ids.append(e.id)
    catalogue = [r for p in cf_files for r in json.loads(p.read_text(encoding="utf-8"))]
    return harness.neighbours_in_scope(records, ids, texts, catalogue)


def true_neighbour_untouched(items: Sequence[Any], answers: Sequence[Completion], base: Sequence[Completion],
                             in_scope: dict[str, set[str]]) -> float | None:
    """The share of neighbour answers left untouched, over the neighbours no edit in memory is about."""
    vals = [float(M.unchanged(a.text, b.text)) for it, a, b in zip(items, answers, base, strict=True)
            if it.probe.label == "neighbor" and it.probe.text not in in_scope]
    return sum(vals) / len(vals) if vals else None
