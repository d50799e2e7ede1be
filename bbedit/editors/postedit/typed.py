"""The value an answer gives for an edit whose old value nobody said, found by its kind.

The rules of :mod:`bbedit.editors.postedit.text` find the value an answer gives where it restates the
question or opens a cloze answer with it. Many answers do neither: "the Japanese automaker Nissan from 1968
to 2002. The Nissan Laurel is ..." for "Nissan Laurel is created by", or "an unknown date ..., likely in Florence,
Italy" for "... passed away at". There the value the answer asserts is the candidate most like the edit's
*new* value in kind: a car maker for a car maker, a city for a city, a music genre for a genre. Candidates
are the values the editable sentences name (name runs and numbers: single lower-case words, "jazz" against
"music", are too often matched by a more general word; so a new value in lower case, whose old value is a
common word too, gets no candidate); each is compared with the new value by MiniLM
cosine, and the best one counts if its cosine reaches ``minimum`` (chosen on answers to counterfact-train prompts:
``python -m bbedit.editors.postedit.typed --n 800 --out eval/results/postedit-typed``; PostEdit's files never enter it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from bbedit.editors.postedit import text as T
from bbedit.types import Edit

log = logging.getLogger(__name__)

DEFAULT_MINIMUM = 0.35  # = PostEditConfig.typed_minimum
"""The cosine a candidate needs (see the module docstring for how it was chosen)."""
MAX_CANDIDATES = 16


def candidates(answer: str, edit: Edit, query: str) -> list[str]:
    """The values the editable sentences of ``answer`` name, in order (see the module docstring): name
    runs and numbers of the new value's kind that the question does not name, a value inside the
    subject's name included when the answer names it alone ("the Japanese automaker Nissan" for "Nissan
    Laurel"); a value with others appended to it ("Florence, Italy") counts once, as its first."""
    names = T.subject_names(edit)
    asked = " ".join(x for x in (query, edit.prompt) if x)
    for n in sorted(names, key=len, reverse=True):  # the question's words, but for the subject's name
        asked = T.target_pattern(n).sub(" ", asked)
    exclude = [asked, edit.target_new]
    numeric = any(c.isdigit() for c in edit.target_new)
    out: list[str] = []
    for a, b, ok in T.editable_sentences(answer, edit, query):
        if not ok:
            continue
        sentence = answer[a:b]
        for n in sorted(names, key=len, reverse=True):  # the subject's own mentions are no values
            sentence = T.target_pattern(n).sub(lambda m: "\x00" * len(m.group()), sentence)
        found = [v for v in T.competing_values(sentence, exclude) if v[:1].isdigit() == numeric and "\x00" not in v]
        if a == 0 and not numeric:  # a cloze answer's opening word ("Russia, is a submarine-launched ...")
            first = T._WORD.search(sentence)
            if first and first.group()[:1].isupper() and first.group().casefold() not in T._NOT_VALUES \
                    and not T.mentions(" ".join(exclude), first.group()):
                found.insert(0, first.group())
        appended: set[str] = set()
        for v in found:
            if v in appended:
                continue
            run = T.value_run(sentence, v)
            appended.update(run[1:])
            if v not in out:
                out.append(v)
        if len(out) >= MAX_CANDIDATES:
            break
    return out[:MAX_CANDIDATES]


class TypedValues:
    """Finds the value an answer gives for an edit by its kind (the module docstring). ``embedder``:
    any :class:`~bbedit.memory.embedder.Embedder` (default: the packaged MiniLM, loaded at first use);
    ``minimum``: the cosine the best candidate needs."""

    def __init__(self, embedder: Any = None, minimum: float = DEFAULT_MINIMUM) -> None:
        self._embedder = embedder
        self.minimum = float(minimum)

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from bbedit.memory.embedder import load_embedder

            self._embedder = load_embedder()
        return self._embedder

    def scored(self, answer: str, edit: Edit, query: str) -> list[tuple[str, float]]:
        """Every candidate with its cosine to the new value, in the answer's order; none for a new value
        in lower case ("linebacker", "jazz"): the value it replaces is a common word too, never one of
        the names the candidates are ("NFL", "Pro Bowler" for a position)."""
        if not any(c.isupper() or c.isdigit() for c in edit.target_new):
            return []
        cands = candidates(answer, edit, query)
        if not cands:
            return []
        vecs = np.asarray(self.embedder.embed([edit.target_new, *cands]), np.float32)
        return list(zip(cands, (vecs[1:] @ vecs[0]).tolist(), strict=True))

    def __call__(self, answer: str, edit: Edit, query: str) -> str | None:
        """The value ``answer`` gives for ``edit`` (asked as ``query``), or None when no candidate is of
        the new value's kind."""
        scored = self.scored(answer, edit, query)
        if not scored:
            return None
        value, cos = max(scored, key=lambda vc: vc[1])
        return value if cos >= self.minimum else None


