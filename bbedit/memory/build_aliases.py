"""Building :mod:`bbedit.memory.aliases`' table of other names from the training data (PopQA's answers
and their alias lists): ``python -m bbedit.memory.build_aliases [--data ../shared/data]``. The rules
are in :mod:`bbedit.memory.aliases`."""

from __future__ import annotations

import argparse
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bbedit.memory.aliases import ALIASES_FILE
from bbedit.memory.subjects import COMMON_WORDS, case_bound, name_key

MIN_QUESTIONS = 3  # an answer needs this many PopQA questions for its aliases to be trusted
MIN_SHARE = 0.9  # ... and an alias must come with it in this share of them
MIN_OWNER = 0.6  # ... and this share of the questions listing the alias must be that answer's
# Countries whose other names PopQA's merged lists leave ambiguous ("UK" comes with the Kingdom of Essex as
# often as with the United Kingdom), written out.
EXTRA: tuple[tuple[str, ...], ...] = (
    ("United Kingdom", "UK", "U.K.", "Britain", "Great Britain", "United Kingdom of Great Britain and Northern Ireland"),
    ("United States of America", "United States", "US", "USA", "U.S.", "U.S.A.", "America"),
    ("Italy", "Italia", "Italian Republic"),
    ("People's Republic of China", "China", "PRC", "Mainland China"),
    ("Soviet Union", "USSR", "Union of Soviet Socialist Republics"),
    ("Russia", "Russian Federation"),
    ("Mexico", "United Mexican States"),
)
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)


def _plain(text: str) -> bool:
    """Letters, digits, spaces and ordinary punctuation only (no emoji flags, no symbols)."""
    return all(unicodedata.category(c)[0] in "LNPZ" for c in text)


def _usable(alias: str, common: set[str]) -> bool:
    letters = _LETTERS.findall(alias)
    if (len(letters) < 2 or not any(c.isupper() for c in alias) or not _plain(alias) or any(c in alias for c in ",()")
            or sum(c.isdigit() for c in alias) > len(letters)):
        return False
    key = name_key(alias)
    if not key:
        return False
    folded = " ".join(key)
    if (folded in COMMON_WORDS or folded in common) and not case_bound(alias):
        return False
    if len(letters) <= 2 and not alias.isupper():  # "Ja", "Ca": a code written as a word
        return False
    return not alias.startswith(("the ", "The ")) and not alias.startswith("'")


def _common_words(data: Path, records: Sequence[dict[str, Any]]) -> set[str]:
    """Words written in lower case in the training prompts (the PopQA ``records``' questions,
    counterfact-train's prompts)."""
    texts: list[str] = [r["question"] for r in records]
    cf = data / "counterfact" / "counterfact-train.json"
    if cf.exists():
        for r in json.loads(cf.read_text()):
            texts += [str(r.get("prompt", "")), str(r.get("rephrase_prompt", "")), str(r.get("locality_prompt", ""))]
    words: set[str] = set()
    for t in texts:
        words.update(w for w in re.findall(r"[^\W\d_]+", t) if w.islower())
    return words


def build(data: str | Path) -> dict[str, Any]:
    """The alias table from ``data`` (``../shared/data``): ``{"groups": [[name, alias, ...], ...], ...}``."""
    data = Path(data)
    records = json.loads((data / "popqa" / "popqa_test.json").read_text())
    common = _common_words(data, records)
    n: Counter[str] = Counter()
    seen: Counter[tuple[str, str]] = Counter()
    for r in records:
        answer = r.get("answer")
        if not isinstance(answer, str) or not answer[:1].isupper():
            continue
        n[answer] += 1
        for alias in set(r.get("aliases") or []):
            if isinstance(alias, str):
                seen[(answer, alias.strip())] += 1
    groups: dict[str, list[str]] = defaultdict(list)
    for (answer, alias), c in sorted(seen.items()):
        if (n[answer] >= MIN_QUESTIONS and c >= MIN_SHARE * n[answer]
                and name_key(alias) != name_key(answer) and _usable(alias, common)):
            groups[answer].append(alias)
    # an alias whose questions are mostly another answer's (PopQA's merged lists put
    # "Republic of Austria" under the Habsburg Monarchy), a bare surname ("Nolan" for Christopher Nolan) and
    # a city's name without "City" ("New York")
    times: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)  # alias key -> {answer: questions}
    for (answer, alias), c in seen.items():
        k = name_key(alias)
        times[k][answer] = max(c, times[k][answer])
    owner: dict[tuple[str, ...], str] = {}
    for k, by_answer in times.items():
        ((first, c),) = by_answer.most_common(1)
        if c >= MIN_OWNER * sum(by_answer.values()):  # the questions listing it are mostly this answer's
            owner[k] = first
    kept = [list(g) for g in EXTRA]
    written = {name_key(x) for g in EXTRA for x in g}
    for answer, aliases in sorted(groups.items()):
        if name_key(answer) in written or any(a in n for a in aliases):
            continue  # a list that holds another answer's own name merges several things ("Austria" under the
            # Holy Roman Empire, "England" under the United Kingdom of Great Britain and Ireland): none is kept
        own = name_key(answer)
        names = [a for a in dict.fromkeys(aliases)
                 if owner.get(name_key(a)) == answer and name_key(a) not in written
                 and not (len(name_key(a)) == 1 and len(own) > 1 and name_key(a)[0] in own)
                 and not (own[-1:] == ("city",) and name_key(a) == own[:-1])]
        if names:
            kept.append([answer, *names])
    return {"what": "other names of PopQA answers (training data), bbedit.memory.build_aliases",
            "min_questions": MIN_QUESTIONS, "min_share": MIN_SHARE, "groups": kept}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the known-aliases table from the training data.")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=str(ALIASES_FILE))
    a = ap.parse_args(argv)
    table = build(a.data)
    Path(a.out).write_text(json.dumps(table, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{len(table['groups'])} names with aliases written to {a.out}")


if __name__ == "__main__":
    main()


__all__ = ["EXTRA", "build"]
