"""``bbedit gate eval``: how the scope gate routes one dataset's probes, beside the cosine baseline.

Every edit of the dataset (and of ``distractors``) goes into one in-process memory; each probe is
routed through a :class:`~bbedit.routing.Router` with the gate users get (the built-in one, or the
one saved with ``--memory``) and with the plain baseline (top-1 MiniLM cosine at one fixed
threshold, 0.80). In scope: a case's ``reliability`` and ``generalization`` probes, of that case's
edits, and locality probes that still ask the edited fact (KnowEdit's ``Forgetfulness``,
:attr:`~bbedit.evaluation.cases.Probe.should_route`); out of scope: its other ``locality`` probes and
every question of ``nq`` (one per line, or JSON lines / a JSON list with a ``question`` field). Portability and multi-hop probes ask for
reasoning over an edit rather than the edit itself and are not scored here.

A probe counts as a true positive only when the gate accepts one of its own edits. Per probe kind
(the dataset's own label, e.g. KnowEdit's ``Relation_Specificity``): how many were handled right,
and, in scope, how often the best candidate was one of its own edits whatever its score
(``own_edit_top1``: retrieval and ranking, before the threshold); out of scope, the share that
triggered an edit (``false_trigger``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bbedit.errors import EditFileError
from bbedit.evaluation.cases import Dataset, load_dataset
from bbedit.evaluation.report import md_table, write_results
from bbedit.evaluation.scope_bench import metrics
from bbedit.memory.memory import EditMemory
from bbedit.routing import Route, Router
from bbedit.scope.gate import GateBase, SimilarityGate, load_gate
from bbedit.scope.train import LabelledQuery as Probe
from bbedit.types import Edit

log = logging.getLogger(__name__)

COSINE_THRESHOLD = 0.80
SCORED_KINDS = ("reliability", "generalization", "locality")


def _fact_key(e: Edit) -> tuple[str, str]:
    return " ".join(e.subject.lower().split()), " ".join(e.prompt.lower().rstrip("?. ").split())


def dataset_probes(ds: Dataset) -> list[Probe]:
    """The scored probes of every case, labelled with the ids of the edits they are about: the case's
    own, and any other edit of the dataset that repeats one of them (same subject and prompt)."""
    repeats: dict[tuple[str, str], set[str]] = {}
    for e in ds.edits():
        repeats.setdefault(_fact_key(e), set()).add(e.id)
    out = []
    for i, c in enumerate(ds.cases):
        ids = frozenset(x for e in c.edits for x in repeats.get(_fact_key(e), {e.id}))
        for p in c.probes:
            if p.kind in SCORED_KINDS:
                out.append(Probe(p.text, ids if p.should_route else frozenset(), p.label or p.kind, i))
    return out


def read_questions(path: str | Path) -> list[str]:
    """Questions from a text file (one per line), JSON lines or a JSON list (strings or objects with
    ``question``). Raises :class:`EditFileError` for an unreadable file or one holding no question."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as e:
        raise EditFileError(str(p), f"cannot read the questions: {e}") from e

    def one(item: Any) -> str:
        if isinstance(item, str):
            return item
        if isinstance(item, dict) and isinstance(item.get("question"), str):
            return str(item["question"])
        raise EditFileError(str(p), f"a question must be a string or an object with 'question', got {str(item)[:80]}")

    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except ValueError as e:
            raise EditFileError(str(p), f"broken JSON list: {e}") from e
        qs = [one(i) for i in items]
    else:
        qs = []
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                try:
                    qs.append(one(json.loads(line)))
                except ValueError as e:
                    raise EditFileError(str(p), f"broken JSON line: {e}") from e
            else:
                qs.append(line)
    qs = [q.strip() for q in qs if q.strip()]
    if not qs:
        raise EditFileError(str(p), "the file holds no questions")
    return qs


