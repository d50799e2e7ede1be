"""The ``editing`` task: a dataset's cases through each system, scored under both protocols.

Used by the counterfact, zsre, postedit-* and knowedit/qaedit suites. Every edit of
the dataset file is in memory (``memory: file``), so the gate must also find the
right edit among thousands. Every system answers through its
:class:`~bbedit.pipeline.EditedModel` (:mod:`bbedit.evaluation.systems`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bbedit.errors import ConfigError
from bbedit.evaluation import metrics as M
from bbedit.evaluation import postediting
from bbedit.evaluation.calls import pmap
from bbedit.evaluation.cases import Case, Dataset, Probe, load_dataset
from bbedit.evaluation.harness import (
    POST_EDITORS,
    RunContext,
    build_memory,
    cloze_prefix,
    flat_counterfact,
    make_editor,
    neighbours_in_scope,
    system_prefix,
)
from bbedit.evaluation.systems import Systems, chat_all, completions, route, user
from bbedit.evaluation.tasks import FunctionTask
from bbedit.evaluation.tasks.editing_report import editing_report
from bbedit.routing import Route
from bbedit.types import Completion, Edit, Message

log = logging.getLogger(__name__)


@dataclass
class Item:
    """One probe of one case, as asked of every system."""

    case: Case
    probe: Probe


def load(ctx: RunContext) -> tuple[Dataset, list[Edit]]:
    """The suite's cases (its first n) and the edits that go in memory (the whole file's, for
    ``memory: file``)."""
    d = ctx.cfg.dataset
    edits_path = ctx.data_path(d["edits"]) if d.get("edits") else None
    data = load_dataset(ctx.data_path(d["path"]), d.get("format", "auto"), edits_path=edits_path,
                        on_error=d.get("on_error", "raise"))
    whole_file = data.edits()
    if ctx.cfg.n:
        data.cases = data.cases[:ctx.cfg.n]
    return data, whole_file if ctx.cfg.memory == "file" else data.edits()


def answer_all(ctx: RunContext, items: Sequence[Item], systems_: Systems, editor: Any,
               systems: Sequence[str]) -> tuple[dict[str, list[Route]], dict[str, list[list[Message]]],
                                                 dict[str, list[Completion]], dict[str, float]]:
    """Route and answer every item for every system through its :class:`~bbedit.pipeline.EditedModel`
    (generation protocol): routes in batches, answers from ``model.chat`` with the suite's workers; the
    requests are what each model sends (:meth:`~bbedit.pipeline.EditedModel.request_messages`). A request
    shared by systems (an out-of-scope query passed through is the unedited request) is sent once."""
    queries = [it.probe.text for it in items]
    backend = ctx.backend()
    routes, route_ms, requests, models = {}, {}, {}, {}
    for s in systems:
        models[s] = systems_.model(s, backend, editor)
        routes[s], route_ms[s] = route(models[s] if s != "none" else None, queries)
        requests[s] = [models[s].request_messages(user(q), r) for q, r in zip(queries, routes[s], strict=True)]
    jobs = [(models[s], q, r) for s in systems for q, r in zip(queries, routes[s], strict=True)]
    n_unique = len({str(m) for s in systems for m in requests[s]})
    got = chat_all(jobs, ctx.cfg.workers, f"{ctx.cfg.suite}: {n_unique} requests")
    answers = {}
    for j, s in enumerate(systems):
        part = got[j * len(queries):(j + 1) * len(queries)]
        answers[s] = completions(models[s], backend, queries, routes[s], part)
    return routes, requests, answers, route_ms


def _edit_id(route: Route) -> str | None:
    return route.edit.id if route.edit is not None else None


def right_edit(item: Item, route: Route) -> bool:
    return route.edit is not None and route.edit.id in {e.id for e in item.case.edits}


def score_generation(items: Sequence[Item], answers: Sequence[Completion], base: Sequence[Completion]
                     ) -> dict[str, list[float]]:
    """Per-probe scores of one system under the generation protocol; ``base`` are the unedited
    system's answers (locality and PostEdit retention are measured against them)."""
    out: dict[str, list[float]] = defaultdict(list)
    for it, a, b in zip(items, answers, base, strict=True):
        p, text = it.probe, a.text
        if p.kind == "locality":
            out["locality"].append(float(M.unchanged(text, b.text)))
            if p.answers:
                out["locality_truth"].append(float(M.contains_any(text, p.answers)))
        elif p.kind in ("reliability", "generalization", "multihop"):
            e0 = it.case.edits[0]  # an old value inside the subject's name is not asserted ("Toyota Cresta")
            out[p.kind].append(float(M.edit_success(text, p.answers, p.old_answers, (e0.subject, *e0.aliases))))
        elif p.kind == "portability":
            out["portability"].append(float(M.contains_any(text, p.answers)))
        out["fluency"].append(M.ngram_entropy(text))
        edit = it.case.edits[0]
        if edit.target_old:
            out["lexical_edit"].append(M.lexical_edit_score(text, edit.target_new, edit.target_old, p.in_scope))
        out["lexical_retention"].append(M.lexical_retention(text, b.text, edit.target_new, edit.target_old,
                                                            p.in_scope))
        out["latency"].append(a.latency_s * 1000)
    return out


