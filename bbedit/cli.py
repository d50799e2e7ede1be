"""The ``bbedit`` command line: demo, ask, chat, edits, gate, eval, posteditor, whitebox, serve, serve-model.

Every failure bbedit expects (bad edit files, unknown ids, an unreachable
model, a corrupt memory) ends with a one-line message on stderr and exit code
1 (2 for usage errors); nothing stored is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bbedit.whitebox.registry import method_names

log = logging.getLogger("bbedit")

EXIT_ERROR = 1


def default_memory_dir() -> Path:
    """``$BBEDIT_MEMORY`` or the user's data dir (e.g. ~/.local/share/bbedit/memory)."""
    env = os.environ.get("BBEDIT_MEMORY")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("bbedit")) / "memory"


# -- helpers ------------------------------------------------------------------------------------------
def _open_memory(args: argparse.Namespace) -> Any:
    from bbedit.memory.memory import EditMemory

    return EditMemory(args.memory or default_memory_dir())


def _model(args: argparse.Namespace, memory: Any, stack: contextlib.ExitStack) -> Any:
    from bbedit.backends.factory import make_backend
    from bbedit.pipeline import EditedModel
    from bbedit.scope.gate import load_gate

    backend = make_backend(args.base_url, args.model, args.api_key, timeout=args.timeout, stack=stack)
    gate = load_gate(memory)
    if args.gate_threshold is not None:
        gate.set_threshold(args.gate_threshold)
    editor: Any = args.editor
    if args.editor == "ike" and args.ike_mode:
        from bbedit.editors.ike import IKEEditor

        editor = IKEEditor(mode=args.ike_mode)
    return EditedModel(backend, memory, gate, editor)


