"""The ``whitebox`` task: editing the model's weights against editing from outside, on the same cases
and the same weights.

The same CounterFact cases through

- black-box systems on the served model (llama.cpp): bbedit with IKE and with the post-editor,
  the memory holding the cases' edits, answered through :meth:`bbedit.pipeline.EditedModel.chat`;
- white-box methods on the same weights loaded with transformers: each case's edit is applied
  alone, its probes answered, then undone (the standard single-edit protocol).

Both protocols: generation (greedy chat answer; ES/PS = the new target is said and the old one is
not, NS = the neighbour's answer is unchanged from the unedited model's) and probability (teacher
forcing: new more likely than old; for neighbours, the true answer more likely than the new target).
A post-editor does not change the model's probabilities, so the probability protocol does not apply
to it (its columns are "–").
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bbedit.evaluation.cases import Case
from bbedit.evaluation.harness import RunContext, SuiteConfig, build_memory, make_editor
from bbedit.evaluation.manifest import whitebox_fingerprint
from bbedit.evaluation.report import cores_text, md_table
from bbedit.evaluation.systems import user
from bbedit.evaluation.tasks import FunctionTask, editing
from bbedit.evaluation.tasks.editing import Item
from bbedit.evaluation.tasks.whitebox_shared import (
    SHORT,
    _case_items,
    _fact,
    _make,
    _short,
    default_methods,
    label,
    local_model,
    shared_targets,
)
from bbedit.types import Completion, Message

log = logging.getLogger(__name__)


def blackbox(ctx: RunContext, items: Sequence[Item], edits: Sequence[Any], systems: Sequence[str]
             ) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, list[Completion]]]:
    """Generation and probability results of bbedit (IKE) and its post-editor on the served model."""
    from bbedit.evaluation.systems import Systems

    systems_ = Systems(build_memory(edits))
    editor = make_editor(ctx.cfg)
    routes, requests, answers, route_ms = editing.answer_all(ctx, items, systems_, editor, ["none", "bbedit"])
    results: dict[str, dict[str, dict[str, float]]] = {"generation": {}, "probability": {}}
    named = {"none_served": "none", "ike": "bbedit"}
    if "postedit" in systems:
        editing.post_edit_systems(ctx, items, ["none", "bbedit", "postedit"], systems_, routes, answers, route_ms)
        named["postedit"] = "postedit"  # generation only: it does not change the model's probabilities
    for name, s in named.items():
        results["generation"][name] = editing.summarise(editing.score_generation(items, answers[s], answers["none"]))
    for name, s in (("none_served", "none"), ("ike", "bbedit")):
        results["probability"][name] = editing.summarise(editing.score_probability(ctx, items, requests[s]))
    return results, {name: answers[s] for name, s in named.items()}


def run(ctx: RunContext) -> dict[str, Any]:
    """The comparison table: black-box systems and white-box methods on the same cases."""
    from tqdm import tqdm

    from bbedit.evaluation.calls import CallCache
    from bbedit.whitebox import Editing, stats

    cfg, opts = ctx.cfg, ctx.cfg.options
    t_start = time.perf_counter()
    data, _ = editing.load(ctx)
    items = [Item(c, p) for c in data.cases for p in c.probes]
    edits = data.edits()
    max_tokens = int(opts.get("max_tokens", cfg.generation.get("max_tokens", 24)))
    results, bb_answers = blackbox(ctx, items, edits, list(opts.get("blackbox", ["ike", "postedit"])))

    model = local_model(ctx)
    ed = Editing(model)
    requests = [user(it.probe.text) for it in items]
    key = CallCache.key(f"whitebox-base:{ed.name}:{max_tokens}", [], {"queries": [it.probe.text for it in items]},
                        whitebox_fingerprint())
    found = ctx.cache.get(key)
    if found is None:
        found = {"texts": [c.text for c in model.complete_many(requests, max_tokens=max_tokens)]}
        ctx.cache.put(key, found)
    base = [Completion(t) for t in found["texts"]]
    results["generation"]["none_local"] = editing.summarise(editing.score_generation(items, base, base))
    results["probability"]["none_local"] = editing.summarise(editing.score_probability(ctx, items, requests))
    methods = [m for m in opts.get("methods", default_methods())]
    made = {m: _make(m, opts.get("method_options", {})) for m in methods}

    # key statistics, computed here (not read from the cache) so their time is measured
    layers = sorted({layer for m in made.values() if m.uses_key_statistics for layer in m.layers(ed)})
    s_cfg = next((m.config.stats for m in made.values() if hasattr(m.config, "stats")), None)
    t0 = time.perf_counter()
    if layers and s_cfg is not None:
        stats.second_moments(ed, layers, s_cfg.corpus, s_cfg.n_tokens, cache=False)
    stats_s = time.perf_counter() - t0

    # one target optimisation per edit serves every method that optimises at the same layer
    cases = data.cases
    by_case = _case_items(items)
    target_layers = {m: made[m].target_layer(ed) for m in methods}
    shared: dict[int, tuple[list[Any], float]] = {}
    for layer in sorted({la for la in target_layers.values() if la is not None}):
        tcfg = next(made[m].config.targets for m in methods if target_layers[m] == layer)
        shared[layer] = shared_targets(ctx, model, cases, layer, tcfg, int(opts.get("target_batch", 16)))

    records: list[dict[str, Any]] = [{"case": it.case.id, "kind": it.probe.kind, "query": it.probe.text,
                                      "answers": list(it.probe.answers[:2]), "old": list(it.probe.old_answers[:2]),
                                      "none_served": bb_answers["none_served"][i].text,
                                      "ike": bb_answers["ike"][i].text, "none_local": base[i].text}
                                     for i, it in enumerate(items)]
    timing: dict[str, dict[str, float]] = {}

    chunk = int(opts.get("eval_batch", 16))
    for m in methods:
        meth = made[m]
        layer = target_layers[m]
        targets, target_s = shared.get(layer, ([], 0.0)) if layer is not None else ([], 0.0)
        answers: list[Completion | None] = [None] * len(items)
        prob: dict[str, list[float]] = defaultdict(list)
        compute_s = []
        for b in tqdm(range(0, len(cases), chunk), desc=f"{cfg.suite}: {m}", mininterval=10):
            part = cases[b:b + chunk]
            key = CallCache.key(f"whitebox:{ed.name}:{m}:{meth.config!r}:{max_tokens}", [],
                                {"cases": [_fact(c.edits[0]) for c in part]}, whitebox_fingerprint())
            found = ctx.cache.get(key)
            if found is None:
                found = evaluate_chunk(ctx, model, meth, part, [targets[i] for i in range(b, b + len(part))]
                                       if targets else None, items, by_case, requests, max_tokens)
                ctx.cache.put(key, found)
                compute_s += found["compute_s"]  # times of chunks from the cache are not this run's
            for k, v in found["prob"].items():
                prob[k] += v
            for i, text in zip(found["rows"], found["texts"], strict=True):
                answers[i] = Completion(text)
                records[i][m] = text
        done = [a for a in answers if a is not None]
        results["generation"][m] = editing.summarise(editing.score_generation(items, done, base))
        results["probability"][m] = editing.summarise(prob)
        mean_s = statistics.mean(compute_s) if compute_s else float("nan")
        timing[m] = {"edit_s": target_s + mean_s, "target_s": target_s, "compute_s": mean_s}

    timed = [m for m in methods if made[m].single_edit_timing]
    single_s = {m: single_edit(model, cases, m, opts) for m in timed}
    headline: dict[str, float | int] = {"n_cases": len(cases), "n_queries": len(items)}
    for proto, by_sys in results.items():
        for s, summary in by_sys.items():
            headline.update(_short(summary, proto, s))
    for s, summary in results["generation"].items():
        if "fluency" in summary:
            headline[f"{s}_fluency"] = summary["fluency"]
    for m, t in timing.items():
        headline[f"{m}_s_per_edit"] = t["edit_s"]
    for m, secs in single_s.items():
        if secs:
            headline[f"{m}_edit_s"] = statistics.median(secs)
    headline["stats_s"] = stats_s
    headline["stats_tokens"] = s_cfg.n_tokens if s_cfg is not None else 0
    headline["wall_s"] = round(time.perf_counter() - t_start, 1)
    return {"headline": headline, "results": results, "timing": timing,
            **{f"{m}_single_edit_s": secs for m, secs in single_s.items()},
            "methods": methods, "stats_layers": layers, "model": ed.name, "records": records,
            "method_options": {m: repr(made[m].config) for m in methods},
            "gate_threshold": None}


def evaluate_chunk(ctx: RunContext, model: Any, meth: Any, part: Sequence[Case], targets: Sequence[Any] | None,
                   items: Sequence[Item], by_case: Mapping[str, list[int]], requests: Sequence[list[Message]],
                   max_tokens: int) -> dict[str, Any]:
    """Each case's edit computed and scored on the edited weights (probability protocol), then the
    chunk's generation in one batch, each row as if its own case's edit were applied."""
    from bbedit.whitebox import Editing, hooks

    ed = Editing(model)
    updates, rows, row_update, compute_s = [], [], [], []
    prob: dict[str, list[float]] = defaultdict(list)
    for j, case in enumerate(part):
        t0 = time.perf_counter()
        update = meth.compute(model, [case.edits[0]], targets=targets[j] if targets else None)
        compute_s.append(time.perf_counter() - t0)
        idx = by_case[case.id]
        with hooks.apply_update(ed.lm, update):
            per = editing.score_probability(ctx, [items[i] for i in idx], [requests[i] for i in idx], scorer=model,
                                            progress=False)
        for k, v in per.items():
            prob[k] += v
        updates.append(update)
        rows += idx
        row_update += [len(updates) - 1] * len(idx)
    with hooks.per_row(ed.lm, updates, row_update):
        got = model.complete_many([requests[i] for i in rows], max_tokens=max_tokens, batch=len(rows))
    return {"rows": rows, "texts": [a.text for a in got], "prob": dict(prob), "compute_s": compute_s}


def single_edit(model: Any, cases: Sequence[Case], name: str, opts: Mapping[str, Any], n: int = 5) -> list[float]:
    """Seconds of one edit by method ``name`` end to end (targets, key, update, weights changed),
    statistics cached; each is undone after. Run for the methods that declare ``single_edit_timing``."""
    out = []
    meth = _make(name, opts.get("method_options", {}))
    for case in cases[:n]:
        t0 = time.perf_counter()
        handle = meth.apply(model, [case.edits[0]])
        out.append(time.perf_counter() - t0)
        handle.undo()
    return out


def report(cfg: SuiteConfig, out: Mapping[str, Any], folder: Path) -> str:
    h = out["headline"]
    res = out["results"]
    systems = [s for s in ("none_served", "ike", "postedit", "none_local", *out["methods"])
               if s in res["generation"] or s in res["probability"]]
    rows = []
    for s in systems:
        g, p = res["generation"].get(s, {}), res["probability"].get(s, {})
        rows.append([label(s), *(g.get(k, "–") for k in SHORT), *(p.get(k, "–") for k in SHORT),
                     g.get("fluency", "–"), h.get(f"{s}_s_per_edit", "–")])
    table = md_table(["system", "ES gen ↑", "PS gen ↑", "NS gen ↑", "ES prob ↑", "PS prob ↑", "NS prob ↑",
                      "fluency ↑", "s / edit"], rows)
    _compare_plot(folder / "whitebox-compare.png", res, systems)
    timing = out.get("timing", {})
    trows = [[label(m), t["target_s"], t["compute_s"], t["edit_s"]] for m, t in timing.items()]
    lines = [
        f"# {cfg.suite}", "", cfg.description.strip(), "",
        f"{h['n_cases']} CounterFact cases, {h['n_queries']} queries (prompt, paraphrase, neighbourhood prompt). "
        f"Model: {out.get('model')} (served by llama.cpp for the black-box systems, the same GGUF dequantised "
        "with transformers for the white-box ones). White-box edits are applied one case at a time and undone.", "",
        table, "", "![comparison](whitebox-compare.png)", "",
        "ES/PS/NS: efficacy, paraphrase (generalisation) and neighbourhood (locality) success. Generation: the "
        "greedy chat answer says the new target and not the old one; neighbours: the answer equals the unedited "
        "model's (its own side: served or local). Probability: the new target is more likely than the old one as the "
        "start of the reply; neighbours: the true answer stays more likely than the new target. The post-editor does "
        "not change the model's probabilities, so the probability protocol does not apply to it (–). Fluency: "
        "weighted n-gram entropy of the answers.", "",
        f"## Time per edit ({cores_text(out)})", "",
        md_table(["method", "targets (s, amortised)", "update (s)", "total (s)"], trows), "",
        "Targets (v*/z*) are optimised once per edit at the last critical layer and shared by ROME, MEMIT, "
        f"AlphaEdit and AlphaEdit+BLUE, {cfg.options.get('target_batch', 16)} edits per optimisation.",
    ]
    for m in out.get("methods", []):
        if out.get(f"{m}_single_edit_s"):
            secs = out[f"{m}_single_edit_s"]
            lines += ["", f"A single {label(m)} edit end to end (targets, key, update), statistics cached: median "
                          f"{h[f'{m}_edit_s']:.2f} s over {len(secs)} edits ({', '.join(f'{x:.2f}' for x in secs)} s)."]
    lines += ["", f"Key statistics for layers {out.get('stats_layers')}: {h.get('stats_tokens')} tokens in "
                  f"{h['stats_s']:.1f} s (computed once per model and corpus, then cached)."]
    return "\n".join(lines)


def _compare_plot(path: Path, res: Mapping[str, Any], systems: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = [("generation", k) for k in SHORT] + [("probability", k) for k in SHORT]
    x = np.arange(len(cols))
    shown = [s for s in systems if not s.startswith("none")]
    w = 0.8 / max(len(shown), 1)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for i, s in enumerate(shown):
        vals = [res[p].get(s, {}).get(k, float("nan")) for p, k in cols]
        ax.bar(x + i * w - 0.4 + w / 2, vals, w, label=label(s))
    ax.set_xticks(x, [f"{SHORT[k].upper()} {'gen' if p == 'generation' else 'prob'}" for p, k in cols])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Black-box vs white-box editing, same cases, same weights", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


TASK = FunctionTask("whitebox", run, report)
