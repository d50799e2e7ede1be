"""The ``sequential`` task: grow the memory edit by edit and measure a fixed probe set at each size.

Edits are added in file order to one memory (as a user would over time); at each size in
``options.sizes`` the same probes are asked:

- in scope: the prompt and paraphrase of the first ``options.probe_edits`` edits; a probe counts
  as in scope only once its edit is in memory (before that it must pass through untouched);
- out of scope: ``options.outside`` locality prompts from cases whose edits never enter memory
  (from ``options.outside_path``, else the file's last cases, which are then never added).

Measured per size: the gate's routing (precision/recall/F1, no model call), generation-protocol
reliability and generalization of the probes in memory, locality (answer unchanged vs. the
unedited model) of the out-of-scope probes, and the time to add the edits. Also, with no model
call, the gate's recall on a sample of every edit in memory at that size.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bbedit.evaluation import metrics as M
from bbedit.evaluation.cases import load_dataset
from bbedit.evaluation.harness import RunContext, flat_counterfact, make_editor, neighbours_in_scope
from bbedit.evaluation.report import md_table
from bbedit.evaluation.systems import Systems, ask, route
from bbedit.evaluation.tasks import FunctionTask
from bbedit.routing import Route


def run(ctx: RunContext) -> dict[str, Any]:
    from bbedit.memory.memory import EditMemory

    cfg, opts = ctx.cfg, ctx.cfg.options
    t0 = time.perf_counter()
    sizes = sorted(int(s) for s in opts.get("sizes", [10, 100, 1000, 10000]))
    n_probe, n_out, n_sample = int(opts.get("probe_edits", 50)), int(opts.get("outside", 300)), int(opts.get("sample", 500))
    data = load_dataset(ctx.data_path(cfg.dataset["path"]), cfg.dataset.get("format", "auto"))
    cases = data.cases
    if opts.get("outside_path"):  # out-of-scope probes from another file: the whole file can enter memory
        outside_cases = load_dataset(ctx.data_path(opts["outside_path"]), n=n_out).cases
    else:  # the file's last cases, never added
        outside_cases = cases[-n_out:]
        cases = cases[:-n_out]
    sizes = [s for s in sizes if s <= len(cases)]
    probes = [(c, p) for c in cases[:n_probe] for p in c.probes if p.kind in ("reliability", "generalization")]
    probes += [(c, p) for c in outside_cases for p in c.of_kind("locality")]
    queries = [p.text for _, p in probes]
    model, backend, editor = ctx.model(), ctx.backend(), make_editor(cfg)
    memory = EditMemory(None)
    rng = random.Random(0)
    rows: list[dict[str, float]] = []
    added = 0
    base_answers = ask(Systems(memory).model("none", backend, editor), backend, queries,
                       [Route.passthrough(q) for q in queries], cfg.workers, f"{cfg.suite}: unedited")
    scope = _shared_scope(ctx, cases, outside_cases)
    for size in sizes:
        batch = [c.edits[0] for c in cases[added:size]]
        ta = time.perf_counter()
        memory.add_many(batch, supersede=False, progress=False)
        add_s = time.perf_counter() - ta
        added = size
        bbedit = Systems(memory).model("bbedit", backend, editor)  # the gate as saved for this memory
        in_mem = {c.id for c in cases[:size]}
        routes, route_ms = route(bbedit, queries)
        answers = ask(bbedit, backend, queries, routes, cfg.workers, f"{cfg.suite}: {size} edits")
        res: dict[str, list[float]] = {"reliability": [], "generalization": [], "locality": [],
                                       "locality_true_neighbours": []}
        other = scope(size) if scope else {}
        tp = fp = pos = fp_aware = 0
        for (c, p), rt, a, b in zip(probes, routes, answers, base_answers, strict=True):
            in_scope = c.id in in_mem and p.kind != "locality"
            right = rt.edit is not None and rt.edit.id == c.edits[0].id
            pos += in_scope
            tp += in_scope and right
            wrong = rt.edit is not None and not (in_scope and right)
            fp += wrong
            fp_aware += wrong and not (p.kind == "locality" and rt.edit is not None and rt.edit.id in other.get(p.text, ()))
            if in_scope:
                e0 = c.edits[0]
                res[p.kind].append(float(M.edit_success(a.text, p.answers, p.old_answers, (e0.subject, *e0.aliases))))
            else:  # out of scope at this size (incl. probe edits not yet added): must pass through
                res["locality"].append(float(M.unchanged(a.text, b.text)))
                if p.text not in other:
                    res["locality_true_neighbours"].append(float(M.unchanged(a.text, b.text)))
        prec, rec, f1 = M.prf(tp, fp, pos - tp)
        # gate recall over a sample of everything in memory (no model call)
        sample = rng.sample(cases[:size], min(n_sample, size))
        sq = [(c, p.text) for c in sample for p in c.probes if p.kind in ("reliability", "generalization")]
        sroutes, _ = route(bbedit, [q for _, q in sq])
        srec = sum(1 for (c, _), r in zip(sq, sroutes, strict=True) if r.edit is not None and r.edit.id == c.edits[0].id)
        rows.append({"size": size, "reliability": _mean(res["reliability"]), "generalization": _mean(res["generalization"]),
                     "locality": _mean(res["locality"]), "gate_precision": prec,
                     "locality_true_neighbours": _mean(res["locality_true_neighbours"]),
                     "gate_precision_scope_aware": tp / (tp + fp_aware) if tp + fp_aware else 0.0,
                     "n_neighbours_in_scope_of_an_edit": sum(1 for _, p in probes if p.text in other), "gate_recall": rec, "gate_f1": f1,
                     "gate_recall_sample": srec / max(len(sq), 1), "routing_ms": route_ms,
                     "add_edits_per_s": len(batch) / add_s if add_s > 0 else float("nan"),
                     "n_in_scope_probes": pos, "n_out_of_scope_probes": len(probes) - pos})
    wall = time.perf_counter() - t0
    last, first = rows[-1], rows[0]
    headline: dict[str, float | int] = {"n_cases": len(cases[:n_probe]) + len(outside_cases), "n_probes": len(probes),
                                        "max_edits": last["size"], "wall_s": round(wall, 1),
                                        "model_calls": model.calls, "model_calls_cached": model.hits}
    for r in rows:
        for k in ("reliability", "generalization", "locality", "locality_true_neighbours", "gate_precision",
                  "gate_precision_scope_aware", "gate_recall", "gate_recall_sample"):
            if r[k] == r[k]:  # not nan
                headline[f"{k}_at_{r['size']}"] = r[k]
    headline["reliability_drop_first_to_last"] = first["reliability"] - last["reliability"]
    headline["locality_drop_first_to_last"] = first["locality"] - last["locality"]
    return {"headline": headline, "rows": rows, "sizes": sizes}


def _shared_scope(ctx: RunContext, cases: list[Any], outside: list[Any]) -> Any:
    """For flattened CounterFact files: a function ``size -> {probe text: ids of edits in memory it is in
    scope of}`` (:func:`~bbedit.evaluation.harness.neighbours_in_scope`), so routing it there counts as right."""
    opts = ctx.cfg.options
    raw = flat_counterfact(ctx.data_path(ctx.cfg.dataset["path"]))
    if raw is None:
        return None
    if opts.get("outside_path"):
        out_raw = flat_counterfact(ctx.data_path(opts["outside_path"]))
        if out_raw is None:
            return None
        out_raw = out_raw[:len(outside)]
    else:
        out_raw = raw[-len(outside):]
    ids = [c.edits[0].id for c in cases]
    texts = {p.text for c in outside for p in c.of_kind("locality")}
    return lambda size: neighbours_in_scope(raw[:size], ids[:size], texts, out_raw)


def _mean(v: list[float]) -> float:
    return sum(v) / len(v) if v else float("nan")


def report(cfg: Any, out: Mapping[str, Any], folder: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, h = out["rows"], out["headline"]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for k, style in (("reliability", "o-"), ("generalization", "s-"), ("locality", "^-"),
                     ("locality_true_neighbours", "v-"), ("gate_precision_scope_aware", "x--"),
                     ("gate_recall_sample", "d--")):
        ax.plot([r["size"] for r in rows], [r[k] for r in rows], style, label=k)
    ax.set_xscale("log")
    ax.set_xlabel("edits in memory")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{cfg.suite}: fixed probes as the memory grows", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / "curve.png", dpi=110)
    plt.close(fig)
    cols = ["size", "reliability", "generalization", "locality", "locality_true_neighbours", "gate_precision",
            "gate_precision_scope_aware", "gate_recall", "gate_recall_sample", "routing_ms", "add_edits_per_s"]
    return "\n".join([
        f"# {cfg.suite}", "", cfg.description.strip(), "",
        f"{h['n_probes']} fixed probes; memory grown to {h['max_edits']} edits; wall time {h['wall_s']:.0f} s; "
        "generation protocol.", "",
        md_table(cols, [[r[c] for c in cols] for r in rows]), "",
        "![curve](curve.png)", "",
        "reliability/generalization: probes whose edit is in memory at that size; locality: probes that must pass "
        "through (out-of-scope queries, and probe edits not yet added), answer unchanged vs. the unedited model. "
        "locality_true_neighbours and gate_precision_scope_aware leave out / count as right the neighbourhood "
        "prompts that name a subject with an edit of the same relation in memory (n_neighbours_in_scope_of_an_edit "
        "in results.json): those are in scope of that edit. "
        "gate_recall_sample: routing of a random sample of all edits in memory (prompt + paraphrase), no model call. "
        "routing_ms: amortised batched retrieval + gate per query.",
    ])


TASK = FunctionTask("sequential", run, report)
