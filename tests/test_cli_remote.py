"""``bbedit ask``/``chat --server``: the CLI asks a running proxy instead of loading models itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from bbedit.cli.remote import ProxyClient, base_url
from bbedit.errors import BackendUnavailable, ConfigError
from tests.test_imports import HEAVY, run_cli
from tests.test_server import ACME, Stub

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ok_upstream() -> Iterator[Stub]:
    s = Stub()
    s.mode = "ok"
    yield s
    s.close()


@pytest.fixture
def proxy_url(ok_upstream: Stub, memory: Any) -> Iterator[str]:
    """The real proxy app (uvicorn, in this process) over a memory holding the Acme edit."""
    from bbedit.server import ServerConfig, create_app
    from bbedit.server.background import running

    memory.add({**ACME, "id": "acme"})
    with running(create_app(ServerConfig(upstream=ok_upstream.url, timeout=5.0), memory=memory)) as url:
        yield url


def test_server_urls_are_checked() -> None:
    assert base_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert base_url("http://h:1/v1/") == "http://h:1/v1"
    with pytest.raises(ConfigError, match="http"):
        base_url("127.0.0.1:8000")


def test_an_unreachable_server_is_a_clean_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ProxyClient(f"http://127.0.0.1:{port}", model="m", timeout=2) as c, \
            pytest.raises(BackendUnavailable, match="cannot reach"):
        c.chat([{"role": "user", "content": "hi"}])


def test_server_conflicts_with_local_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from bbedit.cli import main

    assert main(["ask", "--server", "http://127.0.0.1:9", "--memory", str(tmp_path), "q"]) == 1
    assert "--memory" in capsys.readouterr().err


def test_ask_through_the_server_reports_the_edit_and_loads_no_model(proxy_url: str) -> None:
    code, out, heavy = run_cli("ask", "--server", proxy_url, "--model", "m", "--json", "Who is the CEO of Acme?")
    assert code == 0, out
    res = json.loads(out)
    assert res["edit"] == "acme" and res["text"] == "ok" and res["server"] == proxy_url + "/v1"
    assert heavy == [], f"ask --server imported {heavy}"
    code, out, _ = run_cli("ask", "--server", proxy_url, "--model", "m", "--json", "What is the capital of Japan?")
    assert code == 0 and json.loads(out)["edit"] is None
    code, out, _ = run_cli("ask", "--server", proxy_url, "--model", "m", "--json", "--explain", "Who is the CEO of Acme?")
    route = json.loads(out)["route"]  # the server's routing decision, from its X-BBEdit-Route header
    assert route["in_scope"] and route["candidates"][0]["id"] == "acme" and route["candidates"][0]["accepted"]


def test_the_server_comes_from_the_environment_unless_local_options_are_given(proxy_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BBEDIT_SERVER": proxy_url}
    r = subprocess.run([sys.executable, "-m", "bbedit.cli", "chat", "--model", "m"], input="Who is the CEO of Acme?\n/quit\n",
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "bot> ok  [edit acme]" in r.stdout


@pytest.mark.slow
def test_a_real_bbedit_serve_in_front_of_llama_cpp(llama_server: Any, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``bbedit serve`` as a process over the llama.cpp server; ``ask --server`` gets its edited answer."""
    import socket

    mem = tmp_path / "memory"
    code, _, _ = run_cli("edits", "add", "--memory", str(mem), "--subject", "Acme Corporation", "--alias", "Acme",
                         "--prompt", "Who is the CEO of Acme Corporation?", "--target-new", "Maria Okafor",
                         "--id", "acme", tops=HEAVY)
    assert code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    serve = subprocess.Popen([sys.executable, "-m", "bbedit.cli", "serve", "--upstream", llama_server.base_url,
                              "--memory", str(mem), "--port", str(port), "--workers", "1"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        import httpx

        while True:
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert serve.poll() is None and time.monotonic() < deadline, "bbedit serve did not start"
            time.sleep(0.5)
        code, out, heavy = run_cli("ask", "--server", url, "--json", "--max-tokens", "24",
                                   "Who is the CEO of Acme?")
        assert code == 0 and heavy == []
        res = json.loads(out)
        assert res["edit"] == "acme" and "Okafor" in res["text"]
    finally:
        serve.terminate()
        serve.wait(timeout=60)
