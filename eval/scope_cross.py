"""Scope gates side by side on the evaluation sets of ../shared/data (evaluation only):
the learned gate (today's default), the plain cosine baseline (top-1 MiniLM cosine >= 0.80) and
the cross-encoder gate, on the same queries, each at its own fixed threshold.

    PYTHONPATH=. python eval/scope_cross.py [--cases 500] [--nq 1500] [--latency 200]

Each set keeps all its edits in memory; queries come from a seeded sample of ``--cases`` cases
(all PostEdit queries). A query is a true positive when the gate accepts a right edit.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bbedit.evaluation.cases import load_dataset
from bbedit.evaluation.report import DATA_ROOT, RESULTS_ROOT, md_table, write_results
from bbedit.evaluation.scope_bench import judge_many, knowedit_queries, metrics
from bbedit.memory.memory import EditMemory
from bbedit.routing import Router
from bbedit.scope.gate import CrossEncoderGate, GateBase, LearnedGate, SimilarityGate
from bbedit.scope.pairs import norm
from bbedit.scope.train import LabelledQuery, labelled_queries
from bbedit.types import Edit

log = logging.getLogger("scope_cross")
COSINE_THRESHOLD = 0.80
GATES = ("learned", "cosine", "cross")


def _sample(n_total: int, n: int, seed: int = 0) -> list[int]:
    idx = list(range(n_total))
    return sorted(random.Random(seed).sample(idx, n)) if n < n_total else idx


def _memory(edits: Sequence[Edit]) -> EditMemory:
    m = EditMemory(None)
    m.add_many(list(edits), supersede=False)
    return m


def _gates(memory: EditMemory, model: str | None) -> list[GateBase]:
    return [LearnedGate(memory), SimilarityGate(memory, COSINE_THRESHOLD), CrossEncoderGate(memory, model=model)]


def counterfact(data: Path, n: int) -> tuple[EditMemory, list[LabelledQuery], dict[str, Any]]:
    cases = json.loads((data / "counterfact" / "counterfact-edit.json").read_text())
    edits = [Edit(subject=c["subject"], prompt=c["prompt"], target_new=c["target_new"], target_old=c["ground_truth"],
                  id=f"cf-{c['case_id']}") for c in cases]
    qs = labelled_queries(cases, [e.id for e in edits], synthetic=0.0)
    keep = set(_sample(len(cases), n))
    qs = [q for q in qs if q.case in keep]
    return _memory(edits), qs, {"cases_sampled": len(keep), "edits": len(edits),
                                "locality_in_scope_of_other_edit": sum(q.kind == "locality" and q.in_scope for q in qs)}


def from_dataset(path: Path, n: int | None, kinds: dict[str, bool]) -> tuple[EditMemory, list[LabelledQuery], dict[str, Any]]:
    ds = load_dataset(path, on_error="skip")  # PostEdit's zsRE edit set has records with empty targets
    edits = ds.edits()
    keep = set(_sample(len(ds.cases), n)) if n is not None else set(range(len(ds.cases)))
    qs = []
    for i, c in enumerate(ds.cases):
        if i not in keep:
            continue
        for p in c.probes:
            if p.kind in kinds:
                ids = frozenset(e.id for e in c.edits) if kinds[p.kind] else frozenset()
                qs.append(LabelledQuery(p.text, ids, p.label or p.kind, i))
    return _memory(edits), qs, {"cases_sampled": len(keep), "edits": len(edits)}


def knowedit(data: Path, n: int) -> tuple[EditMemory, list[LabelledQuery], dict[str, Any]]:
    cases = json.loads((data / "knowedit" / "ZsRE-test-all.json").read_text())
    edits = [Edit(subject=c["subject"], prompt=c["prompt"], target_new=c["target_new"], id=f"ke-{i}")
             for i, c in enumerate(cases)]
    keep = set(_sample(len(cases), n))
    qs = [q for q in knowedit_queries(cases, [e.id for e in edits]) if q.case in keep]
    return _memory(edits), qs, {"cases_sampled": len(keep), "edits": len(edits)}


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
    return out


def main(argv: Sequence[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(DATA_ROOT))
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--nq", type=int, default=1500)
    ap.add_argument("--latency", type=int, default=200)
    ap.add_argument("--model", default=None, help="cross-encoder folder (default: the shipped one)")
    ap.add_argument("--out", default=None, help="results root (default: eval/results)")
    ap.add_argument("--resume", action="store_true", help="keep the sets already in results.json")
    ap.add_argument("--sets", default="counterfact,zsre,knowedit,postedit_counterfact,postedit_zsre,mquake")
    a = ap.parse_args(argv)
    data = Path(a.data)
    t0 = time.perf_counter()
    sets: dict[str, Any] = {}
    timings: dict[str, float] = {}
    cross_curve: dict[str, list[list[float]]] = {}
    old = (Path(a.out) if a.out else RESULTS_ROOT) / "scope-cross" / "results.json"
    if a.resume and old.exists():
        prev = json.loads(old.read_text())
        sets.update(prev["sets"])
        timings.update(prev["timings"])
        cross_curve.update(prev["cross_curve"])
    def finish() -> Path:
        headline: dict[str, float] = {}
        for name, r in sets.items():
            if name == "nq":
                continue
            headline[f"{name}_precision"] = r["cross"]["precision"]
            headline[f"{name}_recall"] = r["cross"]["recall"]
            for g in ("learned", "cosine"):
                key = g if g != "cosine" else "similarity"
                headline[f"{name}_{g}_precision"] = r[key]["precision"]
                headline[f"{name}_{g}_recall"] = r[key]["recall"]
        if "nq" in sets:
            headline["nq_false_trigger_rate"] = sets["nq"]["cross"]["false_trigger_rate"]
            headline["nq_false_trigger_rate_learned"] = sets["nq"]["learned"]["false_trigger_rate"]
            headline["nq_false_trigger_rate_cosine"] = sets["nq"]["similarity"]["false_trigger_rate"]
            headline["route_p50_ms_10k"] = timings["route_p50_ms_cross"]
            headline["route_p50_ms_10k_learned"] = timings["route_p50_ms_learned"]
            headline["encode_p50_ms"] = timings["encode_p50_ms"]
        wall = time.perf_counter() - t0
        headline["wall_s"] = wall
        rows = []
        for name, r in sets.items():
            if name == "nq":
                continue
            i = r["info"]
            rows.append([name, i["edits"], i["queries"], *(f"{r[g]['precision']:.3f} / {r[g]['recall']:.3f}"
                                                             for g in ("learned", "similarity", "cross"))])
        kind_rows = []
        for name, r in sets.items():
            if name == "nq":
                continue
            for k in r["cross"]["per_kind"]:
                kind_rows.append([name, k, r["cross"]["per_kind"][k]["n"],
                                  *(f"{r[g]['per_kind'][k]['handled_right']:.3f}" for g in ("learned", "similarity", "cross"))])
        nq_row = ""
        if "nq" in sets:
            nq_row = (f"NQ-open false triggers ({sets['nq']['cross']['n']} questions, CounterFact's "
                      f"{sets['counterfact']['info']['edits']} edits in memory): learned "
                      f"{sets['nq']['learned']['false_trigger_rate']:.3f}, cosine "
                      f"{sets['nq']['similarity']['false_trigger_rate']:.3f}, cross "
                      f"{sets['nq']['cross']['false_trigger_rate']:.3f}.\n\n"
                      f"Routing p50 per query (retrieval + gate, 10k edits, one query at a time, 2 shared cores): "
                      f"cross {timings['route_p50_ms_cross']:.1f} ms, learned {timings['route_p50_ms_learned']:.1f} ms, "
                      f"cosine {timings['route_p50_ms_similarity']:.1f} ms; one bare MiniLM encode "
                      f"{timings['encode_p50_ms']:.1f} ms (same run).")
        thr = {g: sets[next(iter(sets))][g]["threshold"] for g in ("learned", "similarity", "cross")}
        curve_rows = [[name, *[f"{p:.3f}/{r:.3f}" for _, p, r in c]] for name, c in cross_curve.items()]
        report = f"""# Scope gates on the shared evaluation sets: learned vs cosine vs cross-encoder