def semantic_retention(items: Sequence[Item], answers: Sequence[Completion], base: Sequence[Completion]
                       ) -> list[float]:
    """PostEdit's semantic retention: SBERT (MiniLM) cosine of edited vs. original answer, targets masked
    for in-scope probes."""
    import numpy as np

    from bbedit.memory.embedder import load_embedder

    emb = load_embedder()
    a, b = [], []
    for it, x, y in zip(items, answers, base, strict=True):
        e = it.case.edits[0]
        a.append(M.mask(x.text, e.target_new) if it.probe.in_scope else x.text.lower())
        b.append(M.mask(y.text, e.target_old) if it.probe.in_scope else y.text.lower())
    va, vb = emb.embed(a), emb.embed(b)
    return [float(v) for v in np.sum(np.asarray(va) * np.asarray(vb), axis=1)]


def gate_counts(items: Sequence[Item], routes: Sequence[Route]) -> dict[str, float]:
    tp = sum(1 for it, r in zip(items, routes, strict=True) if it.probe.in_scope and right_edit(it, r))
    routed = sum(1 for r in routes if r.edit is not None)
    pos = sum(1 for it in items if it.probe.in_scope)
    p, r, f = M.prf(tp, routed - tp, pos - tp)
    return {"gate_precision": p, "gate_recall": r, "gate_f1": f,
            "gate_routed_out_of_scope": sum(1 for it, rt in zip(items, routes, strict=True)
                                            if not it.probe.in_scope and rt.edit is not None)
            / max(sum(1 for it in items if not it.probe.in_scope), 1)}


def score_probability(ctx: RunContext, items: Sequence[Item], requests: Sequence[list[Message]],
                      scorer: Any = None, progress: bool = True) -> dict[str, list[float]]:
    """Teacher-forced scores on the messages the system sends. In scope: success when the new
    answer is more likely than the old one (CounterFact's efficacy/paraphrase score), plus the
    target's token accuracy (EasyEdit's teacher-forced metric). Locality: the true answer stays
    more likely than the edit's new target. ``scorer`` defaults to the suite's cached local model (pass
    an uncached one for a model whose weights change)."""
    scorer = scorer if scorer is not None else ctx.scorer()
    jobs: list[tuple[Item, list[Any], list[str], str]] = []
    for it, msgs in zip(items, requests, strict=True):
        p, edit = it.probe, it.case.edits[0]
        if p.kind == "locality":
            conts = [p.answers[0], edit.target_new] if p.answers else []
        else:
            conts = [p.answers[0]] + ([p.old_answers[0]] if p.old_answers else [])
        if conts:
            jobs.append((it, msgs, conts, cloze_prefix(p.text)))
    prefix_space = [[(" " + c) if pre else c for c in conts] for _, _, conts, pre in jobs]
    scores = pmap(lambda j: scorer.score(jobs[j][1], prefix_space[j], jobs[j][3]), range(len(jobs)), 1,
                  f"{ctx.cfg.suite}: teacher forcing" if progress else None)
    out: dict[str, list[float]] = defaultdict(list)
    for (it, _, _, _), sc in zip(jobs, scores, strict=True):
        kind = it.probe.kind
        if len(sc) == 2:
            out[kind].append(float(sc[0].logprob > sc[1].logprob))
        if kind != "locality":
            out[f"{kind}_token_acc"].append(sc[0].token_accuracy)
    return out


