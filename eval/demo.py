"""The demo (`bbedit demo`) with every editor on the embedded model, judged as the demo judges: a
question about an edit succeeds only when the answer states the new value and no competing one (the
old value, or the value the unedited answer gave); a control question only when its answer is the
unedited one. The demo's default editor (``DEMO_EDITOR`` in ``bbedit/cli/ask.py``) is the best here.

    PYTHONPATH=. python eval/demo.py        (make eval-demo)
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from bbedit.backends.factory import make_backend
from bbedit.cli.ask import DEMO_EDITOR, demo_rows
from bbedit.evaluation.report import md_table, write_results
from bbedit.memory.formats import read_edits
from bbedit.memory.memory import EditMemory
from bbedit.pipeline import EditedModel
from bbedit.prompts import data_dir, demo_questions

EDITORS = ("ike", "postedit", "replace")


def main() -> Path:
    t0 = time.perf_counter()
    edits = read_edits(data_dir("memory") / "demo.jsonl")
    questions = demo_questions()
    results: dict[str, list[dict[str, object]]] = {}
    with contextlib.ExitStack() as stack:
        backend = make_backend(stack=stack)
        for name in EDITORS:
            memory = stack.enter_context(EditMemory(None))
            memory.add_many(edits)
            results[name] = demo_rows(EditedModel(backend, memory, editor=name), backend, edits, questions,
                                      {"max_tokens": 64, "temperature": 0.0})
    headline: dict[str, float] = {}
    rows = []
    for name, rs in results.items():
        about = [r for r in rs if r["expected"]]
        controls = [r for r in rs if not r["expected"]]
        headline[f"{name}_edits_taking_effect"] = sum(bool(r["ok"]) for r in about) / len(about)
        headline[f"{name}_controls_untouched"] = sum(bool(r["ok"]) for r in controls) / len(controls)
        rows.append([name, f"{sum(bool(r['ok']) for r in about)}/{len(about)}",
                     f"{sum(bool(r['ok']) for r in controls)}/{len(controls)}",
                     "; ".join(str(r["question"]) for r in rs if not r["ok"]) or "-"])
    headline["wall_s"] = time.perf_counter() - t0
    answers = [[name, str(r["question"]), " ".join(str(r["after"]).split())[:160], str(r["verdict"])]
               for name, rs in results.items() for r in rs if r["expected"]]
    report = f"""# The demo with every editor (embedded SmolLM2-135M-Instruct, greedy, 64 tokens)

{len(edits)} demo edits, {len(questions)} questions ({sum(1 for q in questions if q.get('edit'))} about an edit,
the rest controls). An edit takes effect when the answer states the new value and neither the old value
nor the value the unedited answer gave (strict judging); a control is untouched when its answer is the
unedited one. The demo's default editor is `{DEMO_EDITOR}`.

{md_table(["editor", "edits taking effect", "controls untouched", "did not work"], rows)}

Answers to the questions about an edit:

{md_table(["editor", "question", "answer after editing", "verdict"], answers)}
"""
    return write_results("demo", headline, {"rows": results}, report, "PYTHONPATH=. python eval/demo.py (make eval-demo)")


if __name__ == "__main__":
    print(main())