Evaluation only: nothing here fed training or a threshold. Thresholds: learned {thr['learned']:.3f} (its
shipped one), cosine {thr['similarity']:.2f} (fixed), cross {thr['cross']:.3f} (chosen on the training-derived
dev split). Every set keeps all its edits in memory; queries come from a seeded sample of {a.cases} cases per
set (PostEdit: all queries of {a.cases} sampled edits). A query counts as a true positive only when the gate accepts a right edit.
In scope: CounterFact prompt/rephrase (a locality prompt whose subject has an edit of the same relation is
in scope of that edit), zsRE src/rephrase, KnowEdit prompt/rephrase, PostEdit naive/paraphrase, MQuAKE
single hops of edited facts. Out of scope: CounterFact locality, zsRE loc (NQ), KnowEdit
Relation_Specificity, PostEdit neighbor, MQuAKE single hops no edit rewrote.

Precision / recall:

{md_table(["set", "edits", "queries", "learned", "cosine 0.80", "cross"], rows)}

{nq_row}

Per kind (share handled right: in-scope kinds accepted with a right edit, out-of-scope kinds rejected):

{md_table(["set", "kind", "n", "learned", "cosine", "cross"], kind_rows)}

Cross gate precision/recall against its threshold:

{md_table(["set", "0.05", "0.1", "0.2", "0.3", "0.5", "0.7", "0.9", "0.95"], curve_rows)}

