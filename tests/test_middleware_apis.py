"""The middleware benchmark's reading of Responses and completions answers, whole and streamed."""

from __future__ import annotations

import json

import httpx

from bbedit.evaluation.middleware import api_requests, api_text


def _sse(events: list[object]) -> httpx.Response:
    lines = [f"data: {json.dumps(e)}" if not isinstance(e, str) else e for e in events]
    return httpx.Response(200, text="\n\n".join(lines) + "\n\n")


def test_responses_text_whole_and_streamed() -> None:
    whole = httpx.Response(200, json={"status": "completed", "output": [
        {"type": "reasoning", "content": []},
        {"type": "message", "content": [{"type": "output_text", "text": "Osaka "}, {"type": "output_text", "text": "is it."}]}]})
    assert api_text("responses", whole, False) == ("Osaka is it.", True)
    stream = _sse([{"type": "response.created"}, {"type": "response.output_text.delta", "delta": "Osa"},
                   {"type": "response.output_text.delta", "delta": "ka."}, {"type": "response.completed"}])
    assert api_text("responses", stream, True) == ("Osaka.", True)
    cut = _sse([{"type": "response.output_text.delta", "delta": "Osa"}])  # no response.completed: incomplete
    assert api_text("responses", cut, True) == ("Osa", False)


def test_completions_text_whole_and_streamed() -> None:
    whole = httpx.Response(200, json={"choices": [{"text": " blue.", "index": 0}]})
    assert api_text("completions", whole, False) == (" blue.", True)
    stream = _sse([{"choices": [{"text": " bl", "index": 0}]}, {"choices": [{"text": "ue", "index": 0}]},
                   {"choices": [], "usage": {}}, "data: [DONE]"])
    assert api_text("completions", stream, True) == (" blue", True)


def test_api_requests_cover_both_apis_streamed_and_not() -> None:
    reqs = api_requests("m", 8)
    kinds = {(api, bool(body.get("stream"))) for api, body in reqs}
    assert kinds == {("responses", False), ("responses", True), ("completions", False), ("completions", True)}
    assert all(body["temperature"] == 0 and body["cache_prompt"] is False for _, body in reqs)
    assert any(isinstance(b["input"], list) for a, b in reqs if a == "responses")
    assert any(isinstance(b["input"], str) for a, b in reqs if a == "responses")