def choose_minimum(rows: Sequence[tuple[list[tuple[str, float]], str]], grid: Sequence[float] | None = None
                   ) -> tuple[float, list[dict[str, float]]]:
    """The ``minimum`` with the most right finds minus wrong ones (the highest of equals), on ``rows`` of (scored candidates, the
    value the answer really gives or "" when it gives none); and the curve (right, wrong, missed per
    minimum)."""
    grid = grid or [round(0.05 * i, 2) for i in range(2, 17)]
    curve = []
    for m in grid:
        right = wrong = missed = 0
        for scored, truth in rows:
            best = max(scored, key=lambda vc: vc[1]) if scored else None
            pick = best[0] if best and best[1] >= m else None
            if pick is None:
                missed += bool(truth)
            elif (truth and T.mentions(pick, truth)) or T.mentions(truth, pick):
                right += 1
            else:
                wrong += 1
        curve.append({"minimum": m, "right": right, "wrong": wrong, "missed": missed})
    best_row = max(curve, key=lambda c: (c["right"] - c["wrong"], c["minimum"]))  # ties: the stricter
    return float(best_row["minimum"]), curve


def main(argv: Sequence[str] | None = None) -> None:
    """Choose ``minimum`` on answers of the packaged chat model to counterfact-train prompts (a seeded
    sample; training data only): the value an answer gives is the fact's true object where the answer
    names it; answers that do not are left out (what they give is unknown)."""
    import argparse
    import json
    import random
    from pathlib import Path

    from bbedit.backends.embedded import EmbeddedServer
    from bbedit.backends.openai_backend import OpenAIBackend

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--out", help="a folder: results.json (the curve and the choice) and report.md go there")
    ap.add_argument("--report-only", action="store_true", help="rewrite --out's report.md from its results.json")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if a.report_only:
        if not a.out:
            ap.error("--report-only needs --out")
        out = Path(a.out)
        write_report(json.loads((out / "results.json").read_text(encoding="utf-8")), out)
        return
    facts = json.loads((Path(a.data) / "counterfact" / "counterfact-train.json").read_text(encoding="utf-8"))
    facts = random.Random(0).sample(facts, a.n)
    typed = TypedValues()
    rows: list[tuple[list[tuple[str, float]], str]] = []
    with EmbeddedServer(n_parallel=1) as server:
        backend = OpenAIBackend(base_url=server.base_url, model=server.model)
        for f in facts:
            edit = Edit(subject=f["subject"], prompt=f["prompt"], target_new=f["target_new"])
            answer = backend.generate([{"role": "user", "content": f["prompt"]}], max_tokens=64, temperature=0.0)
            if T.mentions(answer, f["ground_truth"]) and not T.mentions(f["subject"], f["ground_truth"]):
                rows.append((typed.scored(answer, edit, f["prompt"]), f["ground_truth"]))
    minimum, curve = choose_minimum(rows)
    at = next(c for c in curve if c["minimum"] == minimum)
    result = {"headline": {"minimum": minimum, "answers_with_known_value": len(rows), "answers": a.n,
                           "right": at["right"], "wrong": at["wrong"], "missed": at["missed"]},
              "command": f"python -m bbedit.editors.postedit.typed --n {a.n} --out {a.out or 'DIR'}",
              "curve": curve}
    print(json.dumps(result, indent=1))
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        write_report(result, out)


def write_report(result: dict[str, Any], out: Any) -> None:
    """``report.md`` in folder ``out`` for a result of :func:`main`: the choice and the whole curve."""
    from pathlib import Path

    h = result["headline"]
    lines = [
        "# The typed value finder's minimum cosine",
        "",
        f"Chosen on {h['answers']} answers of the packaged chat model to seeded counterfact-train prompts (training "
        f"data only); {h['answers_with_known_value']} of them name the fact's true object, which is then the value "
        "the answer gives. For each minimum: answers whose best candidate reaches it and is that value (right), "
        "is another (wrong), or none reaches it while the answer gives one (missed). The choice maximises right "
        "minus wrong (ties: the higher minimum).",
        "",
        f"Chosen: **{h['minimum']}** ({h['right']} right, {h['wrong']} wrong, {h['missed']} missed).",
        "",
        "| minimum | right | wrong | missed |",
        "|---|---|---|---|",
        *(f"| {c['minimum']} | {c['right']} | {c['wrong']} | {c['missed']} |" for c in result["curve"]),
        "",
        f"Reproduce: `{result['command']}`",
        "",
    ]
    Path(out, "report.md").write_text("\n".join(lines), encoding="utf-8")


__all__ = ["DEFAULT_MINIMUM", "TypedValues", "candidates", "choose_minimum"]


if __name__ == "__main__":
    main()