def _score(routes: Sequence[Route], probes: Sequence[Probe], subject_of: dict[str, str] | None = None
           ) -> dict[str, Any]:
    """Precision, recall and per-kind figures; ``subject_of`` (edit id -> subject) lets an in-scope
    probe applied with another edit of its own subject be counted apart."""
    subject_of = subject_of or {}
    tp = fp = 0
    n: Counter[str] = Counter()
    right: Counter[str] = Counter()
    top1: Counter[str] = Counter()
    same_subject: Counter[str] = Counter()  # applied another edit of the probe's own subject
    for r, p in zip(routes, probes, strict=True):
        n[p.kind] += 1
        ok = r.edit is not None and r.edit.id in p.edit_ids
        tp += ok
        fp += r.edit is not None and not ok
        if p.in_scope:
            right[p.kind] += ok
            top1[p.kind] += bool(r.candidates) and r.candidates[0][0].id in p.edit_ids
            if r.edit is not None and not ok:
                own = {subject_of[i] for i in p.edit_ids if i in subject_of}
                same_subject[p.kind] += _fact_key(r.edit)[0] in own
        else:
            right[p.kind] += r.edit is None
    n_pos = sum(p.in_scope for p in probes)
    scope = {p.kind: p.in_scope for p in probes}
    per_kind = {}
    for k in n:
        row: dict[str, Any] = {"n": n[k], "in_scope": scope[k], "handled_right": right[k] / n[k]}
        if scope[k]:
            row["own_edit_top1"] = top1[k] / n[k]
            row["other_edit_same_subject"] = same_subject[k] / n[k]
        else:
            row["false_trigger"] = 1 - right[k] / n[k]
        per_kind[k] = row
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(n_pos, 1), "n_in_scope": n_pos,
            "n_out_of_scope": len(probes) - n_pos, "per_kind": per_kind}


CURVE = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def curve(routes: Sequence[Route], probes: Sequence[Probe], thresholds: Sequence[float] = CURVE
          ) -> list[dict[str, float]]:
    """Precision and recall had the gate used each of ``thresholds`` (its best candidate applied when
    its score reaches it), from the same routing decisions."""
    judged = [(r.candidates[0][1], r.candidates[0][0].id in p.edit_ids) if r.candidates else (float("-inf"), False)
              for r, p in zip(routes, probes, strict=True)]
    return [{"threshold": t, **{k: m[k] for k in ("precision", "recall")}}
            for t in thresholds for m in [metrics(judged, probes, t)]]


def gate_eval(path: str | Path, *, gate_from: str | Path | None = None, distractors: str | Path | None = None,
              nq: str | Path | None = None, n: int | None = None, out_root: str | Path,
              command: str = "bbedit gate eval") -> Path:
    """Route ``path``'s probes (the first ``n`` cases) with the gate saved in the folder ``gate_from``
    (its ``gate.json``; default: the built-in gate) and the cosine baseline, both over one memory of
    the dataset's edits; write ``results.json`` and ``report.md`` under ``out_root/<dataset name>``
    and return that folder. Raises what :func:`load_dataset` and :func:`read_questions` raise."""
    t0 = time.perf_counter()
    ds = load_dataset(path, n=n, on_error="skip")
    edits = ds.edits()
    extra: list[Edit] = []
    if distractors is not None:
        extra = [e.replace(id=f"distractor:{e.id}") for e in load_dataset(distractors, on_error="skip").edits()]
    memory = EditMemory(None)
    memory.add_many(edits + extra, supersede=False)
    probes = dataset_probes(ds)
    questions = read_questions(nq) if nq is not None else []
    gate = load_gate(memory, gate_from)
    gates: dict[str, GateBase] = {"gate": gate}
    gates["cosine"] = SimilarityGate(memory, COSINE_THRESHOLD, k=gate.k)
    results: dict[str, Any] = {}
    for name, g in gates.items():
        router = Router(memory, g, refresh=False)
        t1 = time.perf_counter()
        routes = router.route_many([p.text for p in probes])
        res = _score(routes, probes, {e.id: _fact_key(e)[0] for e in edits})
        res["threshold"] = g.threshold
        res["curve"] = curve(routes, probes)
        res["kind"] = g.name
        if questions:
            res["nq_false_trigger_rate"] = sum(r.in_scope for r in router.route_many(questions)) / len(questions)
        res["route_ms_per_query"] = (time.perf_counter() - t1) * 1000 / max(len(probes) + len(questions), 1)
        results[name] = res
    headline: dict[str, float | int] = {"edits_in_memory": len(memory), "probes": len(probes)}
    for name, res in results.items():
        headline[f"{name}_precision"] = res["precision"]
        headline[f"{name}_recall"] = res["recall"]
        if "nq_false_trigger_rate" in res:
            headline[f"{name}_nq_false_trigger_rate"] = res["nq_false_trigger_rate"]
    report = _report(ds, results, len(memory), len(extra), len(questions))
    details = {"dataset": str(path), "format": ds.format, "cases": len(ds.cases), "skipped_records": len(ds.skipped),
               "distractors": str(distractors) if distractors else None, "distractor_edits": len(extra),
               "nq": str(nq) if nq else None, "nq_questions": len(questions), "gates": results,
               "wall_seconds": time.perf_counter() - t0}
    return write_results(ds.name, headline, details, report, command, Path(out_root))


