"""IKE: in-context knowledge editing (Zheng et al., 2023) for chat models behind an API.

The edit is stated as a fact; in "ike" mode, demonstrations retrieved from a
pool show the model how to copy the new fact, apply it to a paraphrase, and
leave unrelated questions alone. Only the in-scope conversation is changed:
the pipeline never calls this editor for out-of-scope queries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from bbedit.backends import Backend, supports
from bbedit.editors.base import EditorOutput
from bbedit.editors.ike.config import IKEConfig
from bbedit.errors import ConfigError
from bbedit.prompts import load_prompt
from bbedit.types import Edit, Message

log = logging.getLogger(__name__)


def fact_sentence(edit: Edit) -> str:
    """The edit as one sentence: "The CEO of Acme is Jane Doe." / "Who leads Acme? Jane Doe."."""
    p = edit.prompt.rstrip()
    text = f"{p} {edit.target_new}"
    return text if text.endswith((".", "!", "?")) else text + "."


class IKEEditor:
    """In-context editing; ``config`` or keyword overrides of :class:`IKEConfig`."""

    name = "ike"

    def __init__(self, config: IKEConfig | None = None, *, embedder: Any = None, **overrides: Any) -> None:
        base = config or IKEConfig()
        self.config = IKEConfig(**{**base.__dict__, **overrides}) if overrides else base
        self._embedder = embedder
        self._demos: list[dict[str, str]] | None = None
        self._demo_vecs: np.ndarray | None = None

    # -- demonstrations -----------------------------------------------------------------------------
    def demos(self) -> list[dict[str, str]]:
        """The demonstration pool. Raises ConfigError if the pool file is malformed."""
        if self._demos is None:
            rows = []
            for n, line in enumerate(load_prompt(self.config.demos_file).splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    rows.append({k: str(d[k]) for k in ("kind", "fact", "question", "answer")})
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise ConfigError(f"{self.config.demos_file}:{n}: bad demonstration: {e}") from e
            self._demos = rows
        return self._demos

    def _select(self, query: str) -> list[dict[str, str]]:
        pool = self.demos()
        n = min(self.config.n_demos, len(pool))
        if n == 0:
            return []
        if self._embedder is None:
            from bbedit.memory.embedder import load_embedder

            self._embedder = load_embedder()
        if self._demo_vecs is None:
            self._demo_vecs = self._embedder.embed([d["fact"] + " " + d["question"] for d in pool])
        q = self._embedder.embed([query])[0]
        order = np.argsort(-(self._demo_vecs @ q), kind="stable")
        # keep the three kinds balanced: take the best of each kind in turn
        by_kind: dict[str, list[int]] = {}
        for i in order:
            by_kind.setdefault(pool[i]["kind"], []).append(int(i))
        picked: list[int] = []
        while len(picked) < n and any(by_kind.values()):
            for kind in ("copy", "update", "retain"):
                if by_kind.get(kind) and len(picked) < n:
                    picked.append(by_kind[kind].pop(0))
        return [pool[i] for i in reversed(picked)]  # most similar last, nearest the question

    # -- prompts -----------------------------------------------------------------------------------
    def build_messages(self, messages: Sequence[Message], edit: Edit) -> list[Message]:
        """The conversation the model sees for an in-scope query (the input is not modified)."""
        msgs = [dict(m) for m in messages]
        if not msgs or msgs[-1].get("role") != "user":
            raise ConfigError("the last message must be the user's question")
        fact = fact_sentence(edit)
        question = str(msgs[-1].get("content", ""))
        if self.config.mode == "fact":
            system = load_prompt("ike/system_fact.txt").format(fact=fact)
            return _with_system(msgs, system)
        turn = load_prompt("ike/turn.txt")
        shots: list[Message] = []
        for d in self._select(question):
            shots.append({"role": "user", "content": turn.format(fact=d["fact"], question=d["question"])})
            shots.append({"role": "assistant", "content": d["answer"]})
        msgs[-1] = {**msgs[-1], "content": turn.format(fact=fact, question=question)}
        out = _with_system(msgs, load_prompt("ike/system_ike.txt"))
        first = 1 if out and out[0]["role"] == "system" else 0
        return out[:first] + shots + out[first:]

    def answer(self, backend: Backend, messages: Sequence[Message], edit: Edit, **opts: Any) -> EditorOutput:
        """The model's answer given the edit in context. Raises BackendError from the backend."""
        return EditorOutput(backend.generate(self.build_messages(messages, edit), **opts))

    def stream(self, backend: Backend, messages: Sequence[Message], edit: Edit, **opts: Any) -> Iterator[str]:
        """Stream the answer (falls back to one chunk when the backend cannot stream)."""
        built = self.build_messages(messages, edit)
        if supports(backend, "stream"):
            yield from backend.stream(built, **opts)  # type: ignore[attr-defined]
        else:
            yield backend.generate(built, **opts)


def _with_system(msgs: list[Message], system: str) -> list[Message]:
    """Prepend ``system`` to the conversation's system message, or add one."""
    if msgs and msgs[0].get("role") == "system":
        return [{**msgs[0], "content": system + "\n\n" + str(msgs[0].get("content", ""))}, *msgs[1:]]
    return [{"role": "system", "content": system}, *msgs]
