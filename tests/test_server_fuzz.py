"""Generated malformed and hostile requests (hypothesis): no 500s, and the proxy stays up.

The upstream here is a closed port (failure injection): requests that pass validation get a clean
502. The benchmark (eval/middleware.py) runs the same generator against the real model.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("hypothesis")
httpx = pytest.importorskip("httpx")

from bbedit.evaluation.fuzz import fuzz  # noqa: E402
from bbedit.server import ServerConfig, create_app  # noqa: E402
from bbedit.server.background import running  # noqa: E402

from .test_server import free_port  # noqa: E402


def test_fuzzed_requests_never_get_a_500(memory: Any) -> None:
    cfg = ServerConfig(upstream=f"http://127.0.0.1:{free_port()}/v1", token="tok", max_retries=0,
                       max_body_bytes=64 * 1024)
    with running(create_app(cfg, memory=memory)) as url:
        result = fuzz(url, 400, "tok", seed=1)
        assert result.total == 400 and not result.transport_errors
        assert not result.server_errors, result.server_errors[:3]
        assert {400, 401, 404, 422} <= set(result.statuses)  # the generator reaches the validation paths
        assert result.statuses[502] == result.upstream_errors > 0  # and valid requests reach the upstream
        assert httpx.get(url + "/healthz").status_code == 200
