"""What a question in a conversation is about, in words: follow-ups and questions about several facts.

A chatbot's user rarely repeats the subject. "Who is the CEO of Acme?" is followed by "And where is
it headquartered?", and "Give me an overview of Acme: CEO, headquarters and flagship product" asks
three things at once. The router (:class:`bbedit.routing.Router`) routes such a question as it
comes and, besides, the *readings* built here: the follow-up with its pronoun or description
("it", "the company") replaced by a subject named earlier in the conversation, and each part of a
several-part question as a question of its own about the subject. The scope gate judges every
reading like any other question, so a reading it does not accept changes nothing.

These are plain text functions; which names are stored subjects is the memory's to say.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bbedit.conversation import content_text
from bbedit.types import Message

# A pronoun or a description that stands for something named before. "her" is possessive when a
# word follows ("her husband"), else an object ("married her"); both read as the subject.
_DESCRIBED = (
    "company", "firm", "business", "corporation", "organisation", "organization", "group", "startup", "brand",
    "band", "team", "club", "city", "town", "country", "state", "person", "man", "woman", "film", "movie", "show",
    "series", "book", "novel", "song", "album", "game", "product", "device", "app", "service", "plan", "building",
    "university", "school", "party", "river", "mountain", "player", "singer", "actor", "actress", "author",
    "writer", "politician", "artist", "musician", "ship", "car", "model", "language", "species", "tower", "bridge",
)
# A description stands for something named before only where the sentence goes on with what is said
# of it ("the company is based", "the company?"), not where it opens a name ("the song Hey Jude", "the
# book of Revelation").
_SAID_OF = ("is", "was", "are", "were", "has", "have", "had", "does", "did", "do", "will", "can", "could",
            "based", "founded", "located", "headquartered", "made", "released", "launched", "run", "led", "owned",
            "makes", "sells", "costs", "cost", "started", "ended", "born", "died", "plays", "played", "won", "and")
_ANAPHOR = re.compile(
    r"\b(?:(?P<poss>its|his|their|her(?=\s+[A-Za-z]))"
    r"|(?P<pron>it|he|she|him|her|they|them)"
    r"|(?P<desc>(?:the|this|that)\s+(?:" + "|".join(_DESCRIBED) + r"))"
    r"(?=(?:'s)?\s*(?:$|[?.!,;:]|(?:" + "|".join(_SAID_OF) + r")\b)))\b",
    re.IGNORECASE)
# Where a several-part question splits: commas, semicolons, colons, question marks and "and".
_SPLIT = re.compile(r"\s*(?:[,;:?]|\band\b|\bas well as\b|\balso\b)\s*", re.IGNORECASE)
_WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
_LEAD = re.compile(r"^(?:and|also|so|then|ok(?:ay)?|what about|how about)\b[\s,]*", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
_DETERMINER = re.compile(r"^(?:the|its|his|her|their)\s+", re.IGNORECASE)
_END = " .?!"
MAX_PART_WORDS = 8  # a part longer than this is a question of its own, not an item of a list
MAX_ELLIPTICAL_WORDS = 4  # "And the CTO?", "What about its price?"


@dataclass(frozen=True)
class Anaphor:
    """A pronoun or description at ``text[start:end]``; ``possessive`` when it stands for "X's"."""

    start: int
    end: int
    possessive: bool


def anaphors(text: str) -> list[Anaphor]:
    """The pronouns and descriptions in ``text`` that may stand for a subject named earlier."""
    return [Anaphor(m.start(), m.end(), m.group("poss") is not None) for m in _ANAPHOR.finditer(text)]


def possessive(name: str) -> str:
    """``name``'s possessive form: "Acme's", "Veltrix Dynamics'"."""
    return name + ("'" if name.endswith(("s", "S")) else "'s")


def substitute(text: str, anaphor: Anaphor, name: str) -> str:
    """``text`` with ``anaphor`` replaced by ``name`` (possessive where the anaphor was)."""
    return text[:anaphor.start] + (possessive(name) if anaphor.possessive else name) + text[anaphor.end:]


_SENTENCE = re.compile(r"(?<=[?.!;])\s+")