def _gen_opts(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_tokens": args.max_tokens, "temperature": args.temperature}


def _edit_line(e: Any, active: bool = True) -> str:
    old = f" (was: {e.target_old})" if e.target_old else ""
    flag = "" if active else "  [superseded]"
    return f"{e.id}  {e.prompt} -> {e.target_new}{old}{flag}"


# -- commands -----------------------------------------------------------------------------------------
def cmd_ask(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        memory = stack.enter_context(_open_memory(args))
        model = _model(args, memory, stack)
        ans = model.ask(args.question, **_gen_opts(args))
        if args.json:
            print(json.dumps({"text": ans.text, "edit": ans.edit.id if ans.edit else None,
                              "score": ans.score, "original": ans.original_text, "timings": dict(ans.timings)}))
        else:
            print(ans.text)
            if ans.edit is not None:
                print(f"\n[edited by {ans.edit.id} (gate score {ans.score:.2f})]", file=sys.stderr)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        memory = stack.enter_context(_open_memory(args))
        model = _model(args, memory, stack)
        history: list[dict[str, str]] = []
        print("bbedit chat: type a message, /reset to forget the conversation, /quit or Ctrl-D to leave.",
              file=sys.stderr)
        while True:
            try:
                line = input("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                print(file=sys.stderr)
                break
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            if line == "/reset":
                history.clear()
                continue
            history.append({"role": "user", "content": line})
            ans = model.chat(history, **_gen_opts(args))
            history.append({"role": "assistant", "content": ans.text})
            tag = f"  [edit {ans.edit.id}]" if ans.edit is not None else ""
            print(f"bot> {ans.text}{tag}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bbedit.backends.factory import make_backend
    from bbedit.memory.formats import read_edits
    from bbedit.memory.memory import EditMemory
    from bbedit.pipeline import EditedModel
    from bbedit.prompts import data_dir

    edits = read_edits(data_dir("memory") / "demo.jsonl")
    questions = [json.loads(x) for x in (data_dir("memory") / "demo_questions.jsonl").read_text().splitlines()
                 if x.strip() and not x.startswith("#")]
    with contextlib.ExitStack() as stack:
        backend = make_backend(args.base_url, args.model, args.api_key, timeout=args.timeout, stack=stack)
        memory = stack.enter_context(EditMemory(None))
        memory.add_many(edits)
        model = EditedModel(backend, memory, editor=args.editor)
        opts = _gen_opts(args)
        print(f"bbedit demo: {len(edits)} edits from memory/demo.jsonl, model {backend.name}\n")
        for e in edits:
            print("  " + _edit_line(e))
        rows = []
        for q in questions:
            before = backend.generate([{"role": "user", "content": q["question"]}], **opts)
            ans = model.ask(q["question"], **opts)
            rows.append((q["question"], before, ans.text, ans.edit.id if ans.edit else "-", q.get("edit") or "-"))
        print()
        _table(["question", "before editing", "after editing", "edit applied", "expected"], rows)
        right = sum(r[3] == r[4] for r in rows)
        print(f"\nscope gate: {right}/{len(rows)} questions routed as expected "
              f"(an edit only where the question is about it; other questions pass through untouched)")
    return 0


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int = 38) -> None:
    def cut(s: str) -> str:
        s = " ".join(str(s).split())
        return s if len(s) <= width else s[: width - 1] + "…"

    cols = [[cut(h)] + [cut(r[i]) for r in rows] for i, h in enumerate(headers)]
    widths = [max(len(c) for c in col) for col in cols]
    line = "+".join("-" * (w + 2) for w in widths)
    print("+" + line + "+")
    for n in range(len(rows) + 1):
        print("| " + " | ".join(cols[i][n].ljust(widths[i]) for i in range(len(headers))) + " |")
        if n == 0:
            print("+" + line + "+")
    print("+" + line + "+")


def cmd_edits(args: argparse.Namespace) -> int:
    from bbedit.memory.formats import read_edits, write_edits
    from bbedit.types import Edit

    with _open_memory(args) as memory:
        if args.edits_cmd == "add":
            e = memory.add(Edit(subject=args.subject, prompt=args.prompt, target_new=args.target_new,
                                target_old=args.target_old, aliases=tuple(args.alias or ()),
                                **({"id": args.id} if args.id else {}), source="cli"))
            print(e.id)
            if e.supersedes:
                print(f"(supersedes {e.supersedes})", file=sys.stderr)
        elif args.edits_cmd == "list":
            shown = memory.list(include_superseded=args.all)
            for e in shown:
                print(_edit_line(e, memory.is_active(e.id)))
            print(f"{len(memory)} active edits in {memory.path}", file=sys.stderr)
        elif args.edits_cmd == "show":
            e = memory.get(args.id)
            d = e.to_dict()
            d["active"] = memory.is_active(e.id)
            d["history"] = [h.id for h in memory.history(e.id)[1:]]
            print(json.dumps(d, indent=2, ensure_ascii=False))
        elif args.edits_cmd == "rm":
            for i in args.ids:
                memory.get(i)  # every id must exist before anything is removed
            for i in args.ids:
                memory.remove(i)
                print(f"removed {i}")
        elif args.edits_cmd == "import":
            edits = read_edits(args.file, args.format, on_error="skip" if args.skip_bad else "raise",
                               id_prefix=args.id_prefix)
            if args.limit:
                edits = edits[: args.limit]
            fresh = [e for e in edits if e.id not in memory]
            clashes = [e for e in edits if e.id in memory and _fact(memory.get(e.id)) != _fact(e)]
            if clashes:
                from bbedit.errors import DuplicateEdit

                raise DuplicateEdit(
                    f"{len(clashes)} edit(s) in {args.file} reuse ids of different edits already in memory "
                    f"(first: {clashes[0].id!r}); nothing was imported. Import with --id-prefix NAME.")
            added = memory.add_many(fresh, progress=not args.quiet)
            skipped = len(edits) - len(fresh)
            print(f"imported {len(added)} edits" + (f" ({skipped} already present, skipped)" if skipped else ""))
        elif args.edits_cmd == "export":
            n = write_edits(memory.list(include_superseded=args.all), args.file, args.format)
            print(f"exported {n} edits to {args.file}")
    return 0


def _fact(e: Any) -> tuple[str, str, str]:
    return (e.subject, e.prompt, e.target_new)


def cmd_gate(args: argparse.Namespace) -> int:
    if args.gate_cmd == "train":
        from bbedit.scope.train import train_gate

        out = Path(args.out)
        summary = train_gate(Path(args.data), out, n_cases=args.n_cases, cross_fit_folds=args.cross_fit_folds)
        print(json.dumps({k: v for k, v in summary.items() if k != "curve"}, indent=2))
        return 0
    from bbedit.scope.gate import load_gate

    with _open_memory(args) as memory:
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


def cmd_serve_model(args: argparse.Namespace) -> int:
    from bbedit.backends.embedded import serve_forever

    serve_forever(host=args.host, port=args.port, model_path=args.model_path, n_threads=args.threads)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bbedit.server import ServerConfig, serve
    from bbedit.server.config import TOKEN_ENV

    def config(upstream: str) -> ServerConfig:
        return ServerConfig(upstream=upstream, memory=args.memory or default_memory_dir(), editor=args.editor,
                            host=args.host, port=args.port, token=args.token or os.environ.get(TOKEN_ENV) or None,
                            upstream_api_key=args.upstream_api_key, timeout=args.timeout,
                            max_retries=args.retries, max_body_bytes=args.max_body_bytes,
                            gate_threshold=args.gate_threshold, workers=args.workers)

    level = "debug" if args.verbose >= 2 else "info"
    if args.upstream:
        serve(config(args.upstream), log_level=level, torch_threads=args.torch_threads)
        return 0
    from bbedit.backends.embedded import EmbeddedServer

    config("http://127.0.0.1:1/v1")  # refuse bad settings before starting the model
    with EmbeddedServer(n_parallel=args.model_slots) as model_server:
        log.warning("no --upstream: serving in front of the embedded model at %s", model_server.base_url)
        serve(config(model_server.base_url), log_level=level, torch_threads=args.torch_threads)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from bbedit.evaluation.runner import DEFAULT_CACHE, run_suite

    cache = None if args.no_cache else (args.cache_dir or DEFAULT_CACHE)
    for suite in args.suite:
        folder = run_suite(suite, n=args.n, workers=args.workers, data_root=args.data_root,
                           results_root=args.out, cache_dir=cache, report_only=args.report_only)
        print(f"{suite}: wrote {folder / 'results.json'} and {folder / 'report.md'}")
    return 0


def cmd_posteditor(args: argparse.Namespace) -> int:
    if args.pe_cmd == "train":
        from bbedit.editors.postedit.train import TrainConfig, default_out, train

        logging.getLogger("bbedit").setLevel(min(logging.getLogger("bbedit").getEffectiveLevel(), logging.INFO))
        cfg = TrainConfig(out=args.out or str(default_out()), data_root=args.data_root or "", model=args.base_model,
                          n_counterfact=args.n_counterfact, n_zsre=args.n_zsre, epochs=args.epochs, lr=args.lr,
                          rank=args.rank, alpha=2 * args.rank, batch_size=args.batch_size, seed=args.seed,
                          threads=args.threads, served_answers=not args.templates_only)
        summary = train(cfg)
        v = summary["validation"]
        print(f"adapter: {cfg.out} ({summary['adapter_bytes'] / 1e6:.1f} MB); {summary['examples']} examples, "
              f"trained in {summary['train_s'] / 60:.1f} min; held-out keep/edit accuracy {v['decision_accuracy']:.3f}, "
              f"rewrite token accuracy {v['rewrite_token_accuracy']:.3f}")
        return 0
    from bbedit.editors.base import make_editor
    from bbedit.types import Edit

    edit = Edit(subject=args.subject, prompt=args.prompt, target_new=args.target_new, target_old=args.target_old)
    opts = {"adapter": args.adapter} if args.adapter and args.editor == "postedit" else {}
    r = make_editor(args.editor, **opts).rewrite(args.query, args.answer, edit)  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps({"text": r.text, "changed": r.changed, "p_keep": r.p_keep, "latency_s": r.latency_s}))
    else:
        print(r.text)
    return 0


def cmd_whitebox(args: argparse.Namespace) -> int:
    """Edit a local model's weights from an edit memory, or ask a (saved, edited) local model."""
    import time

    from bbedit.backends.transformers_backend import TransformersBackend
    from bbedit.errors import ConfigError

    model = TransformersBackend(args.local_model, threads=args.threads)
    questions = list(args.ask or [])
    if args.wb_cmd == "ask":
        questions = [args.question, *questions]
        for q in questions:
            print(f"Q: {q}\nA: {model.generate([{'role': 'user', 'content': q}], max_tokens=args.max_tokens)}")
        return 0
    from bbedit.whitebox import make_method, save_edited

    memory = _open_memory(args)
    edits = [e for e in memory.list() if not args.ids or e.id in args.ids]
    missing = set(args.ids or ()) - {e.id for e in edits}
    if missing:
        raise ConfigError(f"no active edit with id(s) {', '.join(sorted(missing))} in {memory.path}")
    if not edits:
        raise ConfigError(f"memory {memory.path} has no active edits to apply")
    options: dict[str, Any] = {}
    if args.method != "ft":
        options["stats"] = {"corpus": args.corpus, "n_tokens": args.stats_tokens}
    method = make_method(args.method, **options)
    before = {q: model.generate([{"role": "user", "content": q}], max_tokens=args.max_tokens) for q in questions}
    t0 = time.perf_counter()
    method.statistics(model)
    stats_s = time.perf_counter() - t0
    batch = args.batch or (100 if args.method in ("memit", "alphaedit", "memit_blue", "alphaedit_blue") else 1)
    t0 = time.perf_counter()
    for b in range(0, len(edits), batch):
        method.apply(model, edits[b:b + batch])
    edit_s = time.perf_counter() - t0
    print(f"{args.method}: {len(edits)} edit(s) applied to {model.model_name} in {edit_s:.1f} s "
          f"(statistics {stats_s:.1f} s)")
    for q in questions:
        after = model.generate([{"role": "user", "content": q}], max_tokens=args.max_tokens)
        print(f"Q: {q}\n  before: {before[q]}\n  after:  {after}")
    if args.out:
        out = save_edited(model, args.out, edits, args.method)
        print(f"saved the edited model to {out} (load it with: bbedit whitebox ask --local-model {out} ...)")
    return 0


# -- parser -------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bbedit", description="Edit what black-box language models know.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = p.add_subparsers(dest="cmd", required=True)

    def model_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else the "
                                           "embedded SmolLM2 server)")
        sp.add_argument("--model", help="model name at the endpoint (default: the first it lists)")
        sp.add_argument("--api-key", default=None, help="API key (default: $OPENAI_API_KEY)")
        sp.add_argument("--timeout", type=float, default=60.0, help="seconds per model call")
        sp.add_argument("--max-tokens", type=int, default=64)
        sp.add_argument("--temperature", type=float, default=0.0)
        sp.add_argument("--editor", default="ike", choices=["ike", "postedit", "replace"],
                        help="ike: the edit in context; postedit: the learned local post-editor rewrites the "
                             "answer; replace: the rule-based post-editor")
        sp.add_argument("--ike-mode", choices=["fact", "ike"], default=None, help="IKE prompt style")
        sp.add_argument("--gate-threshold", type=float, default=None, help="override the scope gate threshold")

    def mem_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--memory", type=Path, default=None,
                        help="memory directory (default: $BBEDIT_MEMORY or the user data dir)")

    sp = sub.add_parser("demo", help="edit the embedded model with memory/demo.jsonl; show answers before/after")
    model_opts(sp)
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("ask", help="ask one question through the edit memory")
    sp.add_argument("question")
    sp.add_argument("--json", action="store_true", help="print the answer as JSON")
    model_opts(sp)
    mem_opt(sp)
    sp.set_defaults(func=cmd_ask)

    sp = sub.add_parser("chat", help="interactive multi-turn chat through the edit memory")
    model_opts(sp)
    mem_opt(sp)
    sp.set_defaults(func=cmd_chat)

    sp = sub.add_parser("edits", help="manage the edit memory")
    esub = sp.add_subparsers(dest="edits_cmd", required=True)
    a = esub.add_parser("add", help="add one edit")
    a.add_argument("--subject", required=True)
    a.add_argument("--prompt", required=True, help='e.g. "The CEO of Acme is" or "Who is the CEO of Acme?"')
    a.add_argument("--target-new", required=True)
    a.add_argument("--target-old")
    a.add_argument("--alias", action="append", help="another name of the subject (repeatable)")
    a.add_argument("--id")
    a = esub.add_parser("list", help="list edits")
    a.add_argument("--all", action="store_true", help="include superseded edits")
    a = esub.add_parser("show", help="show one edit as JSON")
    a.add_argument("id")
    a = esub.add_parser("rm", help="remove edits")
    a.add_argument("ids", nargs="+")
    a = esub.add_parser("import", help="import edits (jsonl, counterfact, zsre, knowedit, postedit)")
    a.add_argument("file")
    a.add_argument("--format", default="auto")
    a.add_argument("--limit", type=int, default=0)
    a.add_argument("--skip-bad", action="store_true", help="skip malformed records instead of failing")
    a.add_argument("--id-prefix", default=None,
                   help="prefix of the ids given to imported records (default: the format's, e.g. cf-, zsre-)")
    a.add_argument("--quiet", action="store_true")
    a = esub.add_parser("export", help="export edits")
    a.add_argument("file")
    a.add_argument("--format", default="jsonl")
    a.add_argument("--all", action="store_true", help="include superseded edits")
    for name in ("add", "list", "show", "rm", "import", "export"):
        mem_opt(esub.choices[name])
    sp.set_defaults(func=cmd_edits)

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

    sp = sub.add_parser("eval", help="run benchmark suites (eval/<suite>.yaml); resumes from its call cache")
    sp.add_argument("suite", nargs="+", help="suite YAML file(s)")
    sp.add_argument("--n", type=int, default=None, help="override the number of cases")
    sp.add_argument("--workers", type=int, default=None, help="concurrent model requests")
    sp.add_argument("--data-root", default=None, help="benchmark data folder (default: $BBEDIT_DATA or ../shared/data)")
    sp.add_argument("--out", default=None, help="results root (default: eval/results)")
    sp.add_argument("--cache-dir", default=None, help="model-call cache folder (default: eval/.cache)")
    sp.add_argument("--no-cache", action="store_true", help="keep the call cache in memory only")
    sp.add_argument("--report-only", action="store_true",
                    help="re-render report.md and plots from the suite's existing results.json")
    sp.set_defaults(func=cmd_eval)

    sp = sub.add_parser("posteditor", help="the learned post-editor: train it, or rewrite one answer")
    psub = sp.add_subparsers(dest="pe_cmd", required=True)
    a = psub.add_parser("train", help="LoRA-tune the post-editor on counterfact-train and zsRE-train (CPU)")
    a.add_argument("--out", default=None, help="adapter folder (default: the user data dir; the shipped one is "
                                              "models/postedit-smollm2-135m)")
    a.add_argument("--data-root", default=None, help="benchmark data folder (default: $BBEDIT_DATA or ../shared/data)")
    a.add_argument("--base-model", default=None, help="HF dir/id or .gguf (default: the packaged SmolLM2-135M)")
    a.add_argument("--n-counterfact", type=int, default=450, help="CounterFact training records to use")
    a.add_argument("--n-zsre", type=int, default=300, help="zsRE training records to use")
    a.add_argument("--epochs", type=int, default=1)
    a.add_argument("--lr", type=float, default=1e-3)
    a.add_argument("--rank", type=int, default=8, help="LoRA rank (alpha is twice it)")
    a.add_argument("--batch-size", type=int, default=8)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--threads", type=int, default=None, help="torch threads")
    a.add_argument("--templates-only", action="store_true",
                   help="original answers from templates only (no served model)")
    a = psub.add_parser("rewrite", help="post-edit one answer and print it")
    a.add_argument("--query", required=True)
    a.add_argument("--answer", required=True, help="the original answer to rewrite")
    a.add_argument("--subject", required=True)
    a.add_argument("--prompt", required=True, help="the edit's prompt")
    a.add_argument("--target-new", required=True)
    a.add_argument("--target-old", default=None)
    a.add_argument("--editor", choices=["postedit", "replace"], default="postedit")
    a.add_argument("--adapter", default=None, help="adapter folder (default: the shipped one)")
    a.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_posteditor)

    sp = sub.add_parser("serve", help="OpenAI-compatible editing proxy in front of an upstream, with the "
                                      "edit admin API (/admin/edits)")
    sp.add_argument("--upstream", default=None, help="OpenAI-compatible base URL, e.g. https://api.openai.com/v1 "
                                                     "(default: start the embedded SmolLM2 server)")
    sp.add_argument("--upstream-api-key", default=None,
                    help="API key sent upstream (default: forward the client's Authorization header)")
    sp.add_argument("--editor", default="ike", choices=["ike", "postedit", "replace"])
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--token", default=None, help="bearer token of the admin API (default: $BBEDIT_SERVER_TOKEN); "
                                                  "required unless --host is loopback")
    sp.add_argument("--timeout", type=float, default=120.0, help="seconds per upstream request")
    sp.add_argument("--retries", type=int, default=2, help="retries of failed upstream requests, where safe")
    sp.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024, help="larger request bodies get 413")
    sp.add_argument("--gate-threshold", type=float, default=None, help="override the scope gate threshold")
    sp.add_argument("--workers", type=int, default=4, help="threads for embedding, gate and post-editor")
    sp.add_argument("--model-slots", type=int, default=4, help="parallel slots of the embedded model")
    sp.add_argument("--torch-threads", type=int, default=1,
                    help="torch threads for embedder, gate and post-editor (1 keeps routing fast next to a "
                         "model server on the same cores)")
    mem_opt(sp)
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("whitebox", help="edit a local model's weights (ROME, MEMIT, AlphaEdit, FT-L) from a memory")
    wsub = sp.add_subparsers(dest="wb_cmd", required=True)

    def local_opts(a: argparse.ArgumentParser) -> None:
        a.add_argument("--local-model", default=None, help="HF dir/id, .gguf, 'gemma3-270m' or a saved edited model "
                                                           "(default: the packaged SmolLM2-135M-Instruct)")
        a.add_argument("--threads", type=int, default=None, help="torch threads")
        a.add_argument("--max-tokens", type=int, default=32)

    a = wsub.add_parser("apply", help="apply the memory's active edits to the local model's weights")
    a.add_argument("--method", required=True, choices=method_names())
    a.add_argument("--ids", nargs="*", default=None, help="only these edit ids (default: every active edit)")
    a.add_argument("--batch", type=int, default=None, help="edits per update (default: 100 for MEMIT/AlphaEdit, else 1)")
    a.add_argument("--corpus", default=None, help="text for the key statistics: .txt, .json/.jsonl or a folder "
                                                  "(default: BoolQ passages when present, else model samples)")
    a.add_argument("--stats-tokens", type=int, default=100_000, help="corpus tokens for the statistics")
    a.add_argument("--ask", nargs="*", default=None, help="questions to answer before and after editing")
    a.add_argument("--out", default=None, help="save the edited model to this folder")
    local_opts(a)
    mem_opt(a)
    a = wsub.add_parser("ask", help="ask a local (e.g. saved edited) model")
    a.add_argument("question")
    a.add_argument("--ask", nargs="*", default=None, help="more questions")
    local_opts(a)
    sp.set_defaults(func=cmd_whitebox)

    sp = sub.add_parser("serve-model", help="run the embedded SmolLM2 llama.cpp server standalone")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8080)
    sp.add_argument("--model-path", default=None, help="a GGUF file (default: the packaged SmolLM2)")
    sp.add_argument("--threads", type=int, default=None)
    sp.set_defaults(func=cmd_serve_model)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        for noisy in ("httpx", "httpx2", "faiss", "sentence_transformers", "transformers", "openai"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        with contextlib.suppress(ImportError):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
    from bbedit.errors import BBEditError

    try:
        return int(args.func(args) or 0)
    except BBEditError as e:
        print(f"bbedit: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("bbedit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
