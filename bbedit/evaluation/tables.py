"""Tables and plots the task reports share: system labels, a protocol table, grouped bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bbedit.evaluation import metrics as M
from bbedit.evaluation.report import md_table

SYSTEM_LABELS = {"none": "no editing", "bbedit": "bbedit (gate + editor)", "always": "always apply the top hit",
                 "postedit": "bbedit, learned post-editor", "replace": "bbedit, rule-based post-editor (baseline)"}


def protocol_table(results: Mapping[str, Mapping[str, float]], metrics: Sequence[str] | None = None) -> str:
    """Rows: systems; columns: metrics (with ↑/↓ from their declaration)."""
    cols = list(metrics or dict.fromkeys(k for r in results.values() for k in r))
    heads = []
    for c in cols:
        base = c.removesuffix("_token_acc")
        arrow = "" if base not in M.METRICS else (" ↑" if M.METRICS[base].higher_is_better else " ↓")
        heads.append(c + arrow + (" (ms)" if c in ("latency", "routing_ms") else ""))
    rows: list[list[Any]] = [[SYSTEM_LABELS.get(s, s), *(r.get(c, "–") for c in cols)] for s, r in results.items()]
    return md_table(["system", *heads], rows)


def bar_plot(path: Path, results: Mapping[str, Mapping[str, float]], metrics: Sequence[str], title: str) -> None:
    """Grouped bars: one group per metric, one bar per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    systems = list(results)
    x = np.arange(len(metrics))
    w = 0.8 / max(len(systems), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(metrics)), 3.6))
    for i, s in enumerate(systems):
        vals = [results[s].get(m, float("nan")) for m in metrics]
        ax.bar(x + i * w - 0.4 + w / 2, vals, w, label=SYSTEM_LABELS.get(s, s))
    ax.set_xticks(x, metrics, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

