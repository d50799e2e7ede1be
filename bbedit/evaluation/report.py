"""Writing a benchmark's ``results.json`` (with its ``headline``) and ``report.md``."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bbedit.config import data_root
from bbedit.types import utc_now

RESULTS_ROOT = Path(__file__).resolve().parents[2] / "eval" / "results"
DATA_ROOT = data_root()  # the benchmark data folder as configured when the evaluation code was imported


def _commit() -> str | None:
    """The short commit of the checkout (None outside git); kept for callers of the old helper."""
    from bbedit.evaluation.manifest import git_state

    return git_state().get("short")


PROVENANCE = ("finished_at", "commit", "machine", "manifest")


def _finite(headline: Mapping[str, float | int]) -> tuple[dict[str, float | int], list[str]]:
    """The headline without values that were not measured (NaN: e.g. a latency whose every answer came
    from the cache), and those keys."""
    kept, dropped = {}, []
    for k, v in headline.items():
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise TypeError(f"headline value {k}={v!r} is not a plain number")
        if v != v or v in (float("inf"), float("-inf")):
            dropped.append(k)
        else:
            kept[k] = v
    return kept, dropped


def _json_safe(v: Any) -> Any:
    """``v`` with non-finite floats (not measured) as None, so results.json is standard JSON."""
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


def write_results(suite: str, headline: Mapping[str, float | int], details: Mapping[str, Any], report: str,
                  command: str, root: Path | None = None, *, cfg: Any = None,
                  provenance: Mapping[str, Any] | None = None) -> Path:
    """Write ``<root>/<suite>/results.json`` and ``report.md``; returns the folder.

    ``headline`` holds plain numbers only (rates as fractions, times with their unit in the key);
    a NaN value (not measured in this run) is left out and its key listed under ``not_measured``.
    A new run gets a ``manifest`` (:func:`bbedit.evaluation.manifest.run_manifest` of ``cfg``) and
    the top-level ``commit``/``machine``/``finished_at`` taken from it. A re-render passes the stored
    run's ``provenance`` (those four keys), which is kept as it was, with a ``rendered`` entry (the
    commit and time of this re-render) added.

    Raises :class:`TypeError` when a headline value is not a number.
    """
    from bbedit.evaluation.manifest import git_state, machine_line, run_manifest

    kept, dropped = _finite(headline)
    out = (root or RESULTS_ROOT) / suite
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any]
    if provenance is not None:
        meta = {k: provenance[k] for k in PROVENANCE if k in provenance}
        g = git_state(cached=False)
        meta["rendered"] = {"commit": g.get("short"), "dirty": g.get("dirty"), "at": utc_now()}
    else:
        man = run_manifest(cfg)
        meta = {"finished_at": utc_now(), "commit": man["git"]["short"],
                "machine": f"{machine_line(man['machine'])}, {platform.machine()}, Python {man['python']}",
                "manifest": man}
    body = {"headline": kept, "suite": suite, "command": command, **meta}
    if dropped:
        body["not_measured"] = sorted(dropped)
    body.update({k: v for k, v in details.items() if k not in body and k not in ("not_measured", "rendered")})
    (out / "results.json").write_text(json.dumps(_json_safe(body), indent=1) + "\n")
    (out / "report.md").write_text(report.rstrip() + f"\n\nReproduce: `{command}`\n")
    return out


def cores_text(out: Mapping[str, Any]) -> str:
    """"16 CPU cores" from the run's manifest; a run recorded without one says so."""
    man = out.get("manifest") or {}
    n = (man.get("machine") or {}).get("cpu_count")
    return f"{n} CPU cores" if n else "CPU count not recorded for this run"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats are shown with 3 decimals, NaN (not measured) as "–"."""
    def fmt(v: Any) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return "–"  # not measured
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")
