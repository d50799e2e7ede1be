"""``bbedit gate ...``: show, set, calibrate and train the scope gate."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bbedit.cli.common import mem_opt, open_memory


def cmd_gate(args: argparse.Namespace) -> int:
    if args.gate_cmd == "train":
        from bbedit.scope.train import train_gate

        out = Path(args.out)
        summary = train_gate(Path(args.data), out, n_cases=args.n_cases, cross_fit_folds=args.cross_fit_folds)
        print(json.dumps({k: v for k, v in summary.items() if k != "curve"}, indent=2))
        return 0
    from bbedit.scope.gate import load_gate

    with open_memory(args) as memory:
        gate = load_gate(memory)
        if args.gate_cmd == "show":
            print(json.dumps({"kind": gate.name, "threshold": gate.threshold}, indent=2))
        elif args.gate_cmd == "set":
            gate.set_threshold(args.threshold)
            print(f"saved {gate.save()}")
        elif args.gate_cmd == "calibrate":
            rows = [json.loads(x) for x in Path(args.file).read_text().splitlines() if x.strip()]
            try:
                queries = [r["query"] for r in rows]
                expected = [r.get("edit") for r in rows]
            except (KeyError, TypeError) as e:
                from bbedit.errors import EditFileError

                raise EditFileError(args.file, f"each line must be {{\"query\": ..., \"edit\": id or null}} ({e})") from e
            res = gate.calibrate(queries, expected, target_precision=args.target_precision)
            print(json.dumps(res, indent=2))
            print(f"saved {gate.save()}")
    return 0


def register(sub: Any) -> None:
    """Add the gate command group."""
    sp = sub.add_parser("gate", help="the scope gate: show, set, calibrate, train")
    gsub = sp.add_subparsers(dest="gate_cmd", required=True)
    mem_opt(gsub.add_parser("show", help="show the memory's gate settings"))
    a = gsub.add_parser("set", help="set the memory's gate threshold")
    a.add_argument("threshold", type=float)
    mem_opt(a)
    a = gsub.add_parser("calibrate", help='calibrate from a JSONL of {"query", "edit": id|null}')
    a.add_argument("file")
    a.add_argument("--target-precision", type=float, default=0.99)
    mem_opt(a)
    a = gsub.add_parser("train", help="train the gate's scorer on a CounterFact-format file")
    a.add_argument("--data", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--n-cases", type=int, default=None)
    a.add_argument("--cross-fit-folds", type=int, default=0,
                   help="fit the relation feature on held-out relation clusters (K folds) when training the scorer")
    sp.set_defaults(func=cmd_gate)
