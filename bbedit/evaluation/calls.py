"""Model calls for benchmarks: the cache and parallel map live in :mod:`bbedit.backends.cache`."""

from bbedit.backends.cache import CachedModel, CachedScorer, CallCache, pmap

__all__ = ["CachedModel", "CachedScorer", "CallCache", "pmap"]
