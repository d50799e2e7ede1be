"""``bbedit eval``: run benchmark suites. The one part of the CLI (and of the library) that imports
``bbedit.evaluation``."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_eval(args: argparse.Namespace) -> int:
    from bbedit.evaluation.runner import DEFAULT_CACHE, run_suite

    cache = None if args.no_cache else (args.cache_dir or DEFAULT_CACHE)
    for suite in args.suite:
        folder = run_suite(suite, n=args.n, workers=args.workers, data_root=args.data_root,
                           results_root=args.out, cache_dir=cache, report_only=args.report_only,
                           rejudge=args.rejudge)
        print(f"{suite}: wrote {folder / 'results.json'} and {folder / 'report.md'}")
    return 0


def register(sub: Any) -> None:
    """Add the eval command."""
    sp = sub.add_parser("eval", help="run benchmark suites (eval/<suite>.yaml); resumes from its call cache")
    sp.add_argument("suite", nargs="+", help="suite YAML file(s)")
    sp.add_argument("--n", type=int, default=None, help="override the number of cases")
    sp.add_argument("--workers", type=int, default=None, help="concurrent model requests")
    sp.add_argument("--data-root", default=None, help="benchmark data folder (default: $BBEDIT_DATA, else the first that exists of "
                                                       "<user data dir>/bbedit/data and shared/data beside a source checkout)")
    sp.add_argument("--out", default=None, help="results root (default: eval/results)")
    sp.add_argument("--cache-dir", default=None, help="model-call cache folder (default: eval/.cache)")
    sp.add_argument("--no-cache", action="store_true", help="keep the call cache in memory only")
    sp.add_argument("--report-only", action="store_true",
                    help="re-render report.md and plots from the suite's existing results.json")
    sp.add_argument("--rejudge", action="store_true",
                    help="with --report-only: recompute the judged figures from the stored answers (no model call)")
    sp.set_defaults(func=cmd_eval)