def _report(ds: Dataset, results: dict[str, Any], n_edits: int, n_extra: int, n_nq: int) -> str:
    g, c = results["gate"], results["cosine"]
    lines = [f"# Scope gate on {ds.name} ({ds.format})", "",
             f"{len(ds.cases)} cases, {n_edits} edits in memory ({n_extra} distractors). Gate `{g['kind']}` at its "
             f"threshold {g['threshold']:.3f}; baseline: top-1 cosine at {c['threshold']:.2f}. A probe is a true "
             "positive only when an edit of its own case (or an edit repeating it: same subject and prompt) is applied.", "",
             md_table(["", "gate", "cosine"], [
                 ["precision", f"{g['precision']:.3f}", f"{c['precision']:.3f}"],
                 ["recall", f"{g['recall']:.3f}", f"{c['recall']:.3f}"],
                 *([["NQ false triggers", f"{g['nq_false_trigger_rate']:.3f}", f"{c['nq_false_trigger_rate']:.3f}"]]
                   if n_nq else []),
                 ["routing ms/query", f"{g['route_ms_per_query']:.1f}", f"{c['route_ms_per_query']:.1f}"]]), "",
             "Per probe kind (in scope: share applied with its own edit, share whose best candidate is its own "
             "edit, and share applied with another edit of the same subject; out of scope: share left alone, and "
             "share that triggered an edit):", ""]
    rows = []
    for kind, gk in g["per_kind"].items():
        ck = c["per_kind"][kind]
        keys = ("own_edit_top1", "other_edit_same_subject") if gk["in_scope"] else ("false_trigger",)
        rows.append([kind, "in" if gk["in_scope"] else "out", str(gk["n"]), f"{gk['handled_right']:.3f}",
                     f"{ck['handled_right']:.3f}", "; ".join(f"{k} {gk[k]:.3f} / {ck[k]:.3f}" for k in keys)])
    lines.append(md_table(["kind", "scope", "n", "gate right", "cosine right", "gate / cosine"], rows))
    lines += ["", "Precision / recall against the threshold (the same routing decisions):", "",
              md_table(["threshold", "gate", "cosine"],
                       [[f"{a['threshold']:.2f}", f"{a['precision']:.3f} / {a['recall']:.3f}",
                         f"{b['precision']:.3f} / {b['recall']:.3f}"] for a, b in zip(g["curve"], c["curve"], strict=True)])]
    return "\n".join(lines) + "\n"
