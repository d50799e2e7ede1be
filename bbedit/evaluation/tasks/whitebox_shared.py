"""What the two white-box tasks (:mod:`~bbedit.evaluation.tasks.whitebox_compare` and
:mod:`~bbedit.evaluation.tasks.whitebox_sequential`) share: the local model, the method labels and
configurations (from :mod:`bbedit.whitebox.registry`), the short metric names, and the target values
optimised once per edit and kept in the suite's cache.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from bbedit.evaluation.cases import Case
from bbedit.evaluation.harness import RunContext
from bbedit.evaluation.tasks.editing import Item

# the black-box systems and unedited references beside the white-box methods, whose labels are registered
SYSTEM_LABELS = {"ike": "bbedit + IKE (black-box)", "postedit": "bbedit + post-editor (black-box)",
                 "none_served": "no editing (served)", "none_local": "no editing (local)"}
SHORT = {"reliability": "es", "generalization": "ps", "locality": "ns"}


def default_methods() -> list[str]:
    """The methods a white-box suite runs when it names none: every registered one that is not a
    variant (``default=False`` at registration)."""
    from bbedit.whitebox.registry import method_names, method_spec

    return [m for m in method_names() if method_spec(m).default]


def label(name: str) -> str:
    """The report label of a white-box method or of one of the systems shown beside them."""
    from bbedit.whitebox.registry import method_names, method_spec

    if name in SYSTEM_LABELS:
        return SYSTEM_LABELS[name]
    return method_spec(name).label if name in method_names() else name


def local_model(ctx: RunContext) -> Any:
    from bbedit.backends.transformers_backend import TransformersBackend

    opts = ctx.cfg.probability
    return TransformersBackend(opts.get("model"), threads=opts.get("threads"))


def _short(summary: Mapping[str, float], proto: str, prefix: str) -> dict[str, float]:
    tag = "gen" if proto == "generation" else "prob"
    return {f"{prefix}_{SHORT[k]}_{tag}": float(v) for k, v in summary.items() if k in SHORT}


def _make(name: str, options: Mapping[str, Any]) -> Any:
    from bbedit.whitebox.registry import make_method

    return make_method(name, **dict(options.get(name, {})))


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
    from bbedit.evaluation.manifest import whitebox_fingerprint
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