Wall time: {wall:.0f} s.
"""
        return write_results("scope-cross", headline, {"sets": sets, "timings": timings, "cross_curve": cross_curve,
                                                       "args": vars(a)}, report,
                             f"PYTHONPATH=. python eval/scope_cross.py --cases {a.cases} --nq {a.nq}",
                             root=Path(a.out) if a.out else None)


    for name in a.sets.split(","):
        ts = time.perf_counter()
        if name == "counterfact":
            mem, qs, info = counterfact(data, a.cases)
        elif name == "zsre":
            mem, qs, info = from_dataset(data / "zsre" / "zsre_mend_eval_portability_gpt4.json", a.cases,
                                         {"reliability": True, "generalization": True, "locality": False})
        elif name == "knowedit":
            mem, qs, info = knowedit(data, a.cases)
        elif name.startswith("postedit_"):
            mem, qs, info = from_dataset(data / "postedit" / name.split("_", 1)[1] / "query_data.json", a.cases,
                                         {"reliability": True, "generalization": True, "locality": False})
        elif name == "mquake":
            mem, qs, info = mquake(data, a.cases)
        else:
            raise SystemExit(f"unknown set {name}")
        gates = _gates(mem, a.model)
        qs, grown = same_fact_ids(mem, qs)
        info["queries_right_for_duplicate_edits"] = grown
        missing = sum(1 for q in qs if q.in_scope and not any(e in mem for e in q.edit_ids))
        log.info("%s: %d edits, %d queries (%d in scope, %d with no edit in memory)", name, len(mem), len(qs),
                 sum(q.in_scope for q in qs), missing)
        judged = judge_many(gates, mem, qs)
        res = {g.name: {**metrics(j, qs, g.threshold), "threshold": g.threshold} for g, j in zip(gates, judged, strict=True)}
        cross_j = judged[GATES.index("cross")]
        cross_curve[name] = [[t, metrics(cross_j, qs, t)["precision"], metrics(cross_j, qs, t)["recall"]]
                             for t in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95)]
        sets[name] = {"info": {**info, "queries": len(qs), "in_scope": sum(q.in_scope for q in qs),
                               "in_scope_without_edit": missing}, **res}
        if name == "counterfact":
            nq = nq_queries(data, a.nq)
            nj = judge_many(gates, mem, nq)
            sets["nq"] = {g.name: {"false_trigger_rate": sum(s >= g.threshold for s, _ in j) / len(nq), "n": len(nq)}
                          for g, j in zip(gates, nj, strict=True)}
            lq = [q.text for q in random.Random(1).sample(qs + nq, min(a.latency, len(qs) + len(nq)))]
            timings.update(latency(mem, gates, lq))
        timings[f"{name}_s"] = time.perf_counter() - ts
        log.info("%s done in %.0f s: %s", name, timings[f"{name}_s"],
                 {g: (round(res[g]["precision"], 3), round(res[g]["recall"], 3)) for g in res})
        finish()  # results so far, in case a later set fails
    return finish()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    print(main())
