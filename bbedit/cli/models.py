"""Commands that run models: ``serve``, ``serve-model``, ``posteditor ...`` and ``whitebox ...``."""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

from bbedit.cli.common import default_memory_dir, mem_opt, open_memory
from bbedit.whitebox.registry import method_names, method_spec

log = logging.getLogger("bbedit")


def cmd_serve_model(args: argparse.Namespace) -> int:
    from bbedit.backends.embedded import serve_forever

    serve_forever(host=args.host, port=args.port, model_path=args.model_path, n_threads=args.threads)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bbedit.memory.memory import NAMESPACE_ENV
    from bbedit.server import ServerConfig, serve
    from bbedit.server.config import TOKEN_ENV

    def config(upstream: str) -> ServerConfig:
        return ServerConfig(upstream=upstream, memory=args.memory or default_memory_dir(), editor=args.editor,
                            host=args.host, port=args.port, token=args.token or os.environ.get(TOKEN_ENV) or None,
                            upstream_api_key=args.upstream_api_key, timeout=args.timeout,
                            max_retries=args.retries, max_body_bytes=args.max_body_bytes,
                            gate_threshold=args.gate_threshold, workers=args.workers,
                            namespace=args.namespace or os.environ.get(NAMESPACE_ENV) or "default",
                            access=access)

    access = None
    if args.namespaces:
        from bbedit.server.tenants import NamespaceAccess

        access = NamespaceAccess.from_file(args.namespaces,
                                           default=args.namespace or os.environ.get(NAMESPACE_ENV) or "default")

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

    memory = open_memory(args)
    edits = [e for e in memory.list() if not args.ids or e.id in args.ids]
    missing = set(args.ids or ()) - {e.id for e in edits}
    if missing:
        raise ConfigError(f"no active edit with id(s) {', '.join(sorted(missing))} in {memory.path}")
    if not edits:
        raise ConfigError(f"memory {memory.path} has no active edits to apply")
    spec = method_spec(args.method)
    options: dict[str, Any] = {}
    if spec.load().uses_key_statistics:
        options["stats"] = {"corpus": args.corpus, "n_tokens": args.stats_tokens}
    method = make_method(args.method, **options)
    before = {q: model.generate([{"role": "user", "content": q}], max_tokens=args.max_tokens) for q in questions}
    t0 = time.perf_counter()
    method.statistics(model)
    stats_s = time.perf_counter() - t0
    batch = args.batch or spec.batch
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


def register(sub: Any) -> None:
    """Add serve, serve-model, posteditor and whitebox."""
    sp = sub.add_parser("posteditor", help="the learned post-editor: train it, or rewrite one answer")
    psub = sp.add_subparsers(dest="pe_cmd", required=True)
    a = psub.add_parser("train", help="LoRA-tune the post-editor on counterfact-train and zsRE-train (CPU)")
    a.add_argument("--out", default=None, help="adapter folder (default: the user data dir; the shipped one is "
                                              "models/postedit-smollm2-135m)")
    a.add_argument("--data-root", default=None, help="benchmark data folder (default: $BBEDIT_DATA, else the first that exists of "
                                                       "<user data dir>/bbedit/data and shared/data beside a source checkout)")
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
    sp.add_argument("--namespaces", default=None, metavar="FILE",
                    help="JSON/YAML file of namespaces: which API keys or header reach which memory, admin "
                         "tokens per namespace (see bbedit.server.tenants)")
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
    a.add_argument("--batch", type=int, default=None, help="edits per update (default: the method's registered batch: 100 for MEMIT/AlphaEdit, else 1)")
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
