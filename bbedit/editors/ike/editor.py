"""IKE: in-context knowledge editing (Zheng et al., 2023) for chat models behind an API.

The edit is stated as a fact; in "ike" mode, demonstrations retrieved from a
pool show the model how to copy the new fact, apply it to a paraphrase, and
leave unrelated questions alone. Only the in-scope conversation is changed:
the pipeline never calls this editor for out-of-scope queries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from bbedit.conversation import content_text, ends_with_user, with_content_text
from bbedit.editors.base import Edits, RequestEditor, as_edits, facts_text
from bbedit.editors.ike.config import IKEConfig
from bbedit.errors import ConfigError
from bbedit.memory.subjects import named_in
from bbedit.prompts import load_prompt
from bbedit.types import Edit, Message

log = logging.getLogger(__name__)


class IKEEditor(RequestEditor):
    """In-context editing; ``config`` or keyword overrides of :class:`IKEConfig`.

    Demonstrations are chosen by meaning with the edit memory's embedder (:meth:`bind`; the pipeline,
    the proxy and the harness bind it), or with ``embedder`` when one is given.
    """

    name = "ike"

    def __init__(self, config: IKEConfig | None = None, *, embedder: Any = None, **overrides: Any) -> None:
        base = config or IKEConfig()
        self.config = IKEConfig(**{**base.__dict__, **overrides}) if overrides else base
        self._embedder = embedder
        self._memory: Any = None
        self._demos: list[dict[str, str]] | None = None
        self._demo_vecs: np.ndarray | None = None

    def bind(self, memory: Any) -> None:
        """Embed with ``memory``'s embedder (loaded when the first demonstration is chosen)."""
        if self._memory is not memory:
            self._memory, self._demo_vecs = memory, None

    def load(self) -> None:
        """Read the demonstration pool and embed it (so the first request does not wait for it)."""
        if self.config.mode == "ike" and self.config.n_demos > 0:
            self._pool_vectors()

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._embedder is None:
            if self._memory is None:
                from bbedit.memory.embedder import load_embedder

                self._embedder = load_embedder()
            else:
                return self._memory.embedder.embed(texts)  # type: ignore[no-any-return]
        return self._embedder.embed(texts)  # type: ignore[no-any-return]

    def _pool_vectors(self) -> np.ndarray:
        if self._demo_vecs is None:
            self._demo_vecs = self._embed([d["fact"] + " " + d["question"] for d in self.demos()])
        return self._demo_vecs

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

    def _select(self, query: str, edits: Sequence[Edit] = ()) -> list[dict[str, str]]:
        pool = self.demos()
        n = min(self.config.n_demos, len(pool))
        if n == 0:
            return []
        vecs = self._pool_vectors()
        q = self._embed([query])[0]
        clash = _clashing_names(edits)
        order = [i for i in np.argsort(-(vecs @ q), kind="stable")
                 if not clash or named_in(" ".join(pool[i].values()), clash) is None]
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
    def build_messages(self, messages: Sequence[Message], edit: Edits) -> list[Message]:
        """The conversation the model sees for an in-scope query (the input is not modified): every
        edit's fact stated with the question, after demonstrations that name none of the edits'
        subjects or old values (a demonstration about the same thing would contradict them)."""
        msgs = [dict(m) for m in messages]
        if not ends_with_user(msgs):
            raise ConfigError("the last message must be the user's question")
        edits = as_edits(edit)
        fact = facts_text(edits)
        question = content_text(msgs[-1].get("content"))
        if self.config.mode == "fact":
            system = load_prompt("ike/system_fact.txt").format(fact=fact)
            return _with_system(msgs, system)
        turn = load_prompt("ike/turn.txt")
        shots: list[Message] = []
        for d in self._select(question, edits):
            shots.append({"role": "user", "content": turn.format(fact=d["fact"], question=d["question"])})
            shots.append({"role": "assistant", "content": d["answer"]})
        msgs[-1] = with_content_text(msgs[-1], turn.format(fact=fact, question=question))
        out = _with_system(msgs, load_prompt("ike/system_ike.txt"))
        first = 1 if out and out[0]["role"] in ("system", "developer") else 0
        return out[:first] + shots + out[first:]


def _clashing_names(edits: Sequence[Edit]) -> list[str]:
    """The names a demonstration must not mention next to ``edits``: their subjects, aliases and old
    values (a demonstration "The iPhone is produced by Apple" before an edit of the iPhone's maker
    contradicts it). A demonstration may share the new value: it states nothing against the edit."""
    names = [n for e in edits for n in (e.subject, *e.aliases, e.target_old or "")]
    return [n for n in names if len(n.strip()) > 2]


def _with_system(msgs: list[Message], system: str) -> list[Message]:
    """Prepend ``system`` to the conversation's system message, or add one."""
    if msgs and msgs[0].get("role") in ("system", "developer"):
        return [with_content_text(msgs[0], system + "\n\n" + content_text(msgs[0].get("content"))), *msgs[1:]]
    return [{"role": "system", "content": system}, *msgs]
