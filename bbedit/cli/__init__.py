"""The ``bbedit`` command line: demo, ask, chat, edits, gate, eval, posteditor, whitebox, serve, serve-model,
console.

Every failure bbedit expects (bad edit files, unknown ids, an unreachable
model, a corrupt memory) ends with a one-line message on stderr and exit code
1 (2 for usage errors); nothing stored is lost.

One module per command group (``ask``, ``edits``, ``gate``, ``models``, ``eval_cmd``, ``console``), each with
a ``register(subparsers)``; they import what their commands need inside the commands, so
``bbedit --help`` and ``bbedit edits list`` start without torch, transformers or FAISS.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from bbedit.cli import ask, console, edits, eval_cmd, gate, models
from bbedit.cli.common import default_memory_dir

__all__ = ["EXIT_ERROR", "build_parser", "default_memory_dir", "main"]

log = logging.getLogger("bbedit")

EXIT_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every command group registered)."""
    p = argparse.ArgumentParser(prog="bbedit", description="Edit what black-box language models know.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = p.add_subparsers(dest="cmd", required=True)
    ask.register(sub)
    edits.register(sub)
    gate.register(sub)
    eval_cmd.register(sub)
    models.register(sub)
    console.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        for noisy in ("httpx", "httpx2", "faiss", "sentence_transformers", "transformers", "openai"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # this command's own process only (nothing is imported for it): huggingface_hub, and transformers
        # through it, read this when they are first imported
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from bbedit.errors import BBEditError

    try:
        return int(args.func(args) or 0)
    except BBEditError as e:
        print(f"bbedit: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("bbedit: interrupted", file=sys.stderr)
        return 130
