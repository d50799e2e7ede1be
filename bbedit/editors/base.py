"""The two kinds of black-box editor, and the registry of editors by name.

* A **request editor** changes the messages before the backend sees them (IKE states the fact in
  context): subclasses give :meth:`RequestEditor.build_messages`.
* An **answer editor** lets the backend answer as usual and rewrites its answer (the post-editors):
  subclasses give :meth:`AnswerEditor.rewrite`.

Both get ``answer`` and ``stream`` from here, so the pipeline, the proxy, the LangChain wrapper and
the evaluation harness all apply an editor the same way: by its declared ``kind``, never by probing
for methods. ``gate_threshold`` is a declared attribute: an editor with a second filter of its own
(the post-editor's keep decision) asks to be routed at a lower gate threshold.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from bbedit import dialogue
from bbedit.backends import Backend, supports
from bbedit.conversation import last_user_text
from bbedit.errors import ConfigError
from bbedit.prompts import load_prompt
from bbedit.types import Edit, Message

EditorKind = Literal["request", "answer"]
Edits = Edit | Sequence[Edit]  # what an editor applies: one edit, or every edit a question is about


def as_edits(edits: Edits) -> tuple[Edit, ...]:
    """One edit or several as a tuple. Raises :class:`ConfigError` for none, or for a non-edit."""
    out = (edits,) if isinstance(edits, Edit) else tuple(edits)
    if not out or not all(isinstance(e, Edit) for e in out):
        raise ConfigError("an editor needs one or more edits (bbedit.types.Edit)")
    return out


def facts_text(edits: Edits) -> str:
    """The edits as sentences, one after another ("The CEO of Acme is Jane Doe. Acme is based in Lyon.")."""
    return " ".join(fact_sentence(e) for e in as_edits(edits))


@dataclass(frozen=True)
class EditorOutput:
    """An editor's answer; ``original_text`` is the unedited answer when the editor saw one."""

    text: str
    original_text: str | None = None


@dataclass(frozen=True)
class Rewrite:
    """One post-edit: the text to return, whether it differs from the answer, the editor's
    probability of "keep", the cost (seconds, output tokens, model passes) and the edit script
    the editor wrote ("" when it kept the answer)."""

    text: str
    changed: bool
    p_keep: float
    latency_s: float
    tokens: int = 0
    passes: int = 1
    script: str = ""


@runtime_checkable
class Editor(Protocol):
    """Changes the answer to a conversation whose last question is about ``edit``.

    ``answer`` and ``stream`` raise :class:`bbedit.errors.BackendError` when the backend fails.
    """

    name: str
    kind: EditorKind
    gate_threshold: float | None

    def load(self) -> None: ...

    def bind(self, memory: Any) -> None: ...

    def answer(self, backend: Backend, messages: Sequence[Message], edit: Edits, **opts: Any) -> EditorOutput: ...

    def stream(self, backend: Backend, messages: Sequence[Message], edit: Edits, **opts: Any) -> Iterator[str]: ...


class EditorBase(ABC):
    """What every editor declares: ``name``, ``kind``, ``gate_threshold`` (None: route at the gate's own
    threshold), ``load`` (make the editor ready before the first request; a no-op for editors without a
    model) and ``bind`` (the edit memory the editor works next to, for its embedder)."""

    name: ClassVar[str]
    kind: ClassVar[EditorKind]
    gate_threshold: float | None = None

    def load(self) -> None:  # noqa: B027 (optional hook: editors without a model need nothing)
        """Load whatever the editor needs (idempotent). Raises ModelNotFound when it cannot."""

    def bind(self, memory: Any) -> None:  # noqa: B027 (optional hook)
        """Work next to ``memory`` (an :class:`~bbedit.memory.EditMemory`): editors that embed text use
        its embedder, so there is one embedding call site."""

    @abstractmethod
    def answer(self, backend: Backend, messages: Sequence[Message], edit: Edits, **opts: Any) -> EditorOutput: ...

    @abstractmethod
    def stream(self, backend: Backend, messages: Sequence[Message], edit: Edits, **opts: Any) -> Iterator[str]: ...


class RequestEditor(EditorBase):
    """Edits by changing the request: the backend answers :meth:`build_messages` instead of the
    user's conversation."""

    kind: ClassVar[EditorKind] = "request"

    @abstractmethod
    def build_messages(self, messages: Sequence[Message], edit: Edits) -> list[Message]:
        """The conversation the backend sees for an in-scope query (the input is not modified), with
        every edit in ``edit`` (one or several) applied. Raises :class:`ConfigError` when the
        conversation does not end with a user message."""

    def build_prompt(self, prompt: str, edit: Edits) -> str:
        """The plain-text prompt a completion model sees for an in-scope ``prompt`` (``/v1/completions``):
        by default the facts, stated before the prompt (template ``prompts/completion.txt``)."""
        return load_prompt("completion.txt").format(fact=facts_text(edit), prompt=prompt)

    def answer(self, backend: Backend, messages: Sequence[Message], edit: Edits, **opts: Any) -> EditorOutput:
        """The backend's answer to the edited request. Raises BackendError from the backend."""
        return EditorOutput(backend.generate(self.build_messages(messages, edit), **opts))

    def stream(self, backend: Backend, messages: Sequence[Message], edit: Edits, **opts: Any) -> Iterator[str]:
        """Stream the answer to the edited request (one chunk when the backend cannot stream)."""
        built = self.build_messages(messages, edit)
        if supports(backend, "stream"):
            yield from backend.stream(built, **opts)  # type: ignore[attr-defined]
        else:
            yield backend.generate(built, **opts)


