"""What several command groups share: where the memory is, the model options, printing helpers."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MEMORY_ENV = "BBEDIT_MEMORY"


def memory_location(text: str) -> Path | str:
    """A ``--memory`` value: a PostgreSQL URL stays a string, anything else is a directory."""
    return text if text.split("://", 1)[0].lower() in ("postgresql", "postgres") else Path(text)


def default_memory_dir() -> Path | str:
    """``$BBEDIT_MEMORY`` (a directory or a PostgreSQL URL) or the user's data dir
    (e.g. ~/.local/share/bbedit/memory)."""
    env = os.environ.get(MEMORY_ENV)
    if env:
        return memory_location(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("bbedit")) / "memory"


def cli_actor() -> str:
    """Who the history records for a command-line write: ``cli:<login name>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def open_memory(args: argparse.Namespace) -> Any:
    """The memory named by ``--memory`` (or the default) and ``--namespace``; raises
    :class:`MemoryCorrupt` if unreadable, :class:`StoreUnavailable` if its database cannot be reached."""
    from bbedit.memory.memory import EditMemory

    return EditMemory(args.memory or default_memory_dir(), namespace=getattr(args, "namespace", None),
                      actor=cli_actor(), listen=False)


def edited_model(args: argparse.Namespace, memory: Any, stack: contextlib.ExitStack) -> Any:
    """An :class:`EditedModel` over the backend, gate and editor the options name."""
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


def gen_opts(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_tokens": args.max_tokens, "temperature": args.temperature}


def edit_line(e: Any, active: bool = True) -> str:
    old = f" (was: {e.target_old})" if e.target_old else ""
    flag = "" if active else "  [superseded]"
    return f"{e.id}  {e.prompt} -> {e.target_new}{old}{flag}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int = 38) -> None:
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
    sp.add_argument("--memory", type=memory_location, default=None,
                    help="memory directory or PostgreSQL URL (postgresql://user@host/db) (default: $BBEDIT_MEMORY "
                         "or the user data dir)")
    sp.add_argument("--namespace", default=None,
                    help="which memory of a shared database (default: the URL's ?namespace=, $BBEDIT_NAMESPACE, "
                         "or 'default')")
