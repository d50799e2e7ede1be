"""The scope gate on every evaluation set of ../shared/data (evaluation only): the shipped learned
gate beside the gate it replaced (the learned gate fitted on counterfact-train alone, kept in
``eval/scope_old_gate_model.json``) and the plain cosine baseline (top-1 MiniLM cosine >= 0.80), on
the same queries, each at its own fixed threshold; optionally the cross-encoder gate (``--cross DIR``).

    PYTHONPATH=. python eval/scope.py [--cases 500] [--nq 3610] [--latency 200] [--scale 100000]

Each set keeps all its edits in memory; queries come from a seeded sample of ``--cases`` cases
(PostEdit: all queries of the sampled edits). A query is a true positive when the gate accepts a
right edit. NQ-open questions are routed with CounterFact's 10,000 edits in memory. Routing latency
(retrieval + gate, one query at a time) is measured with ``--scale`` edits in memory next to one
bare MiniLM encode.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bbedit.evaluation.cases import load_dataset
from bbedit.evaluation.harness import neighbours_in_scope
from bbedit.evaluation.report import DATA_ROOT, md_table, write_results
from bbedit.evaluation.scope_bench import judge_many, metrics
from bbedit.memory.memory import EditMemory
from bbedit.memory.relation import BUILTIN_MODEL
from bbedit.routing import Router
from bbedit.scope.features import FEATURES
from bbedit.scope.gate import CrossEncoderGate, GateBase, LearnedGate, SimilarityGate
from bbedit.scope.model import PairScorer
from bbedit.scope.pairs import norm
from bbedit.scope.train import LabelledQuery, labelled_queries
from bbedit.types import Edit

log = logging.getLogger("scope")
OLD_MODEL = Path(__file__).resolve().parent / "scope_old_gate_model.json"
CURVE = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
COSINE_THRESHOLD = 0.80


def _sample(n_total: int, n: int, seed: int = 0) -> list[int]:
    idx = list(range(n_total))
    return sorted(random.Random(seed).sample(idx, n)) if n < n_total else idx


def _memory(edits: Sequence[Edit]) -> EditMemory:
    m = EditMemory(None)
    m.add_many(list(edits), supersede=False)
    return m


@functools.lru_cache(maxsize=4)
def _model_json(path: str) -> dict[str, Any]:
    """A gate model file, read once per run (every set builds its gates from it)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _scorer(path: str) -> tuple[PairScorer, float]:
    """The scorer of a gate model file and its recommended threshold."""
    d = _model_json(path)
    return PairScorer.from_dict(d, FEATURES), float(d["recommended_threshold"])


class OldGate(LearnedGate):
    """The learned gate as it was before the multi-relation scorer (counterfact-train only)."""

    name = "old"

    def __init__(self, memory: EditMemory) -> None:
        super().__init__(memory, *_scorer(str(OLD_MODEL)))


def _new_gate(memory: EditMemory, model: str | None) -> LearnedGate:
    """The shipped learned gate, or the one in the model JSON ``model`` (a candidate before it ships)."""
    return LearnedGate(memory) if model is None else LearnedGate(memory, *_scorer(model))


def _gates(memory: EditMemory, cross: str | None, model: str | None = None) -> list[GateBase]:
    gates: list[GateBase] = [_new_gate(memory, model), OldGate(memory), SimilarityGate(memory, COSINE_THRESHOLD)]
    if cross:
        gates.append(CrossEncoderGate(memory, model=cross))
    return gates


def counterfact(data: Path, n: int) -> tuple[EditMemory, list[LabelledQuery], dict[str, Any]]:
    cases = json.loads((data / "counterfact" / "counterfact-edit.json").read_text())
    edits = [Edit(subject=c["subject"], prompt=c["prompt"], target_new=c["target_new"], target_old=c["ground_truth"],
                  id=f"cf-{c['case_id']}") for c in cases]
    qs = labelled_queries(cases, [e.id for e in edits], synthetic=0.0)
    keep = set(_sample(len(cases), n))
    qs = [q for q in qs if q.case in keep]
    return _memory(edits), qs, {"cases_sampled": len(keep), "edits": len(edits),
                                "locality_in_scope_of_other_edit": sum(q.kind == "locality" and q.in_scope for q in qs)}


