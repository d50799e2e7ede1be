import numpy as np
import pytest

from bbedit.errors import ConfigError
from bbedit.memory.index import VectorIndex


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_finds_itself_and_skips_removed(kind: str) -> None:
    x = _unit(500, 32)
    idx = VectorIndex(32, kind=kind)
    idx.add(list(range(100, 600)), x)
    hits = idx.search(x[:10], 3)
    assert [h[0][0] for h in hits] == list(range(100, 110))
    assert hits[0][0][1] == pytest.approx(1.0, abs=1e-5)
    idx.remove([100, 101])
    assert 100 not in idx and len(idx) == 498
    top = idx.search(x[:2], 5)
    assert all(h[0] not in (100, 101) for row in top for h in row)


def test_auto_switches_to_hnsw_and_back() -> None:
    x = _unit(300, 16)
    idx = VectorIndex(16, hnsw_threshold=200)
    idx.add(list(range(150)), x[:150])
    assert idx.active_kind == "flat"
    idx.search(x[:1], 1)
    idx.add(list(range(150, 300)), x[150:])
    assert idx.active_kind == "hnsw"
    assert idx.search(x[250:251], 1)[0][0][0] == 250


def test_replacing_an_id_and_compaction() -> None:
    x = _unit(3000, 8)
    idx = VectorIndex(8, kind="flat")
    idx.add(list(range(3000)), x)
    idx.add([5], x[7:8])  # id 5 now holds vector 7
    assert np.allclose(idx.vector(5), x[7])
    idx.remove(list(range(10, 2500)))  # enough to trigger compaction
    assert len(idx) == 510
    assert idx.search(x[2999:3000], 1)[0][0][0] == 2999


def test_bad_shapes() -> None:
    idx = VectorIndex(8)
    with pytest.raises(ConfigError):
        idx.add([1], np.zeros((1, 9), np.float32))
    with pytest.raises(ConfigError):
        VectorIndex(8, kind="ivf-magic")
    assert idx.search(np.zeros(8, np.float32), 3) == [[]]
