"""``bbedit ask``, ``bbedit chat`` and ``bbedit demo``: questions through the edit memory.

``ask`` and ``chat`` either load the memory, gate, editor and backend in this process, or, given
``--server URL`` (or ``$BBEDIT_SERVER``), send the conversation to a running ``bbedit serve``, which
has them loaded already.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from bbedit.cli.common import edit_line, edited_model, gen_opts, mem_opt, model_opts, open_memory, table
from bbedit.cli.remote import SERVER_ENV, ProxyClient

# options that configure a local pipeline, which a running server has configured already
LOCAL_ONLY = ("memory", "base_url", "gate_threshold", "ike_mode")

Ask = Callable[[list[dict[str, str]]], tuple[str, str | None, dict[str, Any]]]


def _server(args: argparse.Namespace) -> str | None:
    """The server to use: ``--server``, else ``$BBEDIT_SERVER`` unless local options were given.
    Raises :class:`ConfigError` when ``--server`` is combined with options of a local pipeline."""
    from bbedit.errors import ConfigError

    local = [f"--{o.replace('_', '-')}" for o in LOCAL_ONLY if getattr(args, o, None) is not None]
    if args.server:
        if local:
            raise ConfigError(f"--server sends the question to a running `bbedit serve`, which has its own memory, "
                              f"upstream and gate: drop {', '.join(local)}")
        return str(args.server)
    env = os.environ.get(SERVER_ENV)
    return env if env and not local else None


@contextlib.contextmanager
def _asker(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """A function answering a conversation with (text, edit id or None, details), local or remote."""
    url = _server(args)
    explain = bool(getattr(args, "explain", False))
    with contextlib.ExitStack() as stack:
        if url is not None:
            client = stack.enter_context(ProxyClient(url, api_key=args.api_key, model=args.model,
                                                     timeout=args.timeout))

            def remote(messages: list[dict[str, str]]) -> tuple[str, str | None, dict[str, Any]]:
                a = client.chat(list(messages), explain=explain, **gen_opts(args))  # type: ignore[arg-type]
                return a.text, a.edit_id, {"score": a.score, "editor": a.editor, "original": None,
                                           "timings": {"total_s": a.seconds}, "server": client.url,
                                           **({"route": a.route} if explain else {})}

            yield remote
            return
        memory = stack.enter_context(open_memory(args))
        model = edited_model(args, memory, stack)

        def local(messages: list[dict[str, str]]) -> tuple[str, str | None, dict[str, Any]]:
            ans = model.chat(messages, **gen_opts(args))
            route = ans.route.explanation() if explain and ans.route is not None else None
            return ans.text, ans.edit.id if ans.edit else None, {
                "score": ans.score, "original": ans.original_text, "timings": dict(ans.timings),
                **({"route": route} if explain else {})}

        yield local


def cmd_ask(args: argparse.Namespace) -> int:
    with _asker(args) as ask:
        text, edit, info = ask([{"role": "user", "content": args.question}])
    if args.json:
        print(json.dumps({"text": text, "edit": edit, **info}))
    else:
        print(text)
        if edit is not None:
            score = info.get("score")
            how = f" (gate score {score:.2f})" if score is not None else ""
            print(f"\n[edited by {edit}{how}]", file=sys.stderr)
        if args.explain:
            print(explain_text(info.get("route")), file=sys.stderr)
    return 0


def _why_not(c: dict[str, Any]) -> str:
    """Why a candidate the rules scored 0 was not applied ("" when the model scored it)."""
    if c.get("labels_differ"):
        return f"other property: {c['labels_differ'][0]!r}, not {c['labels_differ'][1]!r}"
    if c.get("roles_differ"):
        return f"other holder: {c['roles_differ'][0]!r}, not {c['roles_differ'][1]!r}"
    return ""


def explain_text(route: dict[str, Any] | None) -> str:
    """The routing decision as a table: each candidate's id, the subject name the query used, its
    scope score and whether it was applied (or, for one that names another Wikidata property than the
    query or another holder of its office, which two), against the gate's threshold."""
    if not route:
        return "\n[routing: no explanation (the conversation does not end with a question, or the server sent none)]"
    rows = [[str(c["id"]), str(c.get("subject_named") or "-"), f"{float(c['score']):.3f}",
             "applied" if c["accepted"] else _why_not(c)]
            for c in route.get("candidates", [])]
    head = f"\n[routing: {'in scope' if route.get('in_scope') else 'out of scope'}, threshold {route['threshold']}]"
    if not rows:
        return head + " no candidates"
    cols = ["candidate", "subject named", "score", ""]
    widths = [max(len(r[i]) for r in [cols, *rows]) for i in range(len(cols))]
    return "\n".join([head, *("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                                for r in [cols, *rows])])


def cmd_chat(args: argparse.Namespace) -> int:
    with _asker(args) as ask:
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
            text, edit, _ = ask(history)
            history.append({"role": "assistant", "content": text})
            tag = f"  [edit {edit}]" if edit is not None else ""
            print(f"bot> {text}{tag}")
    return 0


DEMO_EDITOR = "postedit"  # the editor that measured best on the demo with the embedded model (eval/results/demo/)


def demo_rows(model: Any, backend: Any, edits: list[Any], questions: list[dict[str, Any]],
              opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Ask each demo question before and after editing, and judge the answer: a question about an edit
    succeeds only when the answer states the new value and no competing one (the old value, or a value
    the unedited answer gave); a control question only when its answer is the unedited one."""
    from bbedit.evaluation.metrics import strict_edit_success, unchanged

    by_id = {e.id: e for e in edits}
    rows = []
    for q in questions:
        before = backend.generate([{"role": "user", "content": q["question"]}], **opts)
        ans = model.ask(q["question"], **opts)
        applied = [e.id for e in ans.route.edits] if ans.route is not None else []
        expected = q.get("edit")
        if expected:
            e = by_id[expected]
            ok = expected in applied and strict_edit_success(
                ans.text, [e.target_new], [e.target_old] if e.target_old else [], before, q["question"],
                [e.subject, *e.aliases])
            verdict = "edit took effect" if ok else ("routed; answer not edited" if expected in applied
                                                     else "edit not applied")
        else:
            ok = not applied and unchanged(ans.text, before)
            verdict = "untouched" if ok else "changed"
        rows.append({"question": q["question"], "before": before, "after": ans.text,
                     "applied": ",".join(applied) or "-", "expected": expected, "ok": ok, "verdict": verdict})
    return rows


def cmd_demo(args: argparse.Namespace) -> int:
    from bbedit.backends.factory import make_backend
    from bbedit.memory.formats import read_edits
    from bbedit.memory.memory import EditMemory
    from bbedit.pipeline import EditedModel
    from bbedit.prompts import data_dir, demo_questions

    edits = read_edits(data_dir("memory") / "demo.jsonl")
    questions = demo_questions()
    editor = args.editor or DEMO_EDITOR
    with contextlib.ExitStack() as stack:
        backend = make_backend(args.base_url, args.model, args.api_key, timeout=args.timeout, stack=stack)
        memory = stack.enter_context(EditMemory(None))
        memory.add_many(edits)
        model = EditedModel(backend, memory, editor=editor)
        print(f"bbedit demo: {len(edits)} edits from memory/demo.jsonl, model {backend.name}, editor {editor}\n")
        for e in edits:
            print("  " + edit_line(e))
        rows = demo_rows(model, backend, edits, questions, gen_opts(args))
        print()
        table(["question", "before editing", "after editing", "edit applied", "verdict"],
              [(r["question"], r["before"], r["after"], r["applied"], r["verdict"]) for r in rows])
        about = [r for r in rows if r["expected"]]
        controls = [r for r in rows if not r["expected"]]
        print(f"\nedits taking effect: {sum(r['ok'] for r in about)}/{len(about)} (the answer states the new "
              "value and neither the old one nor the unedited answer's)")
        print(f"control questions untouched: {sum(r['ok'] for r in controls)}/{len(controls)} (the same answer as "
              "without bbedit)")
        for r in rows:
            if not r["ok"]:
                print(f"  did not work: {r['question']!r}: {r['verdict']}; answer: {' '.join(r['after'].split())}")
    return 0


def server_opt(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--server", default=None,
                    help=f"URL of a running `bbedit serve` to send the conversation to, instead of loading the "
                         f"memory, gate and model here (default: ${SERVER_ENV} when no local option is given)")


def register(sub: Any) -> None:
    """Add demo, ask and chat to the parser's subcommands."""
    sp = sub.add_parser("demo", help="edit the embedded model with memory/demo.jsonl; show answers before/after, "
                                     "judged")
    model_opts(sp)
    sp.set_defaults(editor=None)  # the demo's own default: DEMO_EDITOR
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("ask", help="ask one question through the edit memory")
    sp.add_argument("question")
    sp.add_argument("--json", action="store_true", help="print the answer as JSON")
    sp.add_argument("--explain", action="store_true",
                    help="also show why an edit was applied or not: the gate's candidates, the subject name the "
                         "question used and each scope score against the threshold (stderr; a 'route' field with --json)")
    model_opts(sp)
    mem_opt(sp)
    server_opt(sp)
    sp.set_defaults(func=cmd_ask)

    sp = sub.add_parser("chat", help="interactive multi-turn chat through the edit memory")
    model_opts(sp)
    mem_opt(sp)
    server_opt(sp)
    sp.set_defaults(func=cmd_chat)
