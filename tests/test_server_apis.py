"""The Responses API and plain completions through the proxy, in front of the real llama.cpp server,
through the real openai client: passed through out of scope, edited in scope (streamed and not)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("httpx")
pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from bbedit.server import ServerConfig, create_app  # noqa: E402
from bbedit.server.background import running  # noqa: E402

pytestmark = pytest.mark.slow

JAPAN = {"subject": "Japan", "prompt": "The capital of Japan is", "target_new": "Osaka", "target_old": "Tokyo",
         "id": "japan"}
IN_Q, OUT_Q = "What is the capital of Japan?", "Name a primary colour."
NO_CACHE = {"cache_prompt": False}  # llama.cpp's prompt cache changes greedy outputs between calls


@pytest.fixture(scope="module", params=["ike", "replace"])
def served(request: Any, llama_server: Any, embedder: Any) -> Iterator[tuple[Any, Any, str]]:
    from bbedit.memory.memory import EditMemory

    memory = EditMemory(None, embedder=embedder)
    memory.add(JAPAN)
    cfg = ServerConfig(upstream=llama_server.base_url, editor=request.param)
    with running(create_app(cfg, memory=memory)) as url:
        yield (openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0),
               openai.OpenAI(base_url=llama_server.base_url, api_key="sk-test", max_retries=0), request.param)


def _stream_text(events: Any) -> tuple[str, list[Any]]:
    seen = list(events)
    return "".join(e.delta for e in seen if e.type == "response.output_text.delta"), seen


def test_responses_out_of_scope_pass_through(served: tuple[Any, Any, str], llama_server: Any) -> None:
    proxied, direct, _ = served
    opts: dict[str, Any] = {"model": llama_server.model, "input": OUT_Q, "max_output_tokens": 10, "temperature": 0,
                            "extra_body": NO_CACHE}
    raw = proxied.responses.with_raw_response.create(**opts)
    a, b = raw.parse(), direct.responses.create(**opts)
    assert "x-bbedit-edit" not in raw.headers and "bbedit" not in (a.model_extra or {})
    assert a.output_text == b.output_text and a.output_text
    text, seen = _stream_text(proxied.responses.create(**opts, stream=True))
    assert text == b.output_text and seen[-1].type == "response.completed"


def test_responses_in_scope_are_edited(served: tuple[Any, Any, str], llama_server: Any) -> None:
    proxied, _, editor = served
    opts: dict[str, Any] = {"model": llama_server.model, "instructions": "Answer in one short sentence.",
                            "input": [{"role": "user", "content": [{"type": "input_text", "text": IN_Q}]}],
                            "max_output_tokens": 24, "temperature": 0, "extra_body": NO_CACHE}
    raw = proxied.responses.with_raw_response.create(**opts)
    answer = raw.parse()
    assert raw.headers["x-bbedit-edit"] == "japan" and raw.headers["x-bbedit-editor"] == editor
    info = (answer.model_extra or {})["bbedit"]
    assert info["edit_id"] == "japan" and answer.output_text
    if editor == "replace":
        assert "Osaka" in answer.output_text and info["changed"] == [True]
    text, seen = _stream_text(proxied.responses.create(**opts, stream=True))
    assert text == answer.output_text  # the same edited request (IKE) or the same rewrite (post-editor)
    assert seen[-1].type == "response.completed" and seen[-1].response.output_text == text
    assert all((e.model_extra or {}).get("bbedit", {}).get("edit_id") == "japan" for e in seen)


def test_completions_in_and_out_of_scope(served: tuple[Any, Any, str], llama_server: Any) -> None:
    proxied, direct, editor = served
    opts: dict[str, Any] = {"model": llama_server.model, "max_tokens": 8, "temperature": 0, "extra_body": NO_CACHE}
    out = proxied.completions.with_raw_response.create(prompt="Roses are red, violets are", **opts)
    assert "x-bbedit-edit" not in out.headers
    assert out.parse().choices[0].text == direct.completions.create(prompt="Roses are red, violets are",
                                                                    **opts).choices[0].text
    raw = proxied.completions.with_raw_response.create(prompt=JAPAN["prompt"], **opts)
    answer = raw.parse()
    assert raw.headers["x-bbedit-edit"] == "japan"
    text = answer.choices[0].text
    if editor == "replace":
        assert "Osaka" in text
    streamed = "".join(c.choices[0].text for c in proxied.completions.create(prompt=JAPAN["prompt"], stream=True,
                                                                              **opts) if c.choices)
    assert streamed == text