def from_dataset(path: Path, n: int | None, kinds: Sequence[str]) -> tuple[EditMemory, list[LabelledQuery], dict[str, Any]]:
    ds = load_dataset(path, on_error="skip")  # PostEdit's zsRE edit set has records with empty targets
    edits = ds.edits()
    keep = set(_sample(len(ds.cases), n)) if n is not None else set(range(len(ds.cases)))
    qs = []
    for i, c in enumerate(ds.cases):
        if i not in keep:
            continue
        for p in c.probes:
            if p.kind in kinds:
                ids = frozenset(e.id for e in c.edits) if p.should_route else frozenset()
                qs.append(LabelledQuery(p.text, ids, p.label or p.kind, i))
    return _memory(edits), qs, {"cases_sampled": len(keep), "edits": len(edits)}


def postedit_neighbours(data: Path, mem: EditMemory, qs: Sequence[LabelledQuery]) -> tuple[list[LabelledQuery], int]:
    """PostEdit's CounterFact neighbours that name the subject of another stored edit of the same relation
    (CounterFact reuses subjects: "In Lugano, an official language is" is a neighbour of one edit while
    "The official language of Lugano is" is another's prompt) are in scope of that edit, as the
    postedit-counterfact suite counts them (:func:`bbedit.evaluation.harness.neighbours_in_scope`)."""
    cases = load_dataset(data / "postedit" / "counterfact" / "query_data.json", on_error="skip").cases
    texts = {q.text for q in qs if q.kind == "neighbor"}
    own = {q.text: cases[q.case].edits[0].id for q in qs if q.kind == "neighbor"}  # each neighbour with its case's edit
    edits = mem.list()

    def record(e: Edit, neighbour: str = "") -> dict[str, str]:
        return {"subject": e.subject, "prompt": e.prompt, "target_new": e.target_new, "ground_truth": e.target_old or "",
                "rephrase_prompt": "", "locality_prompt": neighbour, "locality_ground_truth": ""}

    queries = [record(mem.get(eid), t) for t, eid in own.items()]
    catalogue = [r for f in ("counterfact-edit.json", "counterfact-train.json")
                 if (p := data / "counterfact" / f).is_file() for r in json.loads(p.read_text(encoding="utf-8"))]
    found = neighbours_in_scope([record(e) for e in edits], [e.id for e in edits], texts, [*queries, *catalogue])
    out = [LabelledQuery(q.text, frozenset(found[q.text]), "neighbor_same_fact", q.case) if q.text in found else q
           for q in qs]
    return out, sum(q.text in found for q in qs)


def knowedit(data: Path, n: int) -> tuple[EditMemory, list[LabelledQuery], dict[str, Any]]:
    """KnowEdit ZsRE through the dataset loader: a Relation_Specificity prompt that asks the edited fact
    (its answer is the edit's old answer) is in scope, as the loader reads it."""
    return from_dataset(data / "knowedit" / "ZsRE-test-all.json", n, ("reliability", "generalization", "locality"))


def mquake(data: Path, n: int) -> tuple[EditMemory, list[LabelledQuery], dict[str, Any]]:
    """In scope: the single-hop questions of edited facts (each of its own edit). Out of scope: the
    single-hop questions of the original chain that no edit rewrote (other subject or relation)."""
    raw = json.loads((data / "mquake" / "MQuAKE-hard.json").read_text())
    ds = load_dataset(data / "mquake" / "MQuAKE-hard.json")
    edits = ds.edits()
    keep = set(_sample(len(ds.cases), n))
    qs: list[LabelledQuery] = []
    edited = {norm(rw.get("question", "")) for rec in raw for rw in rec["requested_rewrite"]}
    edited |= {norm(p.text) for c in ds.cases for p in c.probes if p.kind == "reliability"}
    for i, (c, rec) in enumerate(zip(ds.cases, raw, strict=True)):
        if i not in keep:
            continue
        for p in c.probes:
            if p.kind == "reliability":
                ids = frozenset(e.id for e in c.edits if e.target_new == p.answers[0] and e.subject in p.text)
                qs.append(LabelledQuery(p.text, ids, "single_hop_edited", i))
        for hop in rec.get("single_hops") or []:
            if norm(hop["question"]) not in edited:
                qs.append(LabelledQuery(hop["question"], frozenset(), "single_hop_unedited", i))
    return _memory(edits), qs, {"cases_sampled": len(keep), "edits": len(edits)}


