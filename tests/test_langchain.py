"""The LangChain integration: the standard chat-model unit suite, the retriever, and a slow run that
wraps a real chat model (SmolLM2 on the llama.cpp server) with an edit memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("langchain_core")
langchain_tests = pytest.importorskip("langchain_tests.unit_tests")

from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402

from bbedit.integrations.langchain import BackendChatModel, EditedChatModel, EditMemoryRetriever  # noqa: E402
from bbedit.memory.memory import EditMemory  # noqa: E402

ACME = {"subject": "Acme Corporation", "aliases": ["Acme"], "prompt": "Who is the CEO of Acme Corporation?",
        "target_new": "Maria Okafor", "target_old": "John Smith", "id": "acme-ceo"}
JAPAN = {"subject": "Japan", "prompt": "The capital of Japan is", "target_new": "Osaka", "target_old": "Tokyo",
         "id": "japan"}


_SHARED: list[EditMemory] = []


def _memory() -> EditMemory:
    """One memory for the standard suite (it builds the model many times; building must stay cheap)."""
    if not _SHARED:
        _SHARED.append(EditMemory(None))
        _SHARED[0].add(ACME)
    return _SHARED[0]


class TestEditedChatModelStandard(langchain_tests.ChatModelUnitTests):
    """langchain-tests' standard unit suite; it needs a model object to wrap: langchain-core's fake one."""

    @property
    def chat_model_class(self) -> type[EditedChatModel]:
        return EditedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"llm": FakeListChatModel(responses=["hello"]), "memory": _memory(), "model": "fake"}


def test_retriever_returns_edits_as_documents(embedder: Any) -> None:
    memory = EditMemory(None, embedder=embedder)
    memory.add_many([ACME, JAPAN])
    docs = EditMemoryRetriever(memory=memory, k=2).invoke("Who runs Acme?")
    assert docs[0].id == "acme-ceo" and len(docs) == 2
    assert docs[0].page_content == "Who is the CEO of Acme Corporation? Maria Okafor."
    assert docs[0].metadata["target_new"] == "Maria Okafor" and docs[0].metadata["score"] > docs[1].metadata["score"]
    gated = EditMemoryRetriever(memory=memory, in_scope_only=True)
    assert [d.id for d in gated.invoke("Who is the CEO of Acme Corporation these days?")] == ["acme-ceo"]
    assert gated.invoke("What is the tallest mountain on Earth?") == []
    assert [d.id for d in asyncio.run(gated.ainvoke("What is the capital city of Japan?"))] == ["japan"]
    memory.add({"subject": "Initech", "prompt": "The CEO of Initech is", "target_new": "Bill", "id": "initech"})
    assert [d.id for d in gated.invoke("Who is the CEO of Initech?")] == ["initech"]  # sees new edits


@pytest.mark.slow
def test_wrapping_a_real_chat_model(llama_server: Any, backend: Any, embedder: Any) -> None:
    """SmolLM2 on llama.cpp as a LangChain chat model, wrapped: out of scope the answer is the wrapped
    model's own; in scope it says which edit applied, in invoke, stream, ainvoke and astream."""
    memory = EditMemory(None, embedder=embedder)
    memory.add_many([ACME, JAPAN])
    llm = BackendChatModel(backend=backend, max_tokens=24, temperature=0)
    edited = EditedChatModel(llm=llm, memory=memory)
    other = "What is the largest planet in the solar system?"
    plain = llm.invoke(other, extra_body={"cache_prompt": False})
    out = edited.invoke(other, extra_body={"cache_prompt": False})
    assert out.content == plain.content and "bbedit" not in out.response_metadata

    ans = edited.invoke("Who is the CEO of Acme Corporation?")
    assert ans.response_metadata["bbedit"]["edit_id"] == "acme-ceo" and ans.content
    chunks = list(edited.stream("Who is the CEO of Acme Corporation?"))
    assert all(c.response_metadata["bbedit"]["edit_id"] == "acme-ceo" for c in chunks) and "".join(
        str(c.content) for c in chunks)
    assert asyncio.run(edited.ainvoke("Who is the CEO of Acme?")).response_metadata["bbedit"]["edit_id"] == "acme-ceo"

    async def collect() -> list[Any]:
        return [c async for c in edited.astream("Who is the CEO of Acme?")]

    assert asyncio.run(collect())[0].response_metadata["bbedit"]["editor"] == "ike"

    post = EditedChatModel(llm=llm, memory=memory, editor="replace")
    fixed = post.invoke("What is the capital of Japan?")
    meta = fixed.response_metadata["bbedit"]
    assert meta["edit_id"] == "japan" and "Osaka" in str(fixed.content)
    assert "".join(str(c.content) for c in post.stream("What is the capital of Japan?")) == fixed.content
