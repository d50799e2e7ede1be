"""Writing a benchmark's ``results.json`` (with its ``headline``) and ``report.md``."""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bbedit.config import data_root
from bbedit.types import utc_now

RESULTS_ROOT = Path(__file__).resolve().parents[2] / "eval" / "results"
DATA_ROOT = data_root()  # the benchmark data folder as configured when the evaluation code was imported


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=RESULTS_ROOT.parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_results(suite: str, headline: Mapping[str, float | int], details: Mapping[str, Any], report: str,
                  command: str, root: Path | None = None) -> Path:
    """Write ``<root>/<suite>/results.json`` and ``report.md``; returns the folder.

    ``headline`` holds plain numbers only (rates as fractions, times with their unit in the key).
    """
    for k, v in headline.items():
        if not isinstance(v, int | float) or isinstance(v, bool) or v != v:
            raise TypeError(f"headline value {k}={v!r} is not a plain number")
    out = (root or RESULTS_ROOT) / suite
    out.mkdir(parents=True, exist_ok=True)
    meta = {"suite": suite, "command": command, "finished_at": utc_now(), "commit": _commit(),
            "machine": f"{platform.machine()}, {platform.python_version()}"}
    (out / "results.json").write_text(json.dumps({"headline": dict(headline), **meta, **details}, indent=1) + "\n")
    (out / "report.md").write_text(report.rstrip() + f"\n\nReproduce: `{command}`\n")
    return out


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats are shown with 3 decimals."""
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")
