"""LangChain integration: a chat model that applies an edit memory to any chat model, a retriever over
the memory, and a chat model over any bbedit backend. Imports only ``langchain_core``.

:class:`EditedChatModel` routes each conversation with bbedit's one routing seam
(:class:`bbedit.routing.Router`: memory + scope gate). Out of scope, the wrapped model gets the caller's
messages and options untouched. In scope, a request editor (IKE) changes the messages the wrapped model
sees; an answer editor (the post-editors) rewrites the wrapped model's answer. The answer's ``response_metadata["bbedit"]`` says which edit applied.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForLLMRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    convert_to_messages,
    convert_to_openai_messages,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from bbedit.conversation import last_user_text
from bbedit.editors.base import (
    AnswerEditor,
    EditorBase,
    RequestEditor,
    check_editor,
    make_editor,
    word_chunks,
)
from bbedit.editors.ike import fact_sentence
from bbedit.memory.memory import EditMemory
from bbedit.routing import Router
from bbedit.types import Edit, Message


def _chunks(text: str) -> list[str]:
    return list(word_chunks(text)) or [""]


class EditedChatModel(BaseChatModel):
    """Any LangChain chat model (``llm``) with the edits of ``memory`` applied from outside.

    ``gate`` defaults to the memory's saved gate and ``k`` to the gate's; ``editor`` is an editor or
    its name ("ike", "postedit", "replace"). Raises :class:`bbedit.errors.ConfigError` at the first call
    for an unknown editor name or an editor that is neither a request nor an answer editor.
    """

    llm: BaseChatModel
    memory: EditMemory
    gate: Any = None
    editor: Any = "ike"
    k: int | None = None
    model_name: str | None = Field(default=None, alias="model")
    streaming: bool = False

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)
    _router: Router | None = PrivateAttr(default=None)
    _editor: EditorBase | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "bbedit-edited-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"llm": self.llm._llm_type, "editor": self.bbedit_editor.name, "edits": len(self.memory)}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        inner = self.llm._get_ls_params(stop=stop, **kwargs)
        params = LangSmithParams(ls_provider="bbedit", ls_model_type="chat",
                                 ls_model_name=kwargs.get("model") or self.model_name or
                                 str(inner.get("ls_model_name") or self.llm._llm_type))
        for key in ("ls_temperature", "ls_max_tokens", "ls_stop"):
            if inner.get(key) is not None:
                params[key] = inner[key]  # type: ignore[literal-required]
        if stop:
            params["ls_stop"] = stop
        return params

    @property
    def router(self) -> Router:
        """The :class:`Router` over the memory and gate (built at first use)."""
        if self._router is None:
            self._router = Router(self.memory, self.gate, k=self.k)
        return self._router

    @property
    def bbedit_editor(self) -> EditorBase:
        """The editor instance (built from its name at first use)."""
        if self._editor is None:
            editor = make_editor(self.editor) if isinstance(self.editor, str) else self.editor
            check_editor(editor)
            editor.bind(self.memory)
            self._editor = editor
        return self._editor

    # -- routing ------------------------------------------------------------------------------------
    def _route(self, messages: list[BaseMessage]) -> tuple[list[Message], tuple[Edit, ...], dict[str, Any]]:
        """The conversation as OpenAI messages, every edit it is about (none out of scope), and the
        ``bbedit`` metadata of an edited answer."""
        dicts = convert_to_openai_messages(messages)
        assert isinstance(dicts, list)
        editor = self.bbedit_editor
        route = self.router.route(dicts, threshold=editor.gate_threshold)
        info: dict[str, Any] = {}
        if route.edit is not None:
            info = {"edit_id": route.edit.id, "score": round(float(route.score), 4), "editor": editor.name}
            if route.also:
                info["edit_ids"] = [e.id for e in route.edits]
        return dicts, route.edits, info

    def _rewrites(self, edit: tuple[Edit, ...]) -> bool:
        """Whether this answer is to be rewritten after the wrapped model wrote it."""
        return bool(edit) and isinstance(self.bbedit_editor, AnswerEditor)

    def _prepared(self, messages: list[BaseMessage], dicts: list[Message], edit: tuple[Edit, ...]
                  ) -> list[BaseMessage]:
        editor = self.bbedit_editor
        if not edit or not isinstance(editor, RequestEditor):
            return messages
        return convert_to_messages(editor.build_messages(dicts, edit))

    def _finish(self, msg: BaseMessage, dicts: list[Message], edit: tuple[Edit, ...], info: dict[str, Any]
                ) -> AIMessage:
        out = msg if isinstance(msg, AIMessage) else AIMessage(content=msg.content)
        if not edit:
            return out
        editor = self.bbedit_editor
        update: dict[str, Any] = {"response_metadata": {**out.response_metadata, "bbedit": dict(info)}}
        if isinstance(editor, AnswerEditor) and isinstance(out.content, str) and out.content.strip():
            r = editor.rewrite_all(last_user_text(dicts), out.content, edit)
            update["content"] = r.text
            update["response_metadata"]["bbedit"]["changed"] = bool(r.changed)
        return out.model_copy(update=update)

    # -- LangChain's interface ------------------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        dicts, edit, info = self._route(messages)
        answer = self.llm.invoke(self._prepared(messages, dicts, edit), stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=self._finish(answer, dicts, edit, info))])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        loop = asyncio.get_running_loop()
        dicts, edit, info = await loop.run_in_executor(None, self._route, messages)
        prepared = await loop.run_in_executor(None, self._prepared, messages, dicts, edit)
        answer = await self.llm.ainvoke(prepared, stop=stop, **kwargs)
        final = await loop.run_in_executor(None, self._finish, answer, dicts, edit, info)
        return ChatResult(generations=[ChatGeneration(message=final)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        dicts, edit, info = self._route(messages)
        if self._rewrites(edit):
            # a post-editor needs the whole answer; the rewrite is then handed out in pieces
            final = self._finish(self.llm.invoke(messages, stop=stop, **kwargs), dicts, edit, info)
            yield from self._pieces(final, run_manager)
            return
        for chunk in self.llm.stream(self._prepared(messages, dicts, edit), stop=stop, **kwargs):
            yield self._tagged(chunk, info, run_manager)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        loop = asyncio.get_running_loop()
        dicts, edit, info = await loop.run_in_executor(None, self._route, messages)
        if self._rewrites(edit):
            answer = await self.llm.ainvoke(messages, stop=stop, **kwargs)
            final = await loop.run_in_executor(None, self._finish, answer, dicts, edit, info)
            for piece in self._pieces(final, None):
                if run_manager is not None:
                    await run_manager.on_llm_new_token(piece.text, chunk=piece)
                yield piece
            return
        prepared = await loop.run_in_executor(None, self._prepared, messages, dicts, edit)
        async for chunk in self.llm.astream(prepared, stop=stop, **kwargs):
            out = self._tagged(chunk, info, None)
            if run_manager is not None:
                await run_manager.on_llm_new_token(out.text, chunk=out)
            yield out

    @staticmethod
    def _tagged(chunk: BaseMessage, info: dict[str, Any],
                run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
        msg = chunk if isinstance(chunk, AIMessageChunk) else AIMessageChunk(content=chunk.content)
        if info:
            msg = msg.model_copy(update={"response_metadata": {**msg.response_metadata, "bbedit": info}})
        out = ChatGenerationChunk(message=msg)
        if run_manager is not None:
            run_manager.on_llm_new_token(out.text, chunk=out)
        return out

    @staticmethod
    def _pieces(final: AIMessage, run_manager: CallbackManagerForLLMRun | None) -> Iterator[ChatGenerationChunk]:
        text = final.content if isinstance(final.content, str) else str(final.text)
        pieces = _chunks(text)
        for i, piece in enumerate(pieces):
            meta = final.response_metadata if i == len(pieces) - 1 else {}
            out = ChatGenerationChunk(message=AIMessageChunk(content=piece, response_metadata=meta))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=out)
            yield out


class EditMemoryRetriever(BaseRetriever):
    """The edits of ``memory`` as documents: the ``k`` nearest to the query, or, with ``in_scope_only``,
    only the edit the scope gate routes the query to (none when it is out of scope).

    Each document's text is the edit as a sentence ("The CEO of Acme is Maria Okafor."); its metadata
    holds the edit's fields and the retrieval ``score`` (cosine) or the gate's score.
    """

    memory: EditMemory
    k: int = 4
    in_scope_only: bool = False
    gate: Any = None

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _router: Router | None = PrivateAttr(default=None)

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        self.memory.refresh()
        if not self.in_scope_only:
            return [_document(h.edit, h.score) for h in self.memory.search(query, self.k)]
        if self._router is None:
            self._router = Router(self.memory, self.gate)
        route = self._router.route_query(query)
        return [] if route.edit is None else [_document(route.edit, route.score)]

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        fn = functools.partial(self._get_relevant_documents, query, run_manager=run_manager.get_sync())
        return await asyncio.get_running_loop().run_in_executor(None, fn)


def _document(edit: Edit, score: float) -> Document:
    return Document(page_content=fact_sentence(edit), id=edit.id,
                    metadata={**edit.to_dict(), "edit_id": edit.id, "score": float(score)})


class BackendChatModel(BaseChatModel):
    """A LangChain chat model over any bbedit backend (``bbedit.make_backend()``: the embedded
    SmolLM2, or an OpenAI-compatible endpoint). Options given at call time go to the backend."""

    backend: Any
    max_tokens: int | None = None
    temperature: float | None = None

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "bbedit-backend"

    def _opts(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        opts: dict[str, Any] = {k: v for k, v in (("max_tokens", self.max_tokens),
                                                  ("temperature", self.temperature)) if v is not None}
        if stop:
            opts["stop"] = stop
        return {**opts, **kwargs}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        dicts = convert_to_openai_messages(messages)
        text = self.backend.generate(dicts, **self._opts(stop, kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        dicts = convert_to_openai_messages(messages)
        stream = getattr(self.backend, "stream", None)
        pieces = stream(dicts, **self._opts(stop, kwargs)) if callable(stream) else \
            iter([self.backend.generate(dicts, **self._opts(stop, kwargs))])
        for piece in pieces:
            out = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=out)
            yield out


__all__ = ["BackendChatModel", "EditMemoryRetriever", "EditedChatModel"]
