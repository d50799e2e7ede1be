"""The ``whitebox_sequential`` task: the first N CounterFact edits applied one after another (in
batches where the method batches, its registered ``batch``), with efficacy on a sample of the edits
applied so far, neighbourhood success and general-ability probes (MMLU, SST-2, BoolQ; next-token
choice under teacher forcing) at each checkpoint, next to bbedit's curve with the same edits in its
memory (routed by :class:`~bbedit.routing.Router`, scored on what
:meth:`~bbedit.pipeline.EditedModel.request_messages` sends).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bbedit.evaluation.cases import Case
from bbedit.evaluation.harness import RunContext, SuiteConfig, make_editor
from bbedit.evaluation.manifest import whitebox_fingerprint
from bbedit.evaluation.report import md_table
from bbedit.evaluation.systems import route, user
from bbedit.evaluation.tasks import FunctionTask, editing
from bbedit.evaluation.tasks.editing import Item
from bbedit.evaluation.tasks.whitebox_shared import (
    SHORT,
    _make,
    default_methods,
    label,
    local_model,
    shared_targets,
)
from bbedit.types import Message

log = logging.getLogger(__name__)


# the choices a general probe's gold answer is among, and its index: the question comes from the general suite
CHOICES: dict[str, tuple[list[str], Any]] = {
    "mmlu": (list("ABCD"), lambda r: int(r["answer"])),
    "sst2": (["Positive", "Negative"], lambda r: 0 if int(r["label"]) == 1 else 1),
    "boolq": (["Yes", "No"], lambda r: 0 if r["answer"] else 1),
}


def general_probes(ctx: RunContext, n: Mapping[str, int]) -> list[tuple[str, list[Message], list[str], int]]:
    """(task, messages, choices, gold index) for MMLU, SST-2 and BoolQ: the first ``n[task]`` items, asked
    as the ``general`` suite asks them."""
    from bbedit.evaluation.tasks import general
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
    from bbedit.evaluation.tasks import general
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
    batches = {**default_batches(), **opts.get("batch", {})}
    n_heldout = int(opts.get("heldout_texts", 100))
    heldout = heldout_texts(ctx, n_heldout, skip=len([g for g in general if g[0] == "boolq"])) if n_heldout else []
    model = local_model(ctx)
    ed = Editing(model)
    curves: dict[str, list[dict[str, float]]] = {}
    start = measure(ctx, model, cases, probe_sample(0, n_probe, len(cases)), general, heldout=heldout)
    shared: dict[tuple[int, str], tuple[list[Any], float]] = {}
    target_s: dict[str, float] = {}
    for m in opts.get("methods", default_methods()):
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
                               for m in opts.get("methods", default_methods())}}


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
    from bbedit.evaluation.systems import ScoringOnlyBackend, Systems
    from bbedit.memory.memory import EditMemory

    editor = make_editor(ctx.cfg)
    memory = EditMemory(None)
    bbedit = Systems(memory).model("bbedit", ScoringOnlyBackend(), editor)  # the gate loaded once, as before
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
        routes, _ = route(bbedit, [it.probe.text for it in items])
        by_text = {it.probe.text: bbedit.request_messages(user(it.probe.text), r)
                   for it, r in zip(items, routes, strict=True)}
        g_routes, _ = route(bbedit, [str(g[1][0]["content"]) for g in general])
        g_msgs = [bbedit.request_messages(g[1], r) for g, r in zip(general, g_routes, strict=True)]
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
            rows.append([label(m), p["n_edits"], *(p.get(k, "–") for k in metrics)])
    b = out.get("batches", {})
    n_held = out.get("n_heldout_texts", 0)
    lines = [
        f"# {cfg.suite}", "", cfg.description.strip(), "",
        "![curves](whitebox-sequential.png)", "",
        md_table(["system", "edits", "ES prob ↑", "PS prob ↑", "NS prob ↑", "MMLU ↑", "SST-2 ↑", "BoolQ ↑",
                  "gold p ↑", "perplexity ↓", "editing time so far (s)"], rows), "",
        f"Batches: {', '.join(f'{label(k)} {v}' for k, v in b.items() if k in curves)}. "
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
        lines += ["Method configurations:", "", *(f"- {label(m)}: `{c}`" for m, c in out["method_options"].items())]
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
                ax.plot(*zip(*pts, strict=True), marker="o", label=label(m),
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


def default_batches() -> dict[str, int]:
    """Edits per update of each registered method when edits are applied in sequence."""
    from bbedit.whitebox.registry import method_names, method_spec

    return {m: method_spec(m).batch for m in method_names()}


TASK = FunctionTask("whitebox_sequential", run_sequential, sequential_report)
