"""Text operations shared by the post-editors and their training data: finding a target in an
answer and replacing it minimally (matching case, fixing "a"/"an")."""

from __future__ import annotations

import re

from bbedit.types import Edit


def target_pattern(target: str) -> re.Pattern[str]:
    """``target`` as a case-insensitive pattern that does not match inside a longer word."""
    return re.compile(r"(?<!\w)" + re.escape(target.strip()) + r"(?!\w)", re.IGNORECASE)


def mentions(text: str, target: str | None) -> bool:
    """Whether ``text`` names ``target`` (whole words, any case)."""
    return bool(target and target.strip()) and target_pattern(str(target)).search(text) is not None


def _article(prev: str, word: str) -> str:
    """Fix an article right before a replaced word ("an actor" -> "a pianist")."""
    m = re.search(r"(?<!\w)(a|an|A|An)(\s+)$", prev)
    if not m:
        return prev
    vowel = word[:1].lower() in "aeiou"
    art = m.group(1)
    new = ("an" if vowel else "a") if art.islower() else ("An" if vowel else "A")
    return prev[:m.start(1)] + new + m.group(2)


def replace_target(text: str, old: str, new: str) -> str:
    """``text`` with every whole-word mention of ``old`` replaced by ``new``: a capitalised
    mention gets a capitalised replacement, and a preceding "a"/"an" agrees with it."""
    pat = target_pattern(old)
    out, last = [], 0
    for m in pat.finditer(text):
        word = new
        if m.group(0)[:1].isupper() and word[:1].islower():
            word = word[:1].upper() + word[1:]
        out.append(_article(text[last:m.start()], word))
        out.append(word)
        last = m.end()
    out.append(text[last:])
    return "".join(out)



def _short(answer: str) -> bool:
    """An answer short enough to be replaced by the fact sentence rather than kept after it."""
    return len(answer.split()) < 8


def state_fact(answer: str, fact: str) -> str:
    """An answer that does not name the old value: a short one is replaced by the fact sentence, a
    longer one keeps its text after it."""
    return fact if _short(answer) else f"{fact} {answer.strip()}"


def script_for(edit: Edit, answer: str, fact: str) -> str:
    """The edit script that turns ``answer`` into its minimal rewrite for ``edit``: "<span> => <new>"
    where the answer names the old value (the span as written there), else "= <fact>" (a short answer
    is replaced) or "+ <fact>" (the fact goes before a longer answer)."""
    m = target_pattern(edit.target_old).search(answer) if edit.target_old and edit.target_old.strip() else None
    if m:
        return f"{m.group(0)} => {edit.target_new}"
    return ("= " if _short(answer) else "+ ") + fact


def apply_script(answer: str, script: str, fact: str) -> str:
    """``answer`` after an edit script (see :func:`script_for`). "=" and "+" state ``fact`` (whatever
    text follows them: the model only chooses the operation). A "<span> => <new>" line whose span the
    answer does not contain is ignored; if no line applies, the fact is stated as for an answer that
    does not name the old value."""
    out, applied = answer, False
    for line in script.strip().splitlines():
        line = line.strip()
        if line.startswith("="):  # the fact itself is the edit's own sentence, never decoded text
            return fact
        if line.startswith("+"):
            return f"{fact} {answer.strip()}"
        span, sep, new = line.partition(" => ")
        if sep and span.strip() and new.strip() and mentions(out, span):
            out, applied = replace_target(out, span.strip(), new.strip()), True
    return out if applied else state_fact(answer, fact)
