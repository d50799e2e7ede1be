"""Model calls for benchmarks: the cache and parallel map live in :mod:`bbedit.backends.cache`; here
the cached model and scorer key every call on the prompt templates' fingerprint by default
(:func:`bbedit.evaluation.manifest.prompts_fingerprint`), so a changed template replays nothing."""

from __future__ import annotations

from typing import Any

from bbedit.backends import cache as _cache
from bbedit.backends.cache import NOT_MEASURED, CallCache, pmap


class CachedModel(_cache.CachedModel):
    """:class:`bbedit.backends.cache.CachedModel` whose ``fingerprint`` defaults to the prompt templates'."""

    def __init__(self, backend: Any, cache: CallCache | None = None, model_id: str | None = None, *,
                 fingerprint: str | None = None, **opts: Any) -> None:
        from bbedit.evaluation.manifest import prompts_fingerprint

        super().__init__(backend, cache, model_id, fingerprint=prompts_fingerprint() if fingerprint is None
                         else fingerprint, **opts)


class CachedScorer(_cache.CachedScorer):
    """:class:`bbedit.backends.cache.CachedScorer` whose ``fingerprint`` defaults to the prompt templates'."""

    def __init__(self, backend: Any, cache: CallCache | None = None, model_id: str | None = None, *,
                 fingerprint: str | None = None) -> None:
        from bbedit.evaluation.manifest import prompts_fingerprint

        super().__init__(backend, cache, model_id,
                         fingerprint=prompts_fingerprint() if fingerprint is None else fingerprint)


__all__ = ["NOT_MEASURED", "CachedModel", "CachedScorer", "CallCache", "pmap"]
