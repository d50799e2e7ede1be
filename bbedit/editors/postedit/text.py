"""Text operations shared by the post-editors and their training data: finding a target in an
answer and replacing it minimally (matching case, fixing "a"/"an")."""

from __future__ import annotations

import re
from collections.abc import Iterable

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



# Values an answer asserts: capitalised name runs ("Elon Musk", "United States of America") and numbers
_CAP = r"[A-ZÀ-ÖØ-Þ][\w'\-]*"
_VALUE_RUN = re.compile(_CAP + r"(?:\s+(?:(?:of|de|da|del|von|van|la|le|du|and|&)\s+)?" + _CAP + r")*"
                        r"|\d(?:[\d,.]*\d)?", re.UNICODE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# capitalised words that are not values: function words, pronouns, titles, dates' names
_NOT_VALUES = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "he", "she", "his", "her", "they", "their",
    "them", "we", "our", "you", "your", "i", "me", "my", "who", "what", "when", "where", "which", "why", "how",
    "is", "was", "are", "be", "and", "or", "of", "in", "on", "at", "to", "for", "by", "with", "from", "as", "so",
    "no", "not", "yes", "also", "however", "sure", "well", "today", "currently", "mr", "mrs", "ms", "dr", "sir",
    "ceo", "cto", "cfo", "founder", "president", "chairman", "company", "inc", "ltd", "january", "february",
    "march", "april", "may", "june", "july", "august", "september", "october", "november", "december", "monday",
    "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "according"
})


def competing_values(text: str, exclude: Iterable[str] = ()) -> list[str]:
    """The values ``text`` asserts, in order: capitalised name runs and numbers, without leading
    function words ("The Eiffel Tower" -> "Eiffel Tower"), minus runs that occur in ``exclude`` (the
    question, the subject and its aliases, the new value) and one-word runs that open a sentence
    ("However", "Paris is ..." alike: a capitalised first word is no evidence of a name)."""
    skip = " ".join(exclude)
    out: list[str] = []
    for m in _VALUE_RUN.finditer(text):
        words = _WORD.findall(m.group())
        while words and words[0].casefold() in _NOT_VALUES:
            words = words[1:]
        if not words or all(w.casefold() in _NOT_VALUES for w in words):
            continue
        value = " ".join(words)
        sentence_start = not text[:m.start()].strip() or text[:m.start()].rstrip()[-1:] in ".!?:\n"
        if len(words) == 1 and sentence_start and not value[:1].isdigit():
            continue
        if mentions(skip, value) or (len(words) == 1 and any(mentions(skip, w) for w in words)) or value in out:
            continue
        out.append(value)
    return out


def _content(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text) if len(w) > 2 and w.casefold() not in _NOT_VALUES}


_TRAILING_THE = re.compile(r"(?<!\w)the\s+$")
RESTATED = 0.5  # share of the question's content words the answer must repeat before the value it gives


def _value_spans(text: str, exclude: Iterable[str], numeric: bool, asked: str) -> list[tuple[int, int]]:
    """Character spans of the value ``text`` gives for the question ``asked``: its first competing value
    of the kind asked (a number when ``numeric``, else a name) in a sentence that restates the
    question before it ("The CEO of Acme is Elon Musk": at least :data:`RESTATED` of the question's
    content words), with the values appended to it by a comma ("Paris, France"; "the United States,
    USA"); [] when there is none. An answer that does not restate the question gives no value a rule
    can find ("the 13th century, is a popular Marathi play"), nor does one to a cloze prompt ("Kalamazoo
    County, in" → "Michigan, is a county ..."): measured on PostEdit's recorded answers, the first name
    such an answer gives after restating is too often another fact's."""
    want = _content(asked)
    if not want or not asked.rstrip().endswith("?"):  # a cloze prompt's answer goes on from it: no restating
        return []
    for v in competing_values(text, exclude):
        if v[:1].isdigit() != numeric:
            continue
        m = target_pattern(v).search(text)
        if m is None:
            continue
        sentence = re.split(r"(?<=[.!?])\s+", text[:m.start()])[-1]
        if len(_content(sentence) & want) >= RESTATED * len(want):
            return _appended(text, m.start(), m.end())
        return []  # the first value of its kind decides: a later one is about something else
    return []