def summarise(per: dict[str, list[float]]) -> dict[str, float]:
    res = {}
    for k, v in per.items():
        if not v:
            continue
        base = k.removesuffix("_token_acc")
        res[k] = M.aggregate(base, v) if base in M.METRICS and base == k else sum(v) / len(v)
    return res


RENAME = {"latency": "latency_p50_ms", "token_overhead": "token_overhead_mean", "routing_ms": "routing_ms_per_query"}


def headline_key(system: str, protocol: str, metric: str, primary: str = "bbedit") -> str:
    """``generation_reliability`` for the primary system (bbedit), ``baseline_none_generation_reliability``
    for the others; gate and cost figures carry no protocol (``gate_recall``, ``token_overhead_mean``)."""
    name = RENAME.get(metric, metric)
    key = name if metric.startswith("gate_") or metric in ("token_overhead", "routing_ms") else f"{protocol}_{name}"
    return system_prefix(system, primary) + key


def post_edit_systems(ctx: RunContext, items: Sequence[Item], systems: Sequence[str], systems_: Systems,
                      routes: dict[str, list[Route]], answers: dict[str, list[Completion]],
                      route_ms: dict[str, float]
                      ) -> tuple[list[Completion], dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Answers of the post-editing systems (added to ``answers``/``routes``), the original answers they
    rewrote, each system's rewrite records, and the gate thresholds of those routed below the gate's.
    Each post-editor is routed at its own ``gate_threshold`` (when below the gate's)."""
    post = [s for s in systems if s in POST_EDITORS]
    if not post:
        return answers["none"], {}, {}
    if ctx.cfg.options.get("original", "model") == "reference":
        missing = sum(1 for it in items if it.probe.reference is None)
        if missing:
            raise ConfigError(f"suite {ctx.cfg.suite!r}: options.original is 'reference' but {missing} queries "
                              "have no recorded answer")
        originals = [Completion(str(it.probe.reference)) for it in items]
        recorded = True
    else:
        originals = answers["none"]
        recorded = False
    recs, thresholds = {}, {}
    gate_threshold = float(systems_.gate.threshold)
    for s in post:
        editor = postediting.cached_post_editor(ctx, s)
        model = systems_.model(s, ctx.backend(), editor)
        routes[s], route_ms[s] = route(model, [it.probe.text for it in items])
        if editor.gate_threshold is not None and editor.gate_threshold < gate_threshold:
            thresholds[f"{s}_gate_threshold"] = editor.gate_threshold
        answers[s], recs[s] = postediting.post_edit_all(ctx, model, s, items, routes[s], originals, recorded)
    return originals, recs, thresholds


def run(ctx: RunContext) -> dict[str, Any]:
    """Run the editing task; returns the headline, per-protocol results per system, and every record."""
    cfg = ctx.cfg
    t0 = time.perf_counter()
    data, edits = load(ctx)
    items = [Item(c, p) for c in data.cases for p in c.probes]
    memory = build_memory(edits)
    systems_ = Systems(memory)
    gate = systems_.gate
    editor = make_editor(cfg)
    systems = list(dict.fromkeys(["none", *cfg.systems]))  # the unedited answers are the locality reference
    direct = [s for s in systems if s not in POST_EDITORS]
    routes, requests, answers, route_ms = answer_all(ctx, items, systems_, editor, direct)
    originals, rewrites, thresholds = post_edit_systems(ctx, items, systems, systems_, routes, answers, route_ms)
    primary = str(cfg.options.get("primary", "bbedit"))
    results: dict[str, dict[str, dict[str, float]]] = {"generation": {}, "probability": {}}
    by_type: dict[str, dict[str, dict[str, float]]] = {}
    postedit_view = data.format == "postedit" or bool(rewrites)  # some system gets PostEdit's table
    shared_nb = postediting.neighbours_in_scope(ctx, items, edits) if postedit_view else {}
    for s in systems:
        base = originals if s in POST_EDITORS else answers["none"]
        per = score_generation(items, answers[s], base)
        semantic = None
        if cfg.options.get("semantic_retention", data.format == "postedit"):
            per["semantic_retention"] = semantic = semantic_retention(items, answers[s], base)
        if data.format == "postedit" or s in POST_EDITORS:
            by_type[s] = postediting.by_query_type(items, answers[s], base, semantic)
            true_nb = postediting.true_neighbour_untouched(items, answers[s], base, shared_nb)
            if shared_nb and true_nb is not None:
                by_type[s].setdefault("neighbor", {})["untouched_true_neighbours"] = true_nb
        summary = summarise(per)
        summary["latency"] = M.aggregate("latency", per["latency"]) + route_ms[s]
        summary["latency_n_measured"] = M.n_measured(per["latency"])  # answers not from the cache
        if s != "none":
            summary.update(gate_counts(items, routes[s]))
            extra = [a.prompt_tokens - b.prompt_tokens for a, b, r in zip(answers[s], base, routes[s], strict=True)
                     if r.edit is not None and a.prompt_tokens >= 0 and b.prompt_tokens >= 0]
            if extra:
                summary["token_overhead"] = sum(extra) / len(extra)
            summary["routing_ms"] = route_ms[s]
        results["generation"][s] = summary
    if "probability" in cfg.protocols:
        n_prob = int(cfg.probability.get("n", len(data.cases)))
        keep = {c.id for c in data.cases[:n_prob]}
        sub = [i for i, it in enumerate(items) if it.case.id in keep]
        for s in direct:  # post-editors change the text, not the model's probabilities
            per = score_probability(ctx, [items[i] for i in sub], [requests[s][i] for i in sub])
            results["probability"][s] = summarise(per)
    wall = time.perf_counter() - t0
    headline: dict[str, float | int] = {"n_cases": len(data.cases), "n_queries": len(items), "wall_s": round(wall, 1),
                                        "n_edits_in_memory": len(memory)}
    for proto, by_sys in results.items():
        for s, summary in by_sys.items():
            for k, v in summary.items():
                headline[headline_key(s, proto, k, primary)] = v
    if postedit_view:
        latency = {s: postediting.rewrite_latency(r) for s, r in rewrites.items()}
        if "bbedit" in answers:
            latency["bbedit"] = ike_latency(answers["bbedit"], routes["bbedit"])
        headline.update(postediting.headline(by_type, latency, primary))
        if shared_nb:
            headline["n_neighbours_in_scope_of_another_edit"] = len(shared_nb)
    headline["model_calls"] = ctx.model().calls
    headline["model_calls_cached"] = ctx.model().hits
    # The recorded answers post-editors start from are the dataset's text (never committed): for those
    # systems a record says whether the answer changed, and the learned editor's edit script.
    recorded = bool(rewrites) and cfg.options.get("original", "model") == "reference"
    verbatim = [s for s in systems if not (recorded and s in POST_EDITORS)]
    records = [{"case": it.case.id, "kind": it.probe.kind, "label": it.probe.label, "query": it.probe.text,
                "answers": list(it.probe.answers[:3]), "old": list(it.probe.old_answers[:3]),
                **{f"{s}": answers[s][i].text for s in verbatim},
                **{f"{s}_changed": answers[s][i].text != originals[i].text for s in systems if s not in verbatim},
                **{f"{s}_edit": _edit_id(routes[s][i]) for s in systems if s != "none"}}
               for i, it in enumerate(items)]
    for s, recs in rewrites.items():
        for r in recs:
            records[r["item"]][f"{s}_p_keep"] = round(r["p_keep"], 4)
            records[r["item"]][f"{s}_rewrite_s"] = round(r["latency_s"], 3) if r["latency_s"] == r["latency_s"] else None
            if r.get("script"):
                records[r["item"]][f"{s}_script"] = r["script"]
    if rewrites and not recorded:
        for rec, o in zip(records, originals, strict=True):
            rec["original"] = o.text
    out = {"headline": headline, "results": results, "records": records, "systems": systems,
           "by_query_type": by_type, "primary": primary, "gate_threshold": gate.threshold, **thresholds,
           "dataset": {"name": data.name, "format": data.format, "skipped": data.skipped,
                       "n_extra_edits": len(data.extra_edits)}}
    _augment(ctx, out, data, edits)
    return out


def ike_latency(answers: Sequence[Completion], routes: Sequence[Route]) -> dict[str, float]:
    """For comparison with a post-editor's rewrite time: the seconds of the served model's whole edited
    answer (in-context editing replaces the call rather than rewriting an answer), p50/p95 over every
    routed query whose answer was made in this run (with the suite's concurrent requests); answers from
    the cache have no latency here."""
    lat = M.measured(a.latency_s for a, r in zip(answers, routes, strict=True) if r.edit is not None)
    if not lat:
        return {}
    p50 = M.AGGREGATES["p50"](lat)
    return {"rewrite_p50_s": p50, "rewrite_p95_s": M.AGGREGATES["p95"](lat), "rewrite_p50_s_all": p50,
            "rewrite_n_measured": float(len(lat))}


def _same_subject(out: dict[str, Any], data: Dataset, edits: Sequence[Edit]) -> None:
    """Some files hold several edits of one subject, often conflicting edits of one relation (zsRE:
    "What architect designed X?" -> A, "Who is the architect of X?" -> B). Routing a probe to the
    other one is then not a gate error. Adds the share of in-scope probes routed to an edit of their
    case's subject (own edit or another), and how many cases share their subject with another case."""
    from bbedit.memory.subjects import name_key

    subject = {c.id: name_key(c.edits[0].subject) for c in data.cases}
    ids = {e.id: name_key(e.subject) for e in edits}
    by_subject: dict[tuple[str, ...], int] = defaultdict(int)
    for key in ids.values():
        by_subject[key] += 1
    h = out["headline"]
    h["n_cases_sharing_subject"] = sum(1 for c in data.cases if by_subject[subject[c.id]] > 1)
    in_scope = [r for r in out["records"] if r["kind"] != "locality" and r["case"] in subject]
    for s in out["systems"]:
        if s == "none" or not in_scope:
            continue
        same = sum(1 for r in in_scope if r.get(f"{s}_edit") and ids.get(r[f"{s}_edit"]) == subject[r["case"]])
        h[system_prefix(s, str(out.get("primary", "bbedit"))) + "gate_routed_to_same_subject"] = same / len(in_scope)


def _shared_neighbours(ctx: RunContext, out: dict[str, Any]) -> None:
    """For flattened CounterFact data with the whole file in memory: locality on the true neighbours
    only, and a gate precision that counts routing a neighbour to an edit it is in scope of
    (:func:`~bbedit.evaluation.harness.neighbours_in_scope`) as right."""
    if out.get("dataset", {}).get("format") != "counterfact" or ctx.cfg.memory != "file":
        return
    raw = flat_counterfact(ctx.data_path(ctx.cfg.dataset["path"]))
    if raw is None:
        return  # ROME's original form: neighbourhood lists, no shared-subject labelling here
    from bbedit.memory import formats

    ids = [formats.edit_from_record(r, "counterfact", i).id for i, r in enumerate(raw)]
    loc = [r for r in out["records"] if r["kind"] == "locality"]
    other = neighbours_in_scope(raw, ids, {r["query"] for r in loc})
    true_nb = [r for r in loc if r["query"] not in other]
    h = out["headline"]
    for s in out["systems"]:
        if s == "none" or not true_nb:
            continue
        key = system_prefix(s, str(out.get("primary", "bbedit")))
        h[f"{key}generation_locality_true_neighbours"] = sum(M.unchanged(r[s], r["none"]) for r in true_nb) / len(true_nb)
        routed = [r for r in out["records"] if r.get(f"{s}_edit")]
        right = [r for r in routed if (r["kind"] != "locality" and r[f"{s}_edit"] == r["case"])
                 or (r["kind"] == "locality" and r[f"{s}_edit"] in other.get(r["query"], set()))]
        h[f"{key}gate_precision_scope_aware"] = len(right) / len(routed) if routed else 0.0
    h["n_neighbours_in_scope_of_another_edit"] = len(loc) - len(true_nb)
    for r in loc:
        r["in_scope_of_another_edit"] = r["query"] in other


def _augment(ctx: RunContext, out: dict[str, Any], data: Dataset, edits: Sequence[Edit]) -> None:
    """Figures computed from the records that correct for how the data is built: shared subjects
    (all formats) and neighbours in scope of another edit (flattened CounterFact)."""
    _same_subject(out, data, edits)
    _shared_neighbours(ctx, out)


def augment(ctx: RunContext, out: dict[str, Any]) -> None:
    """:func:`_augment` for a finished run's output (``--report-only``), loading its data again."""
    data, edits = load(ctx)
    _augment(ctx, out, data, edits)


TASK = FunctionTask("editing", run, editing_report, augment)
