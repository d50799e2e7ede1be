"""``bbedit edits ...``: add, list, show, remove, import and export the edits of a memory.

Reading and removing edits load no model; adding or importing loads only the embedder.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from typing import Any

from bbedit.cli.common import default_memory_dir, edit_line, mem_opt, open_memory, table


def list_edits(args: argparse.Namespace) -> int:
    """``edits list``: read straight from the memory's database (no search structures are built, no
    model is loaded). Raises :class:`MemoryCorrupt` for an unreadable memory."""
    from bbedit.errors import MemoryCorrupt
    from bbedit.memory.memory import NAMESPACE_ENV
    from bbedit.memory.store import DB_NAME, DEFAULT_NAMESPACE, open_store

    path = args.memory or default_memory_dir()
    namespace = args.namespace or os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE
    if isinstance(path, str):
        store = open_store(path, namespace)
    else:
        if path.exists() and not path.is_dir():
            raise MemoryCorrupt(f"{path} is a file, not a memory directory")
        if not (path / DB_NAME).is_file():  # a new memory: create it as any other command would
            with open_memory(args):
                pass
        store = open_store(path, namespace)
    try:
        rows = store.listing(active_only=not args.all)
        n_active = sum(a for _, a in rows)
    finally:
        store.close()
    for e, active in rows:
        print(edit_line(e, active))
    print(f"{n_active} active edits in {store.location}", file=sys.stderr)
    return 0


def _when(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")


def parse_time(text: str) -> float:
    """``--at``: Unix seconds, or an ISO-8601 time (UTC unless it names a zone). Raises ConfigError."""
    from bbedit.errors import ConfigError

    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.datetime.fromisoformat(text)
    except ValueError as e:
        raise ConfigError(f"--at takes Unix seconds or an ISO-8601 time like 2026-12-03T17:30:00Z, got {text!r}") from e
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return t.timestamp()


def _summary(state: Any) -> str:
    if state is None:
        return "(absent)"
    e = state.edit
    flag = "" if state.active else f"  [superseded by {state.superseded_by}]" if state.superseded_by else "  [inactive]"
    return f"{e.prompt} -> {e.target_new}{flag}"


def show_history(memory: Any, edit_id: str | None, limit: int | None, as_json: bool) -> None:
    changes = memory.audit(edit_id, limit=limit)
    if as_json:
        for n, c in enumerate(changes, 1):
            print(json.dumps({**({"version": n} if edit_id else {}), **c.to_dict()}, ensure_ascii=False))
        return
    rows = [[str(n) if edit_id else c.edit_id, _when(c.at), c.op, c.actor or "-", _summary(c.after)]
            for n, c in enumerate(changes, 1)]
    table(["version" if edit_id else "edit", "when (UTC)", "change", "by", "after"], rows, width=60)


def cmd_edits(args: argparse.Namespace) -> int:
    from bbedit.memory.formats import read_edits, write_edits
    from bbedit.types import Edit

    if args.edits_cmd == "list":
        return list_edits(args)
    with open_memory(args) as memory:
        if args.edits_cmd == "add":
            e = memory.add(Edit(subject=args.subject, prompt=args.prompt, target_new=args.target_new,
                                target_old=args.target_old, aliases=tuple(args.alias or ()),
                                **({"id": args.id} if args.id else {}), source="cli"))
            print(e.id)
            if e.supersedes:
                print(f"(supersedes {e.supersedes})", file=sys.stderr)
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
        elif args.edits_cmd == "history":
            show_history(memory, args.id, args.limit or None, args.json)
        elif args.edits_cmd == "revert":
            now = memory.revert(args.id, args.to)
            print(f"reverted {args.id} to version {args.to}: " + (edit_line(now) if now else "removed"))
        elif args.edits_cmd == "restore":
            at = parse_time(args.at)
            n = memory.restore(at)
            print(f"restored {memory.location} ({memory.namespace}) as it was at {_when(at)}: {n} edits changed")
        elif args.edits_cmd == "export":
            n = write_edits(memory.list(include_superseded=args.all), args.file, args.format)
            print(f"exported {n} edits to {args.file}")
    return 0


def _fact(e: Any) -> tuple[str, str, str]:
    return (e.subject, e.prompt, e.target_new)


def register(sub: Any) -> None:
    """Add the edits command group."""
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
    a = esub.add_parser("history", help="what changed, who changed it and when (one edit's versions, or all)")
    a.add_argument("id", nargs="?", default=None, help="an edit id (default: every change in the namespace)")
    a.add_argument("--limit", type=int, default=0, help="only the last N changes")
    a.add_argument("--json", action="store_true", help="one JSON object per change, with before and after")
    a = esub.add_parser("revert", help="put an edit back as it was after one of its versions (see history)")
    a.add_argument("id")
    a.add_argument("--to", type=int, required=True, help="the version (0: before it existed, i.e. remove it)")
    a = esub.add_parser("restore", help="put the whole namespace back as it was at a time")
    a.add_argument("--at", required=True, help="Unix seconds or ISO-8601 (UTC unless a zone is given)")
    for name in ("add", "list", "show", "rm", "import", "export", "history", "revert", "restore"):
        mem_opt(esub.choices[name])
    sp.set_defaults(func=cmd_edits)
