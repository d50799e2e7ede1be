"""Word-level differences between the answer before and after editing, for side-by-side display."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class Span:
    """A piece of an answer; ``changed`` when it is not in the other answer."""

    text: str
    changed: bool


def word_diff(before: str, after: str) -> tuple[list[Span], list[Span]]:
    """``before`` and ``after`` cut into spans, the words that differ marked ``changed`` (spaces between
    two changed words belong to the change)."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    left: list[Span] = []
    right: list[Span] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            _add(left, "".join(a[i1:i2]), False)
            _add(right, "".join(b[j1:j2]), False)
        else:
            if i2 > i1:
                _add(left, "".join(a[i1:i2]), True)
            if j2 > j1:
                _add(right, "".join(b[j1:j2]), True)
    return _joined(left), _joined(right)


def _joined(spans: list[Span]) -> list[Span]:
    """Changed spans separated only by white space become one change ("Maria Okafor", not two)."""
    out: list[Span] = []
    for s in spans:
        if (s.changed and len(out) >= 2 and out[-2].changed and not out[-1].changed
                and not out[-1].text.strip()):
            gap = out.pop()
            out[-1] = Span(out[-1].text + gap.text + s.text, True)
        elif out and out[-1].changed == s.changed:
            out[-1] = Span(out[-1].text + s.text, s.changed)
        else:
            out.append(s)
    return out


def _add(spans: list[Span], text: str, changed: bool) -> None:
    if not text:
        return
    if spans and spans[-1].changed == changed:
        spans[-1] = Span(spans[-1].text + text, changed)
    else:
        spans.append(Span(text, changed))
