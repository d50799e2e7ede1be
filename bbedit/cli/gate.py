"""``bbedit gate ...``: show, set, calibrate and train the scope gate."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bbedit.cli.common import mem_opt, open_memory


def cmd_gate(args: argparse.Namespace) -> int:
    if args.gate_cmd == "train":
        out = Path(args.out)
        if Path(args.data).is_dir():  # the training files of a data folder: many relations (the shipped model)
            from bbedit.scope.train_pairs import train_from_pairs

            summary = train_from_pairs(Path(args.data), out, n_train=args.n_train, n_dev=args.n_dev)
        else:
            from bbedit.scope.train import train_gate

            summary = train_gate(Path(args.data), out, n_cases=args.n_cases, cross_fit_folds=args.cross_fit_folds)
        print(json.dumps({k: v for k, v in summary.items() if k != "curve"}, indent=2))
        return 0
    if args.gate_cmd == "eval":
        from bbedit.evaluation.gate_eval import gate_eval

        folder = gate_eval(args.file, gate_from=args.gate_from, distractors=args.distractors, nq=args.nq, n=args.n,
                           out_root=args.out, command=_eval_command(args))
        print((folder / "report.md").read_text(encoding="utf-8"))
        print(f"wrote {folder / 'results.json'}")
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


def _eval_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this ``gate eval`` run."""
    opts = [f"--{k.replace('_', '-')} {v}" for k, v in (("distractors", args.distractors), ("nq", args.nq),
                                                        ("gate_from", args.gate_from), ("out", args.out)) if v]
    return " ".join(["bbedit gate eval", str(args.file), *opts, *([f"-n {args.n}"] if args.n else [])])


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
    a = gsub.add_parser("eval", help="route a dataset's probes with the gate and the cosine baseline: precision, "
                                     "recall, false triggers per probe kind (results.json + report.md)")
    a.add_argument("file", help="a dataset file: CounterFact, zsRE, KnowEdit (incl. its TriviaQA object form), QAEdit, "
                                "PostEdit query_data, MQuAKE, WISE-style records")
    a.add_argument("--distractors", default=None, help="a dataset file whose edits also go into memory, unprobed")
    a.add_argument("--nq", default=None, help="out-of-scope questions (one per line, JSON lines or a JSON list)")
    a.add_argument("--gate-from", default=None, help="a folder with the gate.json to use (default: the built-in gate)")
    a.add_argument("-n", type=int, default=None, help="only the first N cases")
    a.add_argument("--out", default="eval/results/gate-eval", help="results go to OUT/<dataset name>/")
    a = gsub.add_parser("train", help="train the gate's scorer: on a data folder's training files (many "
                        "relations, as the shipped model) or on one CounterFact-format file")
    a.add_argument("--data", required=True, help="../shared/data (a folder) or a CounterFact-format file")
    a.add_argument("--out", required=True, help="the model JSON to write")
    a.add_argument("--n-train", type=int, default=12000, help="folder: training facts sampled")
    a.add_argument("--n-dev", type=int, default=2000, help="folder: held-out facts that choose the threshold")
    a.add_argument("--n-cases", type=int, default=None, help="file: only the first N cases")
    a.add_argument("--cross-fit-folds", type=int, default=0,
                   help="fit the relation feature on held-out relation clusters (K folds) when training the scorer")
    sp.set_defaults(func=cmd_gate)