def sentences(text: str) -> list[str]:
    """The sentences of a message with several ("Who runs Acme? Also, where is it based?" → two),
    leading "also", "and", ... removed; ``[]`` for a single sentence."""
    pieces = [strip_lead(p) for p in _SENTENCE.split(text.strip())]
    pieces = [p for p in pieces if _WORDS.search(p)]
    return pieces if len(pieces) > 1 else []


def parts(text: str, keep: Sequence[str] = ()) -> list[str]:
    """The parts of a several-part question ("CEO, headquarters and flagship product" → three), each
    with at least one word; ``[]`` when the question does not split. The names in ``keep`` are never
    split ("Annual Review of Astronomy and Astrophysics")."""
    held = {f"\x00{i}\x00": name for i, name in enumerate(n for n in keep if n and n in text)}
    for mark, name in held.items():
        text = text.replace(name, mark)
    pieces = [p.strip() for p in _SPLIT.split(text)]
    for mark, name in held.items():
        pieces = [p.replace(mark, name) for p in pieces]
    pieces = [strip_lead(p) for p in pieces if _WORDS.search(p)]
    return pieces if len(pieces) > 1 else []


def about(part: str, subject: str) -> list[str]:
    """``part`` asked about ``subject``: its anaphor replaced, or a short noun phrase made the
    subject's in two phrasings ("headquarters" → "Acme's headquarters", "the headquarters of
    Acme?"); none for a long part without an anaphor."""
    found = anaphors(part)
    if found:
        return [substitute(part, found[0], subject)]
    if len(_WORDS.findall(part)) > MAX_PART_WORDS or proper_name(part):
        return []
    noun = _ARTICLE.sub("", part).rstrip(_END)
    return [f"{possessive(subject)} {noun}", f"the {noun} of {subject}?"]


def proper_name(part: str) -> bool:
    """Whether a part is a name ("Tobago" in "In Trinidad and Tobago, ...", "Globex"): every word
    capitalised and not an acronym. A name is another thing, never something of the subject's:
    "Trinidad's Tobago" asks nothing ("CEO", "headquarters" and "flagship product" are items)."""
    words = _WORDS.findall(_ARTICLE.sub("", part.strip()))
    return bool(words) and all(w[0].isupper() and not w.isupper() for w in words)


def elliptical(text: str) -> bool:
    """Whether ``text`` is a short follow-up that leaves its subject out ("And the CTO?")."""
    return not anaphors(text) and 0 < len(_WORDS.findall(strip_lead(text))) <= MAX_ELLIPTICAL_WORDS


def strip_lead(text: str) -> str:
    """``text`` without a leading "and", "what about", ... ("And the CTO?" → "the CTO?")."""
    return _LEAD.sub("", text.strip()).strip()


_QUESTION = re.compile(r"^(?:who|whom|whose|what|when|where|which|why|how|is|are|was|were|does|do|did|can|could|"
                       r"has|have|tell|give|list|name|describe)\b", re.IGNORECASE)


def asks(part: str) -> bool:
    """Whether a part that names a subject reads as a question or an item of its own ("where is Acme
    based", "the CTO of Acme"; not "belgium invade the ruhr")."""
    part = part.strip()
    return bool(_QUESTION.match(part)) or (bool(_DETERMINER.match(part))
                                          and len(_WORDS.findall(part)) <= MAX_PART_WORDS)


def name_like(surface: str) -> bool:
    """Whether the words a text used for a subject look like a name: capitalised, or several words
    ("who" does not name The Who, "japan" in a lower-case question is left alone)."""
    return any(c.isupper() for c in surface) or len(_WORDS.findall(surface)) > 1


def earlier_texts(messages: Sequence[Message], turns: int = 6) -> list[str]:
    """The words of the messages before the last one, most recent first (at most ``turns``; tool
    calls and function outputs are not read), the system prompt last."""
    out: list[str] = []
    system: list[str] = []
    for m in reversed(list(messages)[:-1]):
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        text = content_text(m.get("content"))
        if not text.strip():
            continue
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant") and len(out) < turns:
            out.append(text)
    return out + system


__all__ = ["MAX_ELLIPTICAL_WORDS", "MAX_PART_WORDS", "Anaphor", "about", "anaphors", "asks", "earlier_texts",
           "elliptical", "name_like", "parts", "possessive", "proper_name", "sentences", "strip_lead", "substitute"]
