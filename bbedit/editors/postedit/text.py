"""Text operations shared by the post-editors and their training data: finding a target in an
answer and replacing it minimally (matching case, fixing "a"/"an")."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence

from bbedit import dialogue
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
_NAME_JOINERS = ("of", "de", "da", "del", "von", "van", "la", "le", "du", "and", "&")  # "Bank of England"
_VALUE_RUN = re.compile(_CAP + r"(?:\s+(?:(?:" + "|".join(_NAME_JOINERS) + r")\s+)?" + _CAP + r")*"
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


# a cloze prompt's answer that goes on from it with a value and a stop: "Italy, was a basketball player"
# (or a parenthesis and a stop: "NPR (National Public Radio).")
_STOP_AHEAD = r"(?=\s*(?:[,.;:!\n]|$|\([^()\n]{1,40}\)\s*(?:[,.;:!\n]|$)))"
_OPENING = re.compile(r"\s*(?:the\s+)?(" + _VALUE_RUN.pattern + r")" + _STOP_AHEAD)


# ... or with a few words that describe the value before it: "British car manufacturer Triumph, part of",
# "the city of Moscow, Russia.", "music group Gong."
_DESCRIBED = re.compile(r"\s*(?:(?:the|a|an)\s+)?((?:[\w'\-]+\s+){1,4}?)(" + _VALUE_RUN.pattern + r")" + _STOP_AHEAD)


def _opening_value(text: str, exclude: Iterable[str], numeric: bool, names: Sequence[str] = ()) -> list[tuple[int, int]]:
    """The value an answer to a cloze prompt opens with, and what is appended to it ("Orlando, Florida,
    United States."), also after a few words that describe it ("British car manufacturer Triumph,", "the
    city of Moscow, Russia."); [] when it opens otherwise ("the 13th century" for a place; "the German
    automobile manufacturer BMW in the late 1930s", where the sentence goes on). A value inside one of
    the subject's ``names`` counts when the answer gives it alone ("the Italian car manufacturer Ferrari,"
    to "Ferrari Daytona, developed by"; never a whole name). Before the describing
    words were read, on PostEdit's recorded CounterFact answers (cloze queries in scope, old value known)
    it found a value in 546 of 1,000, the old value itself in 467 of them, and most others the answer's
    own value for the question ("Paris, France" where the old value is France)."""
    m = _OPENING.match(text)
    if m is not None and m.group(1).casefold() in _ABBREVIATIONS and text[m.end(1):m.end(1) + 1] == ".":
        m = None  # "St. Eutrope Church in Arles": an abbreviation, not a value
    group = 1
    if m is None:
        m, group = _DESCRIBED.match(text), 2
        desc = m.group(1).split() if m is not None else []
        if desc and (not any(w[:1].islower() for w in desc)
                     or (len(desc) > 1 and desc[-1] in _NAME_JOINERS and desc[-2][:1].isupper())):
            return []  # "United States Navy Reserve,", "Union of European Football Associations": one name
    if m is None or m.group(group)[:1].isdigit() != numeric:
        return []
    words = [w for w in _WORD.findall(m.group(group)) if w.casefold() not in _NOT_VALUES]
    skip = " ".join(exclude)
    for name in sorted((n for n in names if n.strip()), key=len, reverse=True):  # the words of its name may be
        skip = target_pattern(name).sub(" ", skip)  # values, the name itself not
    if not words or any(_same_name(m.group(group), n) or _same_name(" ".join(words), n) for n in names) \
            or mentions(skip, m.group(group)) or mentions(skip, " ".join(words)):
        return []
    return _appended(text, m.start(group), m.end(group))


def _same_name(value: str, name: str) -> bool:
    return " ".join(_WORD.findall(value)).casefold() == " ".join(_WORD.findall(name)).casefold()


def _value_spans(text: str, exclude: Iterable[str], numeric: bool, asked: str,
                 opening: bool = True, names: Sequence[str] = ()) -> list[tuple[int, int]]:
    """Character spans of the value ``text`` gives for the question ``asked``: its first competing value
    of the kind asked (a number when ``numeric``, else a name) in a sentence that restates the
    question before it ("The CEO of Acme is Elon Musk": at least :data:`RESTATED` of the question's
    content words), with the values appended to it by a comma ("Paris, France"; "the United States,
    USA"); [] when there is none. An answer that does not restate the question gives no value a rule
    can find ("the 13th century, is a popular Marathi play"), nor does one to a cloze prompt ("Kalamazoo
    County, in" → "Michigan, is a county ..."): measured on PostEdit's recorded answers, the first name
    such an answer gives after restating is too often another fact's. There, with ``opening`` (``text``
    is the start of the answer), the value it opens with counts (:func:`_opening_value`, which may find a
    value inside the subject's ``names``)."""
    want = _content(asked)
    if not want:
        return []
    if not asked.rstrip().endswith("?"):  # a cloze prompt's answer goes on from it: no restating
        cloze = not asked.rstrip().endswith((".", "!"))  # "Tell me about Acme." is a request, not a cloze
        return _opening_value(text, exclude, numeric, names) if opening and cloze else []
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
    """The span ``text[start:end]`` and what is appended to it: a parenthesis ("(BBC)": its inside,
    then its closing bracket), another name for it (", also known as Medina") and values after commas
    ("Paris, France")."""
    if text[end:end + 1] == "." and text[:end].rsplit(None, 1)[-1].casefold() in _ABBREVIATIONS \
            and re.match(r"\.[,;:)]|\.\s+[a-z]", text[end:]):
        end += 1  # "Apple Inc., specifically": the stop is the abbreviation's
    spans = [(start, end)]
    paren = re.match(r"\s*\(([^()\n]{1,40})\)", text[end:])  # "the British Broadcasting Corporation (BBC)"
    if paren:
        spans += [(end + paren.start(1), end + paren.end(1)), (end + paren.end() - 1, end + paren.end())]
    aka = re.match(r",?\s+(?:also known as|a\.k\.a\.|aka)\s+(?:the\s+)?(" + _VALUE_RUN.pattern + ")", text[spans[-1][1]:])
    if aka and aka.group(1)[:1].isupper():  # "Al Madinah Al Munawwarah, also known as Medina"
        spans.append((spans[-1][1] + aka.start(1), spans[-1][1] + aka.end(1)))
    while True:
        nxt = re.match(r",\s*(?:the\s+)?(" + _VALUE_RUN.pattern + ")", text[spans[-1][1]:])
        if not nxt or not nxt.group(1)[:1].isupper():
            break
        spans.append((spans[-1][1] + nxt.start(1), spans[-1][1] + nxt.end(1)))
    return spans


def _span_values(text: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    """The values that spans from :func:`_appended` name: their texts, without the closing bracket that
    is there only to carry a replacement past a parenthesis."""
    return [text[a:b] for a, b in spans if _WORD.search(text[a:b])]


def _exclude(edit: Edit, query: str) -> list[str]:
    return [query, edit.prompt, edit.subject, *edit.aliases, edit.target_new]


def _edit_value_spans(answer: str, edit: Edit, query: str, opening: bool = True) -> list[tuple[int, int]]:
    """:func:`_value_spans` of ``answer`` for ``edit``, asked as ``query`` (else its own prompt)."""
    return _value_spans(answer, _exclude(edit, query), any(c.isdigit() for c in edit.target_new), query or edit.prompt,
                        opening, subject_names(edit))


def asserted_values(text: str, new: Iterable[str], question: str, exclude: Iterable[str] = ()) -> list[str]:
    """What ``text`` (an unedited answer to ``question``) asserts for the fact whose new value is
    ``new``: its value of that kind and the values appended to it ("Paris, France" -> Paris, France)."""
    new = list(new)
    spans = _value_spans(text, [question, *exclude, *new], any(c.isdigit() for t in new for c in t), question)
    return _span_values(text, spans)


def value_span(answer: str, edit: Edit, query: str = "") -> str | None:
    """The text of the value ``answer`` gives for ``edit``'s question, with any value appended to it by
    a comma ("Paris, France"); None when it gives none."""
    spans = _edit_value_spans(answer, edit, query)
    return answer[spans[0][0]:spans[-1][1]] if spans else None


_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "mt", "no", "inc", "ltd", "co", "corp",
                            "gen", "col", "lt", "sgt", "prof", "rev", "fr", "ft", "approx", "est", "e.g", "i.e", "u.s",
                            "u.k", "etc"})
_BOUNDARY = re.compile(r"[.!?]+[\"'\u201d\u2019)]*\s+|\n\s*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``text`` cut into sentences, as (start, end) spans that partition it (each keeps the space after
    it). A stop after an abbreviation or an initial ("Mr.", "F.W.") or before a lower-case word does
    not end a sentence; a line break always does."""
    out: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if "\n" not in m.group():
            word = re.search(r"([\w.]+)[.!?]*[\"'\u201d\u2019)]*\s+$", text[start:m.end()])
            token = word.group(1).rstrip(".").casefold() if word else ""
            after = text[m.end():m.end() + 1]
            initial = len(token.rsplit(".", 1)[-1]) == 1 and token[-1:].isalpha()  # "F.W.", "J."
            if ((token in _ABBREVIATIONS or initial) and m.group()[:1] == ".") \
                    or after.islower():
                continue
        if m.end() < len(text):
            out.append((start, m.end()))
            start = m.end()
    if start < len(text) or not out:
        out.append((start, len(text)))
    return out


_PRONOUN_LEAD = re.compile(r"\s*(?:he|she|it|they|his|her|its|their|this|the company|the band|the team|the film)\b",
                           re.IGNORECASE)


# words of organisations' and places' names: "Football" in "Kazakhstan Football Federation" is no surname
_GENERIC_NAME_WORDS = frozenset({
    "football", "federation", "university", "club", "team", "national", "museum", "river", "mountains", "mountain",
    "city", "county", "district", "church", "school", "college", "association", "party", "league", "cup", "award",
    "prize", "film", "series", "records", "band", "group", "society", "institute", "airport", "station", "street",
    "park", "lake", "island", "islands", "bay", "sea", "ocean", "kingdom", "republic", "state", "province", "region",
    "castle", "bridge", "tower", "hall", "house", "theatre", "theater", "festival", "orchestra", "army", "navy",
    "force", "corporation", "bank", "hospital", "library", "centre", "center", "stadium", "railway", "highway",
    "road", "union", "council", "committee", "palace", "square", "valley", "desert", "forest", "township",
    "municipality", "village", "parish", "game", "games", "awards", "show", "studio", "studios", "airlines",
    "motors", "system", "systems", "project", "foundation", "championship", "open", "olympics",
})
# words that open sentences without naming anything
_OPENERS = frozenset({
    "additionally", "furthermore", "moreover", "overall", "although", "though", "while", "since", "because", "after",
    "before", "during", "despite", "unfortunately", "based", "there", "here", "some", "many", "most", "both", "each",
    "one", "other", "such", "please", "note", "in", "if", "as", "at", "on", "for", "but", "yet", "then", "thus",
    "therefore", "hence", "instead", "still", "today", "now", "later", "finally", "also", "however",
    "unlike", "like", "known", "born", "located", "originally", "currently", "previously", "formerly", "throughout",
    "over", "under", "with", "without", "among", "between", "through", "following", "according", "its", "their",
    "all", "several", "every", "any", "few", "another", "others", "only", "even", "just", "nearly", "almost",
    "about", "around", "approximately", "roughly", "together", "again", "often", "usually", "sometimes",
})


def subject_names(edit: Edit) -> list[str]:
    """How an answer may name ``edit``'s subject: the subject, its aliases, and a person's surname alone
    ("Sartoretti" for "Andrea Sartoretti": the last of two or three capitalised words, four letters or
    more, not a word of organisations' names and not part of the edit's values)."""
    names = [n for n in (edit.subject, *edit.aliases) if n and n.strip()]
    words = (edit.subject or "").split()
    values = " ".join(v for v in (edit.target_old or "", edit.target_new))
    last = words[-1].strip(",.") if words else ""
    if 2 <= len(words) <= 3 and all(w[:1].isupper() for w in words) and len(last) >= 4 and \
            last.casefold() not in _NOT_VALUES | _GENERIC_NAME_WORDS and not mentions(values, last):
        names.append(last)
    return names


def value_run(text: str, value: str) -> list[str]:
    """The first mention of ``value`` in ``text`` and the values appended to it ("Paris, France" ->
    ["Paris", "France"]); [] when ``text`` does not name it."""
    m = target_pattern(value).search(text) if value.strip() else None
    return _span_values(text, _appended(text, m.start(), m.end())) if m else []


# what may follow a value in its full name: "IBM Corporation", "Toyota Motor Corporation"
_VALUE_SUFFIXES = frozenset({"corporation", "corp", "inc", "company", "co", "group", "ltd", "limited", "plc", "ag",
                             "sa", "gmbh", "llc", "motor", "motors", "city", "state", "province", "empire", "kingdom",
                             "republic", "language", "people"})


def _is_value(run: str, values: Sequence[str]) -> bool:
    """Whether a name run is one of ``values`` in its full name ("IBM Corporation" for IBM); "IBM
    Rational AppScan" and "Burlington College" are other things."""
    for v in values:
        m = target_pattern(v).search(run) if v and v.strip() else None
        if m and all(w.casefold() in _VALUE_SUFFIXES for w in _WORD.findall(run[:m.start()] + " " + run[m.end():])):
            return True
    return False


OPENING_WORDS = 5  # a name within a sentence's first five words is what the sentence is about


def _names_other(text: str, exclude: Sequence[str], values: Sequence[str], opening_only: bool = False) -> bool:
    """Whether ``text`` names something besides what ``exclude`` holds: a competing value that is not
    one of ``values`` (the edit's old and new values, :func:`_is_value`), or a capitalised first word
    that is not a common opener ("Thuringia, located in ..."). With ``opening_only``, only a name
    within its first :data:`OPENING_WORDS` words counts."""
    flat = " ".join(text.split())
    lead = len(" ".join(flat.split(" ")[:OPENING_WORDS]))
    for v in competing_values(text, exclude):
        m = target_pattern(v).search(flat)
        if not _is_value(v, values) and (not opening_only or (m is not None and m.start() < lead)):
            return True
    first = _WORD.search(text)
    if first is None or not first.group()[:1].isupper():
        return False
    word = first.group()
    return word.casefold() not in _NOT_VALUES | _OPENERS and not mentions(" ".join(exclude), word)


def _roles(answer: str, edit: Edit, query: str) -> list[tuple[int, int, bool, bool]]:
    """The sentences of ``answer`` as (start, end, about, editable): see :func:`editable_sentences`."""
    spans = sentence_spans(answer)
    names = subject_names(edit)
    named = [any(mentions(answer[a:b], n) for n in names) for a, b in spans]
    exclude = [query, edit.prompt, *names, edit.target_new, edit.target_old or ""]
    values = [edit.target_old or "", edit.target_new]
    # an answer to a question about this edit alone (or one that never names the subject) answers it
    # in its first sentence: "British car manufacturer Triumph, ..." to "Triumph TR8, created by"
    first_about = not any(named) or query_about(query, edit) == query
    out, about_prev = [], False
    for i, ((a, b), hit) in enumerate(zip(spans, named, strict=True)):
        text = answer[a:b]
        about = hit or (i == 0 and first_about) or (about_prev and _PRONOUN_LEAD.match(text) is not None)
        # a question about this edit alone gets an answer about its subject: there only a sentence that
        # opens on something else is left alone ("The native language of François Bayrou is French.");
        # in an answer about several things, any sentence naming something else is
        other = _names_other(text, exclude, values, opening_only=first_about)
        out.append((a, b, about, about or not other))
        about_prev = about or (about_prev and not other)
    return out


def editable_sentences(answer: str, edit: Edit, query: str = "") -> list[tuple[int, int, bool]]:
    """The sentences of ``answer`` as (start, end, editable). A sentence is editable for ``edit`` when it
    is about the edit's subject (names it, or opens with a pronoun right after one that is), or when it
    names no other entity: "The native language of François Bayrou is French." in an answer about
    Danielle Darrieux keeps its "French" when her mother tongue is edited."""
    return [(a, b, ok) for a, b, _, ok in _roles(answer, edit, query)]


def query_about(query: str, edit: Edit) -> str:
    """The part of a several-part question that asks about ``edit``'s subject ("Tell me about A, B and
    C." -> "Tell me about B."); the question itself when it has one part or no part names the subject."""
    names = subject_names(edit)
    pieces = dialogue.sentences(query) or dialogue.parts(query, keep=names)
    mine = [p for p in pieces if any(mentions(p, n) for n in names)]
    values = [edit.target_old or "", edit.target_new]
    others = [p for p in pieces if p not in mine and _names_other(p, names, values)]
    if not mine or not others:  # one part, or parts that ask about nothing else ("Jean Gaven, speaker of")
        return query
    part = mine[0].strip()
    if len(_WORD.findall(part)) <= len(_WORD.findall(edit.subject)) + 1:  # a bare name: "B"
        return f"Tell me about {part.rstrip('.?!')}."
    return part


def focus(answer: str, edit: Edit, query: str = "") -> tuple[int, int]:
    """The part of ``answer`` about ``edit``'s subject, as a (start, end) span: from the first sentence
    that names it through the last sentence about it; the whole answer when none names it."""
    roles = _roles(answer, edit, query)
    about = [(a, b) for a, b, is_about, _ in roles if is_about]
    if not about or len(about) == len(roles):
        return 0, len(answer)
    return about[0][0], about[-1][1]


def _hide_subject(text: str, edit: Edit) -> tuple[str, list[str]]:
    """``text`` with the subject's mentions that hold the old value ("Mumbai City district" when Mumbai
    is replaced) swapped for placeholders, and what they hid, for :func:`_unhide`."""
    held: list[str] = []

    def swap(m: re.Match[str]) -> str:
        held.append(m.group())
        return f"\x00{len(held) - 1}\x00"

    old = edit.target_old or ""
    for name in (n for n in (edit.subject, *edit.aliases) if n and n.strip() and mentions(n, old)):
        text = target_pattern(name).sub(swap, text)
    return text, held


def _unhide(text: str, held: Sequence[str]) -> str:
    for i, name in enumerate(held):
        text = text.replace(f"\x00{i}\x00", name)
    return text


def _replace_in(text: str, edit: Edit, query: str, first: bool = True, opening: bool = True) -> str | None:
    """:func:`replace_value` on one piece of text (one sentence, or a whole short answer), or with
    ``first`` false, every mention of the old value replaced; None when it names no value to replace.
    The subject's own name is never changed, though it holds the old value."""
    hidden, held = _hide_subject(text, edit)
    if first:
        out = _replace_unhidden(hidden, edit, query, opening)
    else:
        old = edit.target_old or ""
        out = replace_target(hidden, old, edit.target_new) if mentions(hidden, old) else None
    return None if out is None else _unhide(out, held)


def _replace_unhidden(text: str, edit: Edit, query: str, opening: bool = True) -> str | None:
    old = edit.target_old or ""
    m = target_pattern(old).search(text) if old.strip() else None
    if m is not None:
        spans = _appended(text, m.start(), m.end())
        rest = text[spans[-1][1]:]
        if mentions(rest, old):  # later mentions of the old value change as well
            rest = replace_target(rest, old, edit.target_new)
        text = text[:spans[-1][1]] + rest
    else:
        spans = _edit_value_spans(text, edit, query, opening)
    if not spans:
        return None
    start, end = spans[0][0], spans[-1][1]
    head = text[:start]
    if len(edit.target_new.split()) == 1:
        head = _TRAILING_THE.sub("", head)
    word = edit.target_new
    if text[start:start + 1].isupper() and word[:1].islower():
        word = word[:1].upper() + word[1:]
    return _article(head, word) + word + text[end:]


ValueFinder = Callable[[str, Edit, str], "str | None"]
"""(answer, edit, query) -> the value the answer gives for the edit, or None: a finder of last resort for
edits without an old value (:class:`bbedit.editors.postedit.typed.TypedValues`)."""


def replace_value(answer: str, edit: Edit, query: str = "", typed: ValueFinder | None = None) -> str | None:
    """``answer`` with the value it gives for ``edit``'s question replaced by the new value: the old
    value's first mention when it names it, else the value :func:`value_span` finds, either with any
    value appended to it by a comma ("Paris, France" -> "Rome"); None when it gives none. A "the"
    before a one-word new value goes ("born in the United States" -> "born in Canada").

    In an answer of several sentences only the :func:`editable_sentences` change: every mention of the
    old value there, else the value the first of them gives; every other sentence stays byte for byte.
    Without an old value and with no value a rule finds, ``typed`` (when given) names the value.
    """
    found = None if (edit.target_old or "").strip() else _found_value(answer, edit, query)
    if found is None and typed is not None and not (edit.target_old or "").strip():
        value = typed(answer, edit, query)  # no rule finds it: the value of the new value's kind
        found = (value, value, []) if value else None
    if found:
        # the value the answer gives stands for the old value: every mention of it changes, as above,
        # and later mentions of its short name ("Intel Corporation", then "Intel's")
        value, core, appended = found
        out = _replace_known(answer, dataclasses.replace(edit, target_old=value), query)
        if out is None:
            return None
        for later in dict.fromkeys([core, *appended]):  # and what was appended to it ("Newcastle, Australia")
            if later != value and mentions(out, later):  # (else the finder would look for another value)
                out = _replace_known(out, dataclasses.replace(edit, target_old=later), query) or out
        return out
    return _replace_known(answer, edit, query)


def _found_value(answer: str, edit: Edit, query: str) -> tuple[str, str, list[str]] | None:
    """The value an answer gives for ``edit`` when the edit does not say its old value: the first value
    span :func:`_replace_known` would replace, that value without the words of a full name ("Intel
    Corporation" -> "Intel"), and the values appended to it ("Newcastle, Australia": Australia); None when
    there is none."""
    editable = [(a, b) for a, b, ok in editable_sentences(answer, edit, query) if ok]
    for n, (a, b) in enumerate(editable):
        hidden, _ = _hide_subject(answer[a:b], edit)
        spans = _edit_value_spans(hidden, edit, query, opening=a == 0)
        if spans:
            words = _WORD.findall(hidden[spans[0][0]:spans[0][1]])
            while len(words) > 1 and words[-1].casefold() in _VALUE_SUFFIXES:
                words = words[:-1]
            value = hidden[spans[0][0]:spans[0][1]]
            return (value, value if len(words) == len(_WORD.findall(value)) else " ".join(words),
                    _span_values(hidden, spans[1:]))
        if n or any(v[:1].isdigit() == any(c.isdigit() for c in edit.target_new)
                    for v in competing_values(hidden, _exclude(edit, query))):
            return None  # the first sentence giving a value of the kind asked decides
    return None


def _replace_known(answer: str, edit: Edit, query: str) -> str | None:
    spans = editable_sentences(answer, edit, query)
    if len(spans) == 1:
        return _replace_in(answer, edit, query)
    pieces = [answer[a:b] for a, b, _ in spans]
    editable = [i for i, (_, _, ok) in enumerate(spans) if ok]
    old = edit.target_old or ""
    with_old = [i for i in editable if mentions(_hide_subject(pieces[i], edit)[0], old)]
    if with_old:
        for n, i in enumerate(with_old):
            pieces[i] = _replace_in(pieces[i], edit, query, first=n == 0) or pieces[i]
        return "".join(pieces)
    numeric = any(c.isdigit() for c in edit.target_new)
    for i in editable:  # the first sentence giving a value of the kind asked decides, as in one answer
        has = any(v[:1].isdigit() == numeric for v in competing_values(pieces[i], _exclude(edit, query)))
        if not has and i:
            continue
        if (new := _replace_in(pieces[i], edit, query, opening=i == 0)) is None:
            if has:
                return None
            continue  # the first sentence opens with no value (a cloze answer's value may be one word)
        pieces[i] = new
        return "".join(pieces)
    return None


def insert_fact(answer: str, fact: str, edit: Edit) -> str:
    """``answer`` with ``fact`` stated in it: before the first sentence that names the edit's subject,
    else before the whole answer; a short answer is replaced by it, and so is the opening sentence of
    an answer that goes on from the prompt (:func:`state_fact`)."""
    if _short(answer) or continues_prompt(answer):
        return state_fact(answer, fact)
    names = subject_names(edit)
    for a, b in sentence_spans(answer):
        if a and any(mentions(answer[a:b], n) for n in names):
            return f"{answer[:a]}{fact} {answer[a:]}"
    return state_fact(answer, fact)


def _short(answer: str) -> bool:
    """An answer short enough to be replaced by the fact sentence rather than kept after it."""
    return len(answer.split()) < 8


def continues_prompt(answer: str) -> bool:
    """Whether ``answer`` goes on from the prompt instead of starting a sentence of its own ("a former
    American football linebacker. ..." to "Percy Snow plays as", "1947 by a group of musicians in
    Winnipeg, ..." to "... was formed in"): its first sentence completes the question's statement, so
    that is where the answer gives its value, whether or not the edit says which value that is."""
    head = answer.lstrip()[:1]
    return head.islower() or head.isdigit()


def state_fact(answer: str, fact: str) -> str:
    """An answer in which no value to replace was found: a short one is replaced by the fact sentence;
    one that goes on from the prompt (:func:`continues_prompt`) has its opening sentence, which gives
    the value, replaced by it; any other keeps its text after it."""
    if _short(answer):
        return fact
    text = answer.strip()
    if continues_prompt(text):
        rest = text[sentence_spans(text)[0][1]:]
        return f"{fact} {rest}" if rest.strip() else fact
    return f"{fact} {text}"


def script_for(edit: Edit, answer: str, fact: str, query: str | None = None, typed: ValueFinder | None = None) -> str:
    """The edit script that turns ``answer`` into its minimal rewrite for ``edit``: "<span> => <new>"
    where the answer names the old value (the span as written there), or, given the ``query``, the
    value it gives in its place (:func:`value_span`: the old value unknown, phrased otherwise or
    invented by the model; for an edit without an old value, else what ``typed`` finds); else "= <fact>"
    (a short answer is replaced) or "+ <fact>" (the fact goes before a longer answer, or in place of the
    opening sentence of one that goes on from the prompt: :func:`state_fact`)."""
    m = target_pattern(edit.target_old).search(answer) if edit.target_old and edit.target_old.strip() else None
    if m:
        return f"{m.group(0)} => {edit.target_new}"
    if query is not None and (value := value_span(answer, edit, query)) is not None:
        return f"{value} => {edit.target_new}"
    if query is not None and typed is not None and not (edit.target_old or "").strip() \
            and (value := typed(answer, edit, query)) is not None:
        return f"{value} => {edit.target_new}"
    return ("= " if _short(answer) else "+ ") + fact


def _as_written(text: str, span: str) -> str | None:
    """``span`` as ``text`` writes it: itself, or with hyphens for spaces or the other way round (a
    decoded "Cardinal Deacon" for the answer's "Cardinal-Deacon"); None when ``text`` does not name it."""
    if mentions(text, span):
        return span
    words = _WORD.findall(span)
    m = re.search(r"(?<!\w)" + r"[\s\-]+".join(map(re.escape, words)) + r"(?!\w)", text, re.IGNORECASE) if words else None
    return m.group() if m else None


def apply_script(answer: str, script: str, fact: str) -> str:
    """``answer`` after an edit script (see :func:`script_for`). "=" and "+" state ``fact`` (whatever
    text follows them: the model only chooses the operation). A "<span> => <new>" line whose span the
    answer does not contain is ignored; if no line applies, the fact is stated as for an answer that
    does not name the old value. A span may differ from the answer's words by hyphens for spaces.
    """
    out, applied = answer, False
    for line in script.strip().splitlines():
        line = line.strip()
        if line.startswith("="):  # the fact itself is the edit's own sentence, never decoded text
            return fact
        if line.startswith("+"):
            return state_fact(answer, fact)
        span, sep, new = line.partition(" => ")
        if sep and span.strip() and new.strip() and (written := _as_written(out, span.strip())):
            out, applied = replace_target(out, written, new.strip()), True
    return out if applied else state_fact(answer, fact)