def same_fact_ids(memory: EditMemory, qs: Sequence[LabelledQuery]) -> tuple[list[LabelledQuery], int]:
    """Each in-scope query is right for every stored edit of the same subject and prompt (datasets
    repeat facts under several ids: MQuAKE's shared hops, PostEdit's edit sets). Returns the queries
    and how many gained ids."""
    by_key: dict[tuple[str, str], set[str]] = {}
    for e in memory.list():
        by_key.setdefault((norm(e.subject), norm(e.prompt)), set()).add(e.id)
    out, grown = [], 0
    for q in qs:
        ids = set(q.edit_ids)
        for eid in q.edit_ids:
            if eid in memory:
                e = memory.get(eid)
                ids |= by_key.get((norm(e.subject), norm(e.prompt)), set())
        grown += len(ids) > len(q.edit_ids)
        out.append(LabelledQuery(q.text, frozenset(ids), q.kind, q.case))
    return out, grown


# Sets whose records of one subject all ask the same fact, in other words and often with conflicting
# targets (zsRE: 464 records of 170 subjects; KnowEdit ZsRE: 140 subjects; every one of 45 and 15
# sampled groups asks one relation), so that any edit of the query's subject is a right edit
SAME_SUBJECT_SAME_FACT = ("zsre", "knowedit")


def same_subject_ids(memory: EditMemory, qs: Sequence[LabelledQuery]) -> tuple[list[LabelledQuery], int]:
    """Each in-scope query is right for every stored edit of its edit's subject (for the sets in
    :data:`SAME_SUBJECT_SAME_FACT` only). Returns the queries and how many gained ids."""
    by_subject: dict[str, set[str]] = {}
    for e in memory.list():
        by_subject.setdefault(norm(e.subject), set()).add(e.id)
    out, grown = [], 0
    for q in qs:
        ids = set(q.edit_ids)
        for eid in q.edit_ids:
            if eid in memory:
                ids |= by_subject.get(norm(memory.get(eid).subject), set())
        grown += len(ids) > len(q.edit_ids)
        out.append(LabelledQuery(q.text, frozenset(ids), q.kind, q.case))
    return out, grown


def nq_queries(data: Path, n: int) -> list[LabelledQuery]:
    lines = (data / "general" / "NQ-open.dev.jsonl").read_text().splitlines()
    return [LabelledQuery(json.loads(x)["question"], frozenset(), "nq", -1) for x in lines[:n]]


def latency(memory: EditMemory, gates: Sequence[GateBase], queries: Sequence[str]) -> dict[str, float]:
    """p50 of one routed query (retrieval + gate) per gate, and of one bare MiniLM encode."""
    out: dict[str, float] = {}
    enc = []
    for q in queries:
        t = time.perf_counter()
        memory.embedder.embed([q])
        enc.append(time.perf_counter() - t)
    out["encode_p50_ms"] = 1000 * statistics.median(enc)
    for g in gates:
        router = Router(memory, g, refresh=False)
        router.route_query(queries[0])  # warm (model load)
        ts = []
        for q in queries:
            t = time.perf_counter()
            router.route_query(q)
            ts.append(time.perf_counter() - t)
        out[f"route_p50_ms_{g.name}"] = 1000 * statistics.median(ts)
    numpy_bert = getattr(memory.embedder, "_bert", None)  # the threads the query encode ran on at the end
    if numpy_bert is not None:
        out["encode_threads"] = numpy_bert.pass_threads()
    return out


LABEL = {"learned": "new gate", "old": "old gate", "similarity": "cosine 0.80", "cross": "cross-encoder"}
SETS = "counterfact,zsre,knowedit,postedit_counterfact,postedit_zsre,mquake"