def _appended(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The span ``text[start:end]`` and what is appended to it: a parenthesis ("(BBC)") and values
    after commas ("Paris, France")."""
    spans = [(start, end)]
    paren = re.match(r"\s*\([^()\n]{1,40}\)", text[end:])  # "the British Broadcasting Corporation (BBC)"
    if paren:
        spans.append((end + paren.end() - 1, end + paren.end()))
    while True:
        nxt = re.match(r",\s*(?:the\s+)?(" + _VALUE_RUN.pattern + ")", text[spans[-1][1]:])
        if not nxt or not nxt.group(1)[:1].isupper():
            break
        spans.append((spans[-1][1] + nxt.start(1), spans[-1][1] + nxt.end(1)))
    return spans


def _exclude(edit: Edit, query: str) -> list[str]:
    return [query, edit.prompt, edit.subject, *edit.aliases, edit.target_new]


def _edit_value_spans(answer: str, edit: Edit, query: str) -> list[tuple[int, int]]:
    """:func:`_value_spans` of ``answer`` for ``edit``, asked as ``query`` (else its own prompt)."""
    return _value_spans(answer, _exclude(edit, query), any(c.isdigit() for c in edit.target_new), query or edit.prompt)


def asserted_values(text: str, new: Iterable[str], question: str, exclude: Iterable[str] = ()) -> list[str]:
    """What ``text`` (an unedited answer to ``question``) asserts for the fact whose new value is
    ``new``: its value of that kind and the values appended to it ("Paris, France" -> Paris, France)."""
    new = list(new)
    spans = _value_spans(text, [question, *exclude, *new], any(c.isdigit() for t in new for c in t), question)
    return [text[a:b] for a, b in spans]


def value_span(answer: str, edit: Edit, query: str = "") -> str | None:
    """The text of the value ``answer`` gives for ``edit``'s question, with any value appended to it by
    a comma ("Paris, France"); None when it gives none."""
    spans = _edit_value_spans(answer, edit, query)
    return answer[spans[0][0]:spans[-1][1]] if spans else None


def replace_value(answer: str, edit: Edit, query: str = "") -> str | None:
    """``answer`` with the value it gives for ``edit``'s question replaced by the new value: the old
    value's first mention when it names it, else the value :func:`value_span` finds, either with any
    value appended to it by a comma ("Paris, France" -> "Rome"); None when it gives none. A "the"
    before a one-word new value goes ("born in the United States" -> "born in Canada")."""
    old = edit.target_old or ""
    m = target_pattern(old).search(answer) if old.strip() else None
    if m is not None:
        spans = _appended(answer, m.start(), m.end())
        rest = answer[spans[-1][1]:]
        if mentions(rest, old):  # later mentions of the old value change as well
            rest = replace_target(rest, old, edit.target_new)
        answer = answer[:spans[-1][1]] + rest
    else:
        spans = _edit_value_spans(answer, edit, query)
    if not spans:
        return None
    start, end = spans[0][0], spans[-1][1]
    head = answer[:start]
    if len(edit.target_new.split()) == 1:
        head = _TRAILING_THE.sub("", head)
    word = edit.target_new
    if answer[start:start + 1].isupper() and word[:1].islower():
        word = word[:1].upper() + word[1:]
    return _article(head, word) + word + answer[end:]


def _short(answer: str) -> bool:
    """An answer short enough to be replaced by the fact sentence rather than kept after it."""
    return len(answer.split()) < 8


def state_fact(answer: str, fact: str) -> str:
    """An answer that does not name the old value: a short one is replaced by the fact sentence, a
    longer one keeps its text after it."""
    return fact if _short(answer) else f"{fact} {answer.strip()}"


def script_for(edit: Edit, answer: str, fact: str, query: str | None = None) -> str:
    """The edit script that turns ``answer`` into its minimal rewrite for ``edit``: "<span> => <new>"
    where the answer names the old value (the span as written there), or, given the ``query``, the
    value it gives in its place (:func:`value_span`: the old value unknown, phrased otherwise or
    invented by the model); else "= <fact>" (a short answer is replaced) or "+ <fact>" (the fact goes
    before a longer answer)."""
    m = target_pattern(edit.target_old).search(answer) if edit.target_old and edit.target_old.strip() else None
    if m:
        return f"{m.group(0)} => {edit.target_new}"
    if query is not None and (value := value_span(answer, edit, query)) is not None:
        return f"{value} => {edit.target_new}"
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
