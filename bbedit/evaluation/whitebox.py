"""The ``whitebox`` and ``whitebox_sequential`` tasks: editing the model's weights against editing
from outside, on the same cases and the same weights.

``whitebox`` (the comparison): the same CounterFact cases through

- black-box systems on the served model (llama.cpp): bbedit with IKE and with the post-editor,
  the memory holding the cases' edits;
- white-box methods on the same weights loaded with transformers: each case's edit is applied
  alone, its probes answered, then undone (the standard single-edit protocol).

Both protocols: generation (greedy chat answer; ES/PS = the new target is said and the old one is
not, NS = the neighbour's answer is unchanged from the unedited model's) and probability (teacher
forcing: new more likely than old; for neighbours, the true answer more likely than the new target).
A post-editor does not change the model's probabilities, so the probability protocol does not apply
to it (its columns are "–").

``whitebox_sequential``: the first N CounterFact edits applied one after another (in batches
where the method batches), with efficacy on a sample of the edits applied so far, neighbourhood
success and general-ability probes (MMLU, SST-2, BoolQ; next-token choice under teacher forcing)
at each checkpoint, next to bbedit's curve with the same edits in its memory.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bbedit.evaluation import editing
from bbedit.evaluation.cases import Case
from bbedit.evaluation.editing import Item
from bbedit.evaluation.harness import (
    RunContext,
    SuiteConfig,
    build_memory,
    make_editor,
    request,
    route_all,
    user,
)
from bbedit.evaluation.manifest import whitebox_fingerprint
from bbedit.evaluation.report import cores_text, md_table
from bbedit.types import Completion, Message

log = logging.getLogger(__name__)

METHODS = ("ft", "rome", "memit", "alphaedit", "alphaedit_blue")
LABELS = {"ike": "bbedit + IKE (black-box)", "postedit": "bbedit + post-editor (black-box)", "ft": "FT-L",
          "rome": "ROME", "memit": "MEMIT", "alphaedit": "AlphaEdit", "alphaedit_blue": "AlphaEdit + BLUE",
          "memit_blue": "MEMIT + BLUE", "none_served": "no editing (served)", "none_local": "no editing (local)"}
SHORT = {"reliability": "es", "generalization": "ps", "locality": "ns"}


def local_model(ctx: RunContext) -> Any:
    from bbedit.backends.transformers_backend import TransformersBackend

    opts = ctx.cfg.probability
    return TransformersBackend(opts.get("model"), threads=opts.get("threads"))


def _short(summary: Mapping[str, float], proto: str, prefix: str) -> dict[str, float]:
    tag = "gen" if proto == "generation" else "prob"
    return {f"{prefix}_{SHORT[k]}_{tag}": float(v) for k, v in summary.items() if k in SHORT}


def _make(name: str, options: Mapping[str, Any]) -> Any:
    from bbedit.whitebox import make_method

    return make_method(name, **dict(options.get(name, {})))


# ----------------------------------------------------------------------------- the comparison


def blackbox(ctx: RunContext, items: Sequence[Item], edits: Sequence[Any], systems: Sequence[str]
             ) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, list[Completion]]]:
    """Generation and probability results of bbedit (IKE) and its post-editor on the served model."""
    from bbedit.scope.gate import load_gate

    memory = build_memory(edits)
    gate = load_gate(memory)
    editor = make_editor(ctx.cfg)
    routes, requests, answers, route_ms = editing.answer_all(ctx, items, memory, gate, editor, ["none", "bbedit"])
    results: dict[str, dict[str, dict[str, float]]] = {"generation": {}, "probability": {}}
    named = {"none_served": "none", "ike": "bbedit"}
    if "postedit" in systems:
        editing.post_edit_systems(ctx, items, ["none", "bbedit", "postedit"], memory, gate, routes, answers, route_ms)
        named["postedit"] = "postedit"  # generation only: it does not change the model's probabilities
    for label, s in named.items():
        results["generation"][label] = editing.summarise(editing.score_generation(items, answers[s], answers["none"]))
    for label, s in (("none_served", "none"), ("ike", "bbedit")):
        results["probability"][label] = editing.summarise(editing.score_probability(ctx, items, requests[s]))
    return results, {label: answers[s] for label, s in named.items()}


def _case_items(items: Sequence[Item]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        out[it.case.id].append(i)
    return out


def _fact(e: Any) -> list[str]:
    """What identifies an edit in a cache key (not its creation time)."""
    return [e.id, e.subject, e.prompt, e.target_new, e.target_old or ""]


def shared_targets(ctx: RunContext, model: Any, cases: Sequence[Case], layer: int, cfg: Any, batch: int
                   ) -> tuple[list[Any], float]:
    """Target values at ``layer`` for each case's edit on the unedited model, ``batch`` edits per
    optimisation (each edit's δ only sees its own rows, so batching changes nothing but speed);
    returns them and the amortised seconds per edit optimised in this run (NaN when every one came from
    the suite's cache, which keeps them so that a run resumes)."""
    import torch
    from tqdm import tqdm

    from bbedit.evaluation.calls import CallCache
    from bbedit.whitebox import Editing, Targets

    ed = Editing(model)
    out: list[Any] = []
    spent, fresh = 0.0, 0
    for b in tqdm(range(0, len(cases), batch), desc=f"targets at layer {layer}", mininterval=10):
        chunk = [c.edits[0] for c in cases[b:b + batch]]
        key = CallCache.key(f"targets:{ed.name}:{layer}:{cfg.key()}", [], {"edits": [_fact(e) for e in chunk]},
                            whitebox_fingerprint())
        found = ctx.cache.get(key)
        if found is None:
            t0 = time.perf_counter()
            t = ed.targets(chunk, layer, cfg)
            found = {"v": t.v.tolist(), "delta": t.delta.tolist(), "nll": t.nll, "steps": t.steps,
                     "seconds": time.perf_counter() - t0}
            ctx.cache.put(key, found)
            spent, fresh = spent + float(found["seconds"]), fresh + len(chunk)  # never a time from the cache
        v, d = torch.tensor(found["v"]), torch.tensor(found["delta"])
        out += [Targets(layer, v[i:i + 1], d[i:i + 1], [found["nll"][i]], found["steps"]) for i in range(len(chunk))]
    return out, spent / fresh if fresh else float("nan")


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
    methods = [m for m in opts.get("methods", METHODS)]
    made = {m: _make(m, opts.get("method_options", {})) for m in methods}

    # key statistics, computed here (not read from the cache) so their time is measured
    layers = sorted({layer for m in made.values() for layer in m.layers(ed) if m.name != "ft"})
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

    rome_s = rome_single_edit(model, cases, opts) if "rome" in methods else []
    headline: dict[str, float | int] = {"n_cases": len(cases), "n_queries": len(items)}
    for proto, by_sys in results.items():
        for s, summary in by_sys.items():
            headline.update(_short(summary, proto, s))
    for s, summary in results["generation"].items():
        if "fluency" in summary:
            headline[f"{s}_fluency"] = summary["fluency"]
    for m, t in timing.items():
        headline[f"{m}_s_per_edit"] = t["edit_s"]
    if rome_s:
        headline["rome_edit_s"] = statistics.median(rome_s)
    headline["stats_s"] = stats_s
    headline["stats_tokens"] = s_cfg.n_tokens if s_cfg is not None else 0
    headline["wall_s"] = round(time.perf_counter() - t_start, 1)
    return {"headline": headline, "results": results, "timing": timing, "rome_single_edit_s": rome_s,
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


def rome_single_edit(model: Any, cases: Sequence[Case], opts: Mapping[str, Any], n: int = 5) -> list[float]:
    """Seconds of one ROME edit end to end (targets, key, update, weights changed), statistics cached;
    each is undone after."""
    out = []
    meth = _make("rome", opts.get("method_options", {}))
    for case in cases[:n]:
        t0 = time.perf_counter()
        handle = meth.apply(model, [case.edits[0]])
        out.append(time.perf_counter() - t0)
        handle.undo()
    return out


def report(cfg: SuiteConfig, out: Mapping[str, Any], folder: Path) -> str:
    if cfg.task == "whitebox_sequential":
        return sequential_report(cfg, out, folder)
    h = out["headline"]
    res = out["results"]
    systems = [s for s in ("none_served", "ike", "postedit", "none_local", *out["methods"])
               if s in res["generation"] or s in res["probability"]]
    rows = []
    for s in systems:
        g, p = res["generation"].get(s, {}), res["probability"].get(s, {})
        rows.append([LABELS.get(s, s), *(g.get(k, "–") for k in SHORT), *(p.get(k, "–") for k in SHORT),
                     g.get("fluency", "–"), h.get(f"{s}_s_per_edit", "–")])
    table = md_table(["system", "ES gen ↑", "PS gen ↑", "NS gen ↑", "ES prob ↑", "PS prob ↑", "NS prob ↑",
                      "fluency ↑", "s / edit"], rows)
    _compare_plot(folder / "whitebox-compare.png", res, systems)
    timing = out.get("timing", {})
    trows = [[LABELS.get(m, m), t["target_s"], t["compute_s"], t["edit_s"]] for m, t in timing.items()]
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
    if out.get("rome_single_edit_s"):
        lines += ["", f"A single ROME edit end to end (targets, key, update), statistics cached: median "
                      f"{h['rome_edit_s']:.2f} s over {len(out['rome_single_edit_s'])} edits "
                      f"({', '.join(f'{x:.2f}' for x in out['rome_single_edit_s'])} s)."]
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
        ax.bar(x + i * w - 0.4 + w / 2, vals, w, label=LABELS.get(s, s))
    ax.set_xticks(x, [f"{SHORT[k].upper()} {'gen' if p == 'generation' else 'prob'}" for p, k in cols])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Black-box vs white-box editing, same cases, same weights", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- sequential editing


# the choices a general probe's gold answer is among, and its index: the question comes from the general suite
CHOICES: dict[str, tuple[list[str], Any]] = {
    "mmlu": (list("ABCD"), lambda r: int(r["answer"])),
    "sst2": (["Positive", "Negative"], lambda r: 0 if int(r["label"]) == 1 else 1),
    "boolq": (["Yes", "No"], lambda r: 0 if r["answer"] else 1),
}


def general_probes(ctx: RunContext, n: Mapping[str, int]) -> list[tuple[str, list[Message], list[str], int]]:
    """(task, messages, choices, gold index) for MMLU, SST-2 and BoolQ: the first ``n[task]`` items, asked
    as the ``general`` suite asks them."""
    from bbedit.evaluation import general
    from bbedit.memory import formats

    out = []
    for task, k in n.items():
        path, make = general.TASKS[task]
        choices, gold = CHOICES[task]
        for _, _, r in list(formats.records(ctx.data_path(path)))[:k]:
            out.append((task, user(make(r)[0]), choices, gold(r)))
    return out


def choice_accuracy(model: Any, probes: Sequence[tuple[str, list[Message], list[str], int]],
                    messages: Sequence[list[Message]] | None = None) -> dict[str, float]:
    """Per task: how often the gold choice is the most likely start of the reply (``task``), and the
    gold choice's probability among the choices (``task_p``), which moves before the argmax does."""
    hits: dict[str, list[float]] = defaultdict(list)
    probs: dict[str, list[float]] = defaultdict(list)
    for j, (task, msgs, choices, gold) in enumerate(probes):
        sc = model.score(messages[j] if messages is not None else msgs, choices)
        lps = [s.logprob for s in sc]
        best = max(range(len(sc)), key=lambda i: lps[i])
        hits[task].append(float(best == gold))
        top = max(lps)
        probs[task].append(math.exp(lps[gold] - top) / sum(math.exp(x - top) for x in lps))
    out = {t: sum(v) / len(v) for t, v in hits.items()}
    out.update({f"{t}_p": sum(v) / len(v) for t, v in probs.items()})
    return out


HELDOUT_TOKENS = 256  # each held-out text is scored on its first this many tokens


def heldout_texts(ctx: RunContext, n: int, skip: int) -> list[str]:
    """``n`` distinct Wikipedia passages for a perplexity probe: BoolQ's, after the ``skip`` records the
    BoolQ probe asks about, and none that the file's second half also holds (the key statistics read the
    file from its end: 100k tokens are about a fifth of it)."""
    from bbedit.evaluation import general
    from bbedit.whitebox import stats

    # read as the statistics read it, so the exclusion compares the same texts
    passages = [t.strip() for t in stats.read_corpus(ctx.data_path(general.TASKS["boolq"][0]))]
    half = len(passages) // 2
    asked, late = set(passages[:skip]), set(passages[half:])
    seen: dict[str, None] = {}
    for text in passages[skip:half]:
        if text not in asked and text not in late:
            seen.setdefault(text, None)
            if len(seen) >= n:
                break
    return list(seen)


def probe_sample(n_applied: int, k: int, total: int) -> list[int]:
    """``k`` case indices spread evenly over the edits applied so far (the first ``k`` before any)."""
    span = max(n_applied, k)
    span = min(span, total)
    return sorted({round(i * (span - 1) / max(k - 1, 1)) for i in range(k)}) if k > 1 else [0]


def measure(ctx: RunContext, model: Any, cases: Sequence[Case], sample: Sequence[int], general: Sequence[Any],
            messages: Any = None, gen_messages: Any = None, heldout: Sequence[str] = ()) -> dict[str, float]:
    """Efficacy/paraphrase/neighbourhood (probability protocol) on the sampled cases, the general probes,
    and the perplexity of ``heldout`` texts (when given). ``messages(item)`` gives the request for an item
    (default: the query alone)."""
    items = [Item(cases[i], p) for i in sample for p in cases[i].probes]
    reqs = [messages(it) if messages else user(it.probe.text) for it in items]
    per = editing.score_probability(ctx, items, reqs, scorer=model, progress=False)
    out = {f"{SHORT[k]}_prob": v for k, v in editing.summarise(per).items() if k in SHORT}
    out.update(choice_accuracy(model, general, gen_messages))
    if heldout:
        out["ppl"] = model.perplexity(heldout, max_tokens=HELDOUT_TOKENS)
    return out


def join_targets(parts: Sequence[Any]) -> Any:
    """One :class:`~bbedit.whitebox.Targets` for a batch, from per-edit ones."""
    import torch

    from bbedit.whitebox import Targets

    return Targets(parts[0].layer, torch.cat([t.v for t in parts]), torch.cat([t.delta for t in parts]),
                   [x for t in parts for x in t.nll], max(t.steps for t in parts))


def run_sequential(ctx: RunContext) -> dict[str, Any]:
    """``options.targets``: ``fresh`` (default) optimises each batch's targets on the model as edited so far,
    as the methods do on their own; ``shared`` optimises every edit's target δ once on the unedited model
    (as MEMIT does for one mass edit) and shares it between the methods that edit at the same layer. The
    updates themselves are always computed on the current weights: keys, and the residual still to write
    (the current output plus δ)."""
    from bbedit.errors import ConfigError
    from bbedit.whitebox import Editing, hooks

    opts = ctx.cfg.options
    t_start = time.perf_counter()
    data, _ = editing.load(ctx)
    cases = data.cases
    mode = str(opts.get("targets", "fresh"))
    if mode not in ("fresh", "shared"):
        raise ConfigError(f"options.targets must be 'fresh' or 'shared', not {mode!r}")
    checkpoints = sorted({int(c) for c in opts.get("checkpoints", [0, 100, 500, 1000]) if int(c) <= len(cases)})
    n_probe = int(opts.get("probe_cases", 30))
    general = general_probes(ctx, dict(opts.get("general", {"mmlu": 30, "sst2": 30, "boolq": 30})))
    batches = {"ft": 1, "rome": 1, "memit": 100, "alphaedit": 100, "alphaedit_blue": 100, "memit_blue": 100,
               **opts.get("batch", {})}
    n_heldout = int(opts.get("heldout_texts", 100))
    heldout = heldout_texts(ctx, n_heldout, skip=len([g for g in general if g[0] == "boolq"])) if n_heldout else []
    model = local_model(ctx)
    ed = Editing(model)
    curves: dict[str, list[dict[str, float]]] = {}
    start = measure(ctx, model, cases, probe_sample(0, n_probe, len(cases)), general, heldout=heldout)
    shared: dict[tuple[int, str], tuple[list[Any], float]] = {}
    target_s: dict[str, float] = {}
    for m in opts.get("methods", METHODS):
        meth = _make(m, opts.get("method_options", {}))
        meth.statistics(model)
        names = [ed.down(layer) for layer in meth.layers(ed)]
        layer = meth.target_layer(ed)
        given: list[Any] | None = None
        if mode == "shared" and layer is not None:  # on the unedited model: no method's edits are applied here
            tkey = (layer, meth.config.targets.key())
            if tkey not in shared:
                shared[tkey] = shared_targets(ctx, model, cases[:checkpoints[-1]], layer, meth.config.targets,
                                              int(opts.get("target_batch", 16)))
            given, target_s[m] = shared[tkey]
        state = SequentialState(ctx, ed, m, meth, batches.get(m, 1), mode)
        curve = [{"n_edits": 0, **start, "edit_s_total": 0.0}]
        applied, spent = 0, 0.0
        with hooks.restored(ed.lm, names):  # every method starts from the unedited model
            resumed = state.load(names)
            if resumed is not None:
                applied, spent, curve = resumed
                log.info("%s: resumed at %d edits", m, applied)
                curve[0] = {**start, **curve[0]}
                state.complete(names, curve, applied,
                               lambda n: measure(ctx, model, cases, probe_sample(n, n_probe, len(cases)), general,
                                                 heldout=heldout))
            for c in checkpoints:
                if c <= curve[-1]["n_edits"]:
                    continue
                while applied < c:
                    b = min(int(batches.get(m, 1)), c - applied)
                    t0 = time.perf_counter()
                    meth.apply(model, [x.edits[0] for x in cases[applied:applied + b]],
                               targets=join_targets(given[applied:applied + b]) if given else None)
                    spent += time.perf_counter() - t0 + target_s.get(m, 0.0) * b  # shared targets: amortised
                    applied += b
                    if applied % state.every == 0 and applied < c:
                        state.save(names, applied, spent, curve)
                point = measure(ctx, model, cases, probe_sample(applied, n_probe, len(cases)), general,
                                heldout=heldout)
                curve.append({"n_edits": applied, **point, "edit_s_total": spent})
                state.save(names, applied, spent, curve, checkpoint=True)
                log.info("%s at %d edits: %s", m, applied, point)
        curves[m] = curve
    curves["ike"] = blackbox_curve(ctx, model, cases, checkpoints, n_probe, general, start)
    headline: dict[str, float | int] = {"n_edits_max": checkpoints[-1], "n_probe_cases": n_probe,
                                        "n_general_probes": len(general)}
    for m, curve in curves.items():
        last, first = curve[-1], curve[0]
        for k, v in last.items():
            if k != "n_edits":
                headline[f"{m}_{k}_at_{last['n_edits']}"] = v
        gen_keys = [k for k in ("mmlu", "sst2", "boolq") if k in last]
        if gen_keys:
            headline[f"{m}_general_drop_at_{last['n_edits']}"] = sum(first[k] - last[k] for k in gen_keys) / len(gen_keys)
            p_keys = [f"{k}_p" for k in gen_keys if f"{k}_p" in last and f"{k}_p" in first]
            if p_keys:
                headline[f"{m}_gold_p_drop_at_{last['n_edits']}"] = \
                    sum(first[k] - last[k] for k in p_keys) / len(p_keys)
        if "ppl" in last and "ppl" in first:
            headline[f"{m}_ppl_ratio_at_{last['n_edits']}"] = last["ppl"] / first["ppl"]
        if last.get("edit_s_total") and last["n_edits"]:
            headline[f"{m}_s_per_edit"] = last["edit_s_total"] / last["n_edits"]
    headline.update({f"{m}_target_s_per_edit": v for m, v in target_s.items()})
    headline["wall_s"] = round(time.perf_counter() - t_start, 1)
    return {"headline": headline, "curves": curves, "checkpoints": checkpoints, "batches": batches,
            "model": ed.name, "targets": mode, "n_heldout_texts": len(heldout),
            "method_options": {m: repr(_make(m, opts.get("method_options", {})).config)
                               for m in opts.get("methods", METHODS)}}


class SequentialState:
    """A sequential run's progress for one method (edited weights, AlphaEdit's preserved keys, the
    curve so far), saved under the suite's cache folder so an interrupted run resumes."""

    every = 50  # also save every this many edits between checkpoints

    def __init__(self, ctx: RunContext, ed: Any, name: str, meth: Any, batch: int, targets: str = "fresh") -> None:
        import hashlib

        tag = hashlib.sha1(f"{ed.name}|{meth.config!r}|{batch}|{targets}|{whitebox_fingerprint()}".encode()
                           ).hexdigest()[:12]
        self.path = ctx.cache_dir / ctx.cfg.suite / "sequential-state" / f"{name}-{tag}.pt" if ctx.cache_dir else None
        self.ed, self.meth = ed, meth

    def at(self, n_edits: int) -> Path | None:
        """Where the weights as they were at checkpoint ``n_edits`` are kept."""
        return self.path.with_name(f"{self.path.stem}@{n_edits}.pt") if self.path else None

    def save(self, names: Sequence[str], applied: int, spent: float, curve: list[dict[str, float]],
             checkpoint: bool = False) -> None:
        """The latest state; with ``checkpoint``, also a copy kept for this checkpoint, so a metric
        added later can be measured on the weights as they were there."""
        import shutil

        import torch

        from bbedit.whitebox import hooks

        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"applied": applied, "spent": spent, "curve": curve,
                "weights": {n: hooks.param(self.ed.lm, n).detach().clone() for n in names},
                "preserved": dict(getattr(self.meth, "preserved", {}))}
        tmp = self.path.with_suffix(".tmp")
        torch.save(data, tmp)
        if checkpoint and (keep := self.at(applied)) is not None:
            shutil.copyfile(tmp, keep)
        tmp.replace(self.path)

    def _read(self, path: Path | None) -> dict[str, Any] | None:
        import torch

        if path is None or not path.is_file():
            return None
        try:
            return dict(torch.load(path, weights_only=False))
        except Exception as e:
            log.warning("ignoring unreadable sequential state %s: %s", path, e)
            return None

    def _put(self, names: Sequence[str], data: Mapping[str, Any]) -> None:
        import torch

        from bbedit.whitebox import hooks

        with torch.no_grad():
            for n in names:
                hooks.param(self.ed.lm, n).copy_(data["weights"][n])
        if hasattr(self.meth, "preserved"):
            self.meth.preserved = dict(data["preserved"])

    def load(self, names: Sequence[str]) -> tuple[int, float, list[dict[str, float]]] | None:
        data = self._read(self.path)
        if data is None:
            return None
        self._put(names, data)
        return int(data["applied"]), float(data["spent"]), list(data["curve"])

    def complete(self, names: Sequence[str], curve: list[dict[str, float]], applied: int,
                 measure_at: Any) -> None:
        """Metrics a resumed curve lacks (added to ``measure`` since its points were taken) are measured
        on the weights of each point where those are kept: the latest state, and the checkpoint copies.
        A point whose weights are gone keeps what it has. Values already there never change."""
        want = set().union(*(p.keys() for p in curve)) - {"n_edits", "edit_s_total"}
        todo = [i for i, p in enumerate(curve) if p["n_edits"] and want - p.keys()]
        if not todo:
            return
        latest = self._read(self.path)
        for i in todo:
            n = int(curve[i]["n_edits"])
            data = latest if n == applied else self._read(self.at(n))
            if data is None or int(data["applied"]) != n:
                continue
            self._put(names, data)
            added = {k: v for k, v in measure_at(n).items() if k not in curve[i]}
            curve[i].update(added)
            log.info("%s at %d edits: measured %s on the kept weights", self.path, n, sorted(added))
        if latest is not None:
            self._put(names, latest)
            if self.path is not None:
                self.save(names, applied, float(latest["spent"]), curve)


def blackbox_curve(ctx: RunContext, model: Any, cases: Sequence[Case], checkpoints: Sequence[int], n_probe: int,
                   general: Sequence[Any], start: Mapping[str, float]) -> list[dict[str, float]]:
    """bbedit with the same edits in memory: every probe is routed by the gate and scored on the
    messages bbedit would send, with the same local weights (unchanged)."""
    from bbedit.memory.memory import EditMemory
    from bbedit.scope.gate import load_gate

    editor = make_editor(ctx.cfg)
    memory = EditMemory(None)
    gate = load_gate(memory)
    curve = [{"n_edits": 0, **start, "edit_s_total": 0.0}]
    added, spent = 0, 0.0
    for c in checkpoints:
        if c == 0:
            continue
        t0 = time.perf_counter()
        memory.add_many([x.edits[0] for x in cases[added:c]], supersede=False, progress=False)
        spent += time.perf_counter() - t0
        added = c
        sample = probe_sample(added, n_probe, len(cases))
        items = [Item(cases[i], p) for i in sample for p in cases[i].probes]
        routes, _ = route_all("bbedit", [it.probe.text for it in items], memory, gate)
        by_text = {it.probe.text: request(editor, it.probe.text, r) for it, r in zip(items, routes, strict=True)}
        g_routes, _ = route_all("bbedit", [str(g[1][0]["content"]) for g in general], memory, gate)
        g_msgs = [request(editor, str(g[1][0]["content"]), r) for g, r in zip(general, g_routes, strict=True)]
        point = measure(ctx, model, cases, sample, general, messages=lambda it, m=by_text: m[it.probe.text],
                        gen_messages=g_msgs)
        point["general_routed"] = sum(1 for r in g_routes if r.edit is not None) / max(len(g_routes), 1)
        curve.append({"n_edits": added, **point, "edit_s_total": spent})
    return curve


def gold_p(point: Mapping[str, float]) -> float | None:
    """The gold choice's mean probability over the general tasks a point has."""
    ps = [point[k] for k in ("mmlu_p", "sst2_p", "boolq_p") if k in point]
    return sum(ps) / len(ps) if ps else None


def sequential_report(cfg: SuiteConfig, out: Mapping[str, Any], folder: Path) -> str:
    curves = {m: [{**p, **({"gold_p": g} if (g := gold_p(p)) is not None else {})} for p in c]
              for m, c in out["curves"].items()}
    metrics = ["es_prob", "ps_prob", "ns_prob", "mmlu", "sst2", "boolq", "gold_p", "ppl", "edit_s_total"]
    _curve_plot(folder / "whitebox-sequential.png", curves, metrics)
    rows = []
    for m, curve in curves.items():
        for p in curve:
            rows.append([LABELS.get(m, m), p["n_edits"], *(p.get(k, "–") for k in metrics)])
    b = out.get("batches", {})
    n_held = out.get("n_heldout_texts", 0)
    lines = [
        f"# {cfg.suite}", "", cfg.description.strip(), "",
        "![curves](whitebox-sequential.png)", "",
        md_table(["system", "edits", "ES prob ↑", "PS prob ↑", "NS prob ↑", "MMLU ↑", "SST-2 ↑", "BoolQ ↑",
                  "gold p ↑", "perplexity ↓", "editing time so far (s)"], rows), "",
        f"Batches: {', '.join(f'{LABELS.get(k, k)} {v}' for k, v in b.items() if k in curves)}. "
        f"ES/PS/NS on {out['headline']['n_probe_cases']} cases spread over the edits applied so far; general probes: "
        f"{out['headline']['n_general_probes']} items (MMLU, SST-2, BoolQ), the gold choice being the most likely "
        "start of the reply; *gold p* is the gold choice's probability among the choices, averaged over the "
        "three tasks (it moves before the accuracy does). bbedit's curve: the same edits in its memory, every "
        "probe routed by the gate and scored on the messages it would send, on the same (unedited) local "
        "weights.", "",
    ]
    if n_held:
        lines += [f"*Perplexity*: of {n_held} held-out Wikipedia passages (BoolQ's, none of them asked about by the "
                  f"BoolQ probe nor in the key statistics' corpus), first {HELDOUT_TOKENS} tokens each, without chat template. "
                  "bbedit does not change the weights and adds nothing to text outside its scope, so its perplexity "
                  "stays the unedited model's (shown at 0 edits only). A white-box point shown as – was measured "
                  "before the metric existed and its weights were not kept.", ""]
    if out.get("targets") == "shared":
        lines += ["Targets: every edit's δ was optimised once on the unedited model and shared by the methods that "
                  "edit at the same layer (MEMIT's mass-editing practice); each update was computed on the weights "
                  "as edited so far (current keys, current output + δ). Methods run alone re-optimise δ on the "
                  "current model before each batch (`targets: fresh`). The time per edit includes the amortised "
                  "target time.", ""]
    if out.get("method_options"):
        lines += ["Method configurations:", "", *(f"- {LABELS.get(m, m)}: `{c}`" for m, c in out["method_options"].items())]
    return "\n".join(lines)


def _curve_plot(path: Path, curves: Mapping[str, Sequence[Mapping[str, float]]], metrics: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"gold_p": "gold choice probability (mean)", "ppl": "held-out perplexity (log)",
              "edit_s_total": "editing time so far, s (log)"}
    rows = math.ceil(len(metrics) / 3)
    fig, axes = plt.subplots(rows, 3, figsize=(12, 3.2 * rows), sharex=True)
    for ax, k in zip(axes.flat, metrics, strict=False):
        for m, curve in curves.items():
            pts = [(max(p["n_edits"], 1), p[k]) for p in curve if k in p and not (k == "edit_s_total" and not p[k])]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=LABELS.get(m, m),
                        linestyle="--" if m == "ike" else "-")
        ax.set_xscale("log")
        ax.set_title(titles.get(k, k))
        if k in ("ppl", "edit_s_total"):
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("edits applied (log; 0 shown at 1)")
    fig.suptitle("Sequential editing: edit success and general abilities", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["METHODS", "report", "run", "run_sequential"]