def scale_memory(n: int, cache: Path | None) -> EditMemory:
    """``n`` synthetic edits (invented people and companies x relation phrasings), for latency only;
    kept in ``cache`` (a memory folder) so that a rerun does not embed them again."""
    if cache is not None and (cache / "edits.sqlite").exists():
        m = EditMemory(cache)
        if len(m) >= n:
            return m
        m.close()
    rng = random.Random(7)
    first = ["Ada", "Bruno", "Chiara", "Dmitri", "Esme", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemal", "Lena",
             "Mateo", "Nadia", "Otto", "Priya", "Quentin", "Rosa", "Sven", "Tamar", "Umar", "Vera", "Wen", "Yusuf"]
    last = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Rossi", "Haddad", "Novak", "Silva", "Kowalski", "Berg",
            "Adeyemi", "Costa", "Varga", "Ito", "Meyer", "Duarte", "Petrov", "Nakamura", "Olsen", "Reyes"]
    rel = ["The CEO of {} is", "{} is headquartered in", "The founder of {} is", "{} was born in",
           "The native language of {} is", "{} works for", "Who is the CTO of {}?", "What does {} sell?",
           "{} plays the", "The capital of {} is", "{} is a citizen of", "Which team does {} play for?"]
    edits = []
    for i in range(n):
        subject = f"{rng.choice(first)} {rng.choice(last)} {i}" if i % 2 else f"Company {i} {rng.choice(last)}"
        edits.append(Edit(subject=subject, prompt=rng.choice(rel).format(subject), target_new=rng.choice(last),
                          id=f"s{i}"))
    m = EditMemory(cache)
    m.add_many(edits, supersede=False, progress=True)
    return m


def load_set(name: str, data: Path, cases: int) -> tuple[EditMemory, list[LabelledQuery], dict[str, Any]]:
    """One evaluation set by name (:data:`SETS`): a memory holding all its edits, the labelled queries of
    a seeded sample of ``cases`` cases (every stored edit of the same fact counts as right), and what
    was loaded."""
    qa = ("reliability", "generalization", "locality")
    if name == "counterfact":
        mem, qs, info = counterfact(data, cases)
    elif name == "zsre":
        mem, qs, info = from_dataset(data / "zsre" / "zsre_mend_eval_portability_gpt4.json", cases, qa)
    elif name == "knowedit":
        mem, qs, info = knowedit(data, cases)
    elif name.startswith("postedit_"):
        mem, qs, info = from_dataset(data / "postedit" / name.split("_", 1)[1] / "query_data.json", cases, qa)
        if name == "postedit_counterfact":
            qs, info["neighbours_in_scope_of_an_edit"] = postedit_neighbours(data, mem, qs)
    elif name == "mquake":
        mem, qs, info = mquake(data, cases)
    else:
        raise SystemExit(f"unknown set {name}")
    qs, grown = same_fact_ids(mem, qs)
    info["queries_right_for_duplicate_edits"] = grown
    info["in_scope_without_edit"] = sum(1 for q in qs if q.in_scope and not any(e in mem for e in q.edit_ids))
    log.info("%s: %d edits, %d queries (%d in scope, %d with no edit in memory)", name, len(mem), len(qs),
             sum(q.in_scope for q in qs), info["in_scope_without_edit"])
    return mem, qs, info