class AnswerEditor(EditorBase):
    """Edits by rewriting the backend's answer to the user's unchanged conversation."""

    kind: ClassVar[EditorKind] = "answer"

    @abstractmethod
    def rewrite(self, query: str, answer: str, edit: Edit) -> Rewrite:
        """``answer`` (to the question ``query``) rewritten for ``edit``; returned as is when the edit
        does not bear on it."""

    def rewrite_all(self, query: str, answer: str, edits: Edits) -> Rewrite:
        """``answer`` rewritten for each of ``edits`` in turn (one rewrite when there is one edit);
        the costs add up, ``changed`` when any rewrite changed it."""
        out: Rewrite | None = None
        for e in as_edits(edits):
            r = self.rewrite(query, answer if out is None else out.text, e)
            out = r if out is None else Rewrite(
                r.text, out.changed or r.changed, min(out.p_keep, r.p_keep), out.latency_s + r.latency_s,
                out.tokens + r.tokens, out.passes + r.passes, " ".join(x for x in (out.script, r.script) if x))
        assert out is not None  # as_edits: at least one
        return out

    def rewrite_stream(self, query: str, answer: str, edit: Edits) -> Iterator[str]:
        """The rewritten answer in chunks of a few words that join back to it exactly."""
        yield from word_chunks(self.rewrite_all(query, answer, edit).text)

    def answer(self, backend: Backend, messages: Sequence[Message], edit: Edits, **opts: Any) -> EditorOutput:
        """Ask the backend as usual, then rewrite its answer for every edit. Raises BackendError from
        the backend."""
        original = backend.generate(list(messages), **opts)
        return EditorOutput(self.rewrite_all(resolved_question(messages, edit), original, edit).text, original)

    def stream(self, backend: Backend, messages: Sequence[Message], edit: Edits, **opts: Any) -> Iterator[str]:
        """The backend's whole answer is needed before it can be rewritten; the rewrite streams."""
        original = backend.generate(list(messages), **opts)
        yield from self.rewrite_stream(resolved_question(messages, edit), original, edit)


def resolved_question(messages: Sequence[Message], edits: Edits) -> str:
    """The last user message as the question an answer editor reads: a follow-up that names none of the
    routed edits' subjects has its first pronoun or description read as the first edit's subject ("Where
    is it based?" after a question about Acme → "Where is Acme based?"), as the router read it."""
    text = last_user_text(messages)
    routed = as_edits(edits)
    if any(n and n.casefold() in text.casefold() for e in routed for n in (e.subject, *e.aliases)):
        return text
    found = dialogue.anaphors(text)
    return dialogue.substitute(text, found[0], routed[0].subject) if found else text


def fact_sentence(edit: Edit) -> str:
    """The edit as one sentence: "The CEO of Acme is Jane Doe." / "Who leads Acme? Jane Doe."."""
    text = f"{edit.prompt.rstrip()} {edit.target_new}"
    return text if text.endswith((".", "!", "?")) else text + "."


def word_chunks(text: str, words: int = 4) -> Iterator[str]:
    """``text`` in pieces of a few words each that join back to it exactly."""
    parts = re.split(r"(?<=\s)(?=\S)", text)
    for i in range(0, len(parts), words):
        yield "".join(parts[i:i + words])


_REGISTRY: dict[str, str] = {
    "ike": "bbedit.editors.ike:IKEEditor",
    "postedit": "bbedit.editors.postedit:PostEditor",
    "replace": "bbedit.editors.postedit:ReplaceEditor",
}


def register_editor(name: str, target: str) -> None:
    """Register an editor class under ``name`` as a lazy "module:Class" string."""
    _REGISTRY[name] = target


def editor_names() -> list[str]:
    return sorted(_REGISTRY)


def make_editor(name: str, **config: Any) -> EditorBase:
    """Instantiate the editor registered as ``name``. Raises :class:`ConfigError` for unknown names
    and for a registered class that is not a request or answer editor."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown editor {name!r}; choose one of {', '.join(editor_names())}") from None
    module, _, cls = target.partition(":")
    factory: Callable[..., Any] = getattr(import_module(module), cls)
    editor = factory(**config)
    check_editor(editor)
    return editor  # type: ignore[no-any-return]


def check_editor(editor: Any) -> None:
    """Raise :class:`ConfigError` unless ``editor`` is a request editor or an answer editor."""
    if not isinstance(editor, RequestEditor | AnswerEditor):
        raise ConfigError(f"editor {getattr(editor, 'name', editor)!r} is neither a request editor "
                          "(bbedit.editors.RequestEditor) nor an answer editor (bbedit.editors.AnswerEditor)")
