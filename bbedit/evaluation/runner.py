"""``bbedit eval eval/<suite>.yaml``: run a suite, write ``eval/results/<suite>/`` (results.json with
its headline, report.md with tables, PNG plots) and refresh ``eval/README.md``.

Model calls are cached per suite (``--cache-dir``, default ``eval/.cache``): run the same
command again after an interruption and it resumes, answering finished calls from the cache.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bbedit.evaluation.harness import RunContext, SuiteConfig
from bbedit.evaluation.report import DATA_ROOT, RESULTS_ROOT, write_results
from bbedit.evaluation.tasks import get_task

log = logging.getLogger(__name__)

DEFAULT_CACHE = RESULTS_ROOT.parent / ".cache"


def run_suite(path: str | os.PathLike[str], *, n: int | None = None, workers: int | None = None,
              data_root: str | os.PathLike[str] | None = None, results_root: str | os.PathLike[str] | None = None,
              cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE, summary: bool = True,
              report_only: bool = False, rejudge: bool = False) -> Path:
    """Run the suite in ``path``; returns the results folder. ``n`` and ``workers`` override the file.
    ``report_only`` re-renders report.md and the plots from the suite's existing results.json, keeping
    that run's provenance (commit, finish time, machine, manifest) and adding a ``rendered`` entry;
    with ``rejudge`` it first recomputes the judged figures from the stored answers
    (:mod:`bbedit.evaluation.rejudge`, no model called).

    Raises :class:`ConfigError` for a bad suite, or ``rejudge`` without ``report_only``."""
    from bbedit.errors import ConfigError

    if rejudge and not report_only:
        raise ConfigError("--rejudge re-judges a finished run's answers: use it with --report-only")
    cfg = SuiteConfig.load(path)
    if n is not None:
        cfg.n = n
    if workers is not None:
        cfg.workers = workers
    cfg.check()
    root = Path(results_root) if results_root is not None else RESULTS_ROOT
    data = Path(data_root) if data_root is not None else Path(os.environ.get("BBEDIT_DATA") or DATA_ROOT)
    ctx = RunContext(cfg, data_root=data, results_root=root, cache_dir=Path(cache_dir) if cache_dir else None)
    task = get_task(cfg.task)
    folder = root / cfg.suite
    provenance = None
    try:
        if report_only:
            out, command, provenance = _previous(folder)
            task.augment(ctx, out)  # a run adds these itself; an older results.json may lack them
            if rejudge:
                from bbedit.evaluation.rejudge import rejudge as rejudge_run

                rejudge_run(ctx, out)
        else:
            out = task.run(ctx)
            command = cfg.command() + (f" --n {n}" if n is not None else "")
    finally:
        ctx.close()
    folder.mkdir(parents=True, exist_ok=True)
    if provenance is None:
        from bbedit.evaluation.manifest import run_manifest

        out["manifest"] = run_manifest(cfg)
    elif provenance.get("manifest"):
        out["manifest"] = provenance["manifest"]
    report = task.report(cfg, out, folder)
    report = _notes(cfg, out, report)
    written = write_results(cfg.suite, out["headline"], {k: v for k, v in out.items() if k != "headline"},
                            report, command, root=root, cfg=cfg, provenance=provenance)
    if summary and root == RESULTS_ROOT:
        from bbedit.evaluation.summary import main as refresh

        refresh()
    return written


def _notes(cfg: SuiteConfig, out: Mapping[str, Any], report: str) -> str:
    """The report with the notes every suite gets: the judging fix's table (a re-judged run) and the
    train/eval overlap of the data the suite evaluates on (:mod:`bbedit.evaluation.overlap`)."""
    from bbedit.evaluation import overlap, rejudge

    extra = [x for x in (rejudge.section(out), overlap.note(str(cfg.dataset.get("path", "")))) if x]
    return report.rstrip() + ("\n\n" + "\n".join(extra) if extra else "")


_META = ("suite", "command", "finished_at", "commit", "machine", "manifest", "rendered", "not_measured")


def _previous(folder: Path) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A finished run's output, command and provenance (when it finished, its commit, machine and
    manifest: a re-render keeps them), from its results.json.

    Raises :class:`ConfigError` when there is no readable results.json in ``folder``."""
    import json

    from bbedit.errors import ConfigError

    path = folder / "results.json"
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"--report-only needs a finished run: cannot read {path} ({e})") from e
    provenance = {k: d[k] for k in ("finished_at", "commit", "machine", "manifest") if k in d}
    return {k: v for k, v in d.items() if k not in _META}, str(d.get("command", "")), provenance