def main(argv: Sequence[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(DATA_ROOT))
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--nq", type=int, default=3610)
    ap.add_argument("--latency", type=int, default=200)
    ap.add_argument("--scale", type=int, default=100_000, help="edits in memory for the latency figure")
    ap.add_argument("--scale-cache", default=None, help="memory folder that keeps the --scale edits between runs")
    ap.add_argument("--model", default=None, help="the new gate's model JSON (default: the shipped gate_model.json)")
    ap.add_argument("--cross", default=None, help="also the cross-encoder gate from this model folder")
    ap.add_argument("--out", default=None, help="results root (default: eval/results)")
    ap.add_argument("--sets", default=SETS)
    a = ap.parse_args(argv)
    data = Path(a.data)
    t0 = time.perf_counter()
    sets: dict[str, Any] = {}
    timings: dict[str, float] = {}
    curves: dict[str, dict[str, list[list[float]]]] = {}
    names: list[str] = []
    for name in a.sets.split(","):
        ts = time.perf_counter()
        mem, strict, info = load_set(name, data, a.cases)
        qs = strict
        if name in SAME_SUBJECT_SAME_FACT:
            qs, info["queries_right_for_same_subject_edits"] = same_subject_ids(mem, strict)
        gates = _gates(mem, a.cross, a.model)
        names = [g.name for g in gates]
        judged = judge_many(gates, mem, qs)
        res = {g.name: {**metrics(j, qs, g.threshold), "threshold": g.threshold} for g, j in zip(gates, judged, strict=True)}
        curves[name] = {g.name: [[t, *(metrics(j, qs, t)[k] for k in ("precision", "recall"))] for t in CURVE]
                        for g, j in zip(gates, judged, strict=True) if g.name != "similarity"}
        # the whole query path as callers use it: Router.route_many with its readings (several-part questions)
        routes = Router(mem, gates[0], refresh=False).route_many([q.text for q in qs])  # gates[0]: the new gate
        rj = [(r.score if r.edit is not None else 0.0, r.edit is not None and r.edit.id in q.edit_ids)
              for r, q in zip(routes, qs, strict=True)]
        res["learned"]["router"] = {k: v for k, v in metrics(rj, qs, routes[0].threshold).items() if k != "per_kind"}
        res["learned"]["router"]["with_other_readings"] = sum(bool(r.also) or r.reading is not None for r in routes)
        if qs is not strict:  # also scored under the label that only the own record (or an exact repeat) is right
            for g, j in zip(gates, judge_many(gates, mem, strict), strict=True):
                res[g.name]["strict"] = {k: v for k, v in metrics(j, strict, g.threshold).items() if k != "per_kind"}
        sets[name] = {"info": {**info, "queries": len(qs), "in_scope": sum(q.in_scope for q in qs)}, **res}
        if name == "counterfact" and a.nq:
            nq = nq_queries(data, a.nq)
            nj = judge_many(gates, mem, nq)
            sets["nq"] = {g.name: {"false_trigger_rate": sum(s >= g.threshold for s, _ in j) / len(nq), "n": len(nq)}
                          for g, j in zip(gates, nj, strict=True)}
        timings[f"{name}_s"] = time.perf_counter() - ts
        log.info("%s done in %.0f s: %s", name, timings[f"{name}_s"],
                 {g: (round(res[g]["precision"], 3), round(res[g]["recall"], 3)) for g in res})
        mem.close()
    if a.latency and a.scale:
        big = scale_memory(a.scale, Path(a.scale_cache) if a.scale_cache else None)
        lq = [q.text for q in random.Random(1).sample(nq_queries(data, 3610), a.latency)]
        timings.update(latency(big, _gates(big, None, a.model)[:1], lq))
        timings["scale_edits"] = len(big)
        big.close()
    return _write(a, sets, timings, curves, names, time.perf_counter() - t0)


def _training(model: str | None) -> str:
    """The new gate's own dev figures (held-out subjects of the generated training pairs), with the
    old gate scored on the same dev rows, from the training summary kept in the model JSON."""
    t = _model_json(model or str(BUILTIN_MODEL)).get("trained_on") or {}
    if "dev_precision" not in t:
        return ""
    line = (f"Training (`python -m bbedit.scope.train_pairs`): {t.get('n_train_facts')} training facts "
            f"({t.get('train_pairs')} pairs), {t.get('n_dev_facts')} dev facts with their own subjects "
            f"({t.get('dev_pairs')} pairs); threshold {t['threshold']} = best dev F1; dev precision/recall "
            f"{t['dev_precision']:.3f} / {t['dev_recall']:.3f}")
    b = t.get("baseline")
    if b:
        line += (f"; the model it was compared with (`--compare {b['model']}`) on the same dev rows, at its own "
                 f"threshold {b['threshold']}: {b['dev_precision']:.3f} / {b['dev_recall']:.3f}")
    return line + " (the whole training summary: `training.json`, written by `--summary`).\n\n"


def _plot(curves: dict[str, dict[str, list[list[float]]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(curves)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    for ax, (name, by_gate) in zip(axes[0], curves.items(), strict=True):
        for g, pts in by_gate.items():
            ax.plot([p[2] for p in pts], [p[1] for p in pts], marker=".", label=LABEL.get(g, g))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("recall")
        ax.set_ylim(0.4, 1.01)
        ax.set_xlim(0.4, 1.01)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("precision")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)


def _write(a: argparse.Namespace, sets: dict[str, Any], timings: dict[str, float],
           curves: dict[str, dict[str, list[list[float]]]], names: list[str], wall: float) -> Path:
    headline: dict[str, float] = {}
    for name, r in sets.items():
        if name == "nq":
            continue
        headline[f"{name}_precision"] = r["learned"]["precision"]
        headline[f"{name}_recall"] = r["learned"]["recall"]
        headline[f"{name}_router_precision"] = r["learned"]["router"]["precision"]
        headline[f"{name}_router_recall"] = r["learned"]["router"]["recall"]
        for g in names[1:]:
            headline[f"{name}_{g}_precision"] = r[g]["precision"]
            headline[f"{name}_{g}_recall"] = r[g]["recall"]
    if "nq" in sets:
        headline["nq_false_trigger_rate"] = sets["nq"]["learned"]["false_trigger_rate"]
        for g in names[1:]:
            headline[f"nq_false_trigger_rate_{g}"] = sets["nq"][g]["false_trigger_rate"]
    if "route_p50_ms_learned" in timings:
        headline["route_p50_ms_100k"] = timings["route_p50_ms_learned"]
        headline["encode_p50_ms"] = timings["encode_p50_ms"]
        headline["scale_edits"] = timings["scale_edits"]
    headline["wall_s"] = wall
    rows = []
    for name, r in sets.items():
        if name != "nq":
            i = r["info"]
            rows.append([name, i["edits"], i["queries"], *(f"{r[g]['precision']:.3f} / {r[g]['recall']:.3f}" for g in names)])
    kind_rows = []
    for name, r in sets.items():
        if name != "nq":
            for k in r["learned"]["per_kind"]:
                kind_rows.append([name, k, r["learned"]["per_kind"][k]["n"],
                                  *(f"{r[g]['per_kind'][k]['handled_right']:.3f}" for g in names)])
    extra = ""
    if "nq" in sets:
        extra += (f"NQ-open false triggers ({sets['nq']['learned']['n']} questions, CounterFact's "
                  f"{sets['counterfact']['info']['edits']} edits in memory): "
                  + ", ".join(f"{LABEL.get(g, g)} {sets['nq'][g]['false_trigger_rate']:.4f}" for g in names) + ".\n\n")
    if "route_p50_ms_learned" in timings:
        extra += (f"Routing p50 per query (retrieval + new gate, {int(timings['scale_edits']):,} edits in memory, one "
                  f"query at a time, {os.cpu_count()} cores): {timings['route_p50_ms_learned']:.1f} ms; one bare MiniLM encode "
                  f"in the same run: {timings['encode_p50_ms']:.1f} ms"
                  + (f" (on {int(timings['encode_threads'])} BLAS thread(s): a second one only while no other process "
                     f"keeps a core busy, `bbedit/memory/bert.py`)" if "encode_threads" in timings else "")
                  + ".\n\n")
    router_rows = [[name, f"{r['learned']['precision']:.3f} / {r['learned']['recall']:.3f}",
                    f"{r['learned']['router']['precision']:.3f} / {r['learned']['router']['recall']:.3f}",
                    r["learned"]["router"]["with_other_readings"]]
                   for name, r in sets.items() if name != "nq"]
    extra += ("The same queries through the whole query path (`Router.route_many`, what `EditedModel.route` and "
              "`bbedit gate eval` call), which also routes the parts of a several-part question:\n\n"
              + md_table(["set", "new gate alone", "through the router", "queries with other readings in scope"],
                         router_rows) + "\n\n")
    strict_rows = [[name, r["info"]["queries_right_for_same_subject_edits"],
                    *(f"{r[g]['strict']['precision']:.3f} / {r[g]['strict']['recall']:.3f}" for g in names)]
                   for name, r in sets.items() if name != "nq" and "strict" in r["learned"]]
    if strict_rows:
        extra += ("zsRE and KnowEdit ZsRE store one fact under several records of the same subject (in other words, "
                  "often with conflicting targets), so above any edit of the query's subject counts as right. "
                  "Under the strict label (only the query's own record, or an exact repeat of it, is right):\n\n"
                  + md_table(["set", "queries that gained ids", *(LABEL.get(g, g) for g in names)], strict_rows)
                  + "\n\n")
    goal_rows = [[name, "yes" if r["learned"]["precision"] >= 0.98 and r["learned"]["recall"] >= 0.95 else "no",
                  "yes" if all(r["learned"][m] > r["similarity"][m] for m in ("precision", "recall")) else "no"]
                 for name, r in sets.items() if name != "nq" and "similarity" in r]
    goal = md_table(["set", "P >= 0.98 and R >= 0.95", "above cosine in both P and R"], goal_rows) + "\n\n"
    if "nq" in sets:
        goal += f"NQ false triggers <= 1%: {'yes' if sets['nq']['learned']['false_trigger_rate'] <= 0.01 else 'no'}. "
    if "route_p50_ms_learned" in timings:
        goal += f"Routing p50 <= 10 ms at {int(timings['scale_edits']):,} edits: " \
                f"{'yes' if timings['route_p50_ms_learned'] <= 10 else 'no'}."
    trained = _training(a.model)
    thr = {g: sets[next(s for s in sets if s != "nq")][g]["threshold"] for g in names}
    curve_rows = [[name, LABEL.get(g, g), *[f"{p:.3f}/{r:.3f}" for _, p, r in pts]]
                  for name, by_gate in curves.items() for g, pts in by_gate.items()]
    out_root = Path(a.out) if a.out else None
    report = f"""# Scope gate on the shared evaluation sets: new gate, old gate, cosine baseline

Evaluation only: nothing here fed training or a threshold. Thresholds (fixed, the same on every set):
{", ".join(f"{LABEL.get(g, g)} {t:.3f}" for g, t in thr.items())}. The new gate is the shipped learned gate
(scorer and relation projection fitted on multi-relation pairs from the training files,
`python -m bbedit.scope.train_pairs`); the old gate is the learned gate fitted on counterfact-train
alone; the cosine baseline accepts the nearest edit when its cosine is at least 0.80. Every set keeps all its
edits in memory; queries come from a seeded sample of {a.cases} cases per set (PostEdit: all queries of
{a.cases} sampled edits). A query counts as a true positive only when the gate accepts a right edit.
In scope: CounterFact prompt/rephrase (a locality prompt whose subject has an edit of the same relation
is in scope of that edit), zsRE src/rephrase, KnowEdit prompt/rephrase and the Relation_Specificity
prompts that ask the edited fact (their answer is the edit's old answer: `Relation_Specificity_same_fact`,
as the dataset loader reads them), PostEdit naive/paraphrase, MQuAKE single hops of edited facts. Out of
scope: CounterFact locality, zsRE loc (NQ), KnowEdit's other Relation_Specificity prompts, PostEdit
neighbor, MQuAKE single hops no edit rewrote.

Precision / recall:

{md_table(["set", "edits", "queries", *(LABEL.get(g, g) for g in names)], rows)}

{extra}Against the gate issue's goal (new gate):

{goal}

{trained}Per kind (share handled right: in-scope kinds accepted with a right edit, out-of-scope kinds rejected):

{md_table(["set", "kind", "n", *(LABEL.get(g, g) for g in names)], kind_rows)}

Precision/recall against the threshold (`curves.png`):

{md_table(["set", "gate", *(str(t) for t in CURVE)], curve_rows)}

Wall time: {wall:.0f} s.
"""
    path = write_results("scope", headline, {"sets": sets, "timings": timings, "curves": curves, "args": vars(a)},
                         report, "PYTHONPATH=. python eval/scope.py --scale-cache eval/.cache/scale-100k"
                         + (f" --cases {a.cases}" if a.cases != 500 else "") + " (make eval-scope)",
                         root=out_root)
    if curves:
        _plot(curves, path)
    return path


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    print(main())
