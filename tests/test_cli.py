import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bbedit.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def mem(tmp_path: Path, embedder) -> str:  # type: ignore[no-untyped-def]  # embedder: loaded once per session
    return str(tmp_path / "memory")


def test_edits_add_list_show_rm(capsys: pytest.CaptureFixture[str], mem: str) -> None:
    code, out, _ = run(capsys, "edits", "add", "--memory", mem, "--subject", "Acme", "--prompt", "The CEO of Acme is",
                       "--target-new", "Jane Doe", "--target-old", "John Roe", "--alias", "Acme Corp", "--id", "acme")
    assert code == 0 and out.strip() == "acme"
    code, out, _ = run(capsys, "edits", "add", "--memory", mem, "--subject", "Acme", "--prompt", "The CEO of Acme is",
                       "--target-new", "Maria Okafor")
    new_id = out.strip()
    code, out, err = run(capsys, "edits", "list", "--memory", mem)
    assert code == 0 and new_id in out and "acme " not in out and "1 active edits" in err
    code, out, _ = run(capsys, "edits", "list", "--memory", mem, "--all")
    assert "[superseded]" in out
    code, out, _ = run(capsys, "edits", "show", "--memory", mem, new_id)
    shown = json.loads(out)
    assert shown["target_new"] == "Maria Okafor" and shown["supersedes"] == "acme" and shown["history"] == ["acme"]
    code, out, _ = run(capsys, "edits", "rm", "--memory", mem, new_id)
    assert code == 0 and f"removed {new_id}" in out


def test_unknown_ids_fail_cleanly_and_remove_nothing(capsys: pytest.CaptureFixture[str], mem: str) -> None:
    run(capsys, "edits", "add", "--memory", mem, "--subject", "Acme", "--prompt", "The CEO of Acme is",
        "--target-new", "Jane", "--id", "keep")
    code, _, err = run(capsys, "edits", "rm", "--memory", mem, "keep", "nope")
    assert code == 1 and "no edit with id 'nope'" in err
    code, _, err = run(capsys, "edits", "show", "--memory", mem, "nope")
    assert code == 1
    code, out, _ = run(capsys, "edits", "list", "--memory", mem)
    assert "keep" in out


def test_import_export_and_malformed_files(capsys: pytest.CaptureFixture[str], mem: str, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps({"id": f"g{i}", "subject": f"Firm {i}", "prompt": f"The CEO of Firm {i} is",
                                          "target_new": f"Person {i}"}) for i in range(3)) + "\n")
    code, out, _ = run(capsys, "edits", "import", "--memory", mem, str(good), "--quiet")
    assert code == 0 and "imported 3" in out
    code, out, _ = run(capsys, "edits", "import", "--memory", mem, str(good), "--quiet")
    assert "imported 0" in out and "3 already present" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"subject": "A", "prompt": "p A", "target_new": "x"}\n{"subject": "B", "prompt": "p B"}\n')
    code, _, err = run(capsys, "edits", "import", "--memory", mem, str(bad))
    assert code == 1 and "bad.jsonl:2" in err and "target_new" in err
    out_file = tmp_path / "out.jsonl"
    code, out, _ = run(capsys, "edits", "export", "--memory", mem, str(out_file))
    assert code == 0 and len(out_file.read_text().splitlines()) == 3
    code, _, err = run(capsys, "edits", "export", "--memory", mem, str(tmp_path / "x"), "--format", "zsre")
    assert code == 1 and "jsonl" in err


def test_corrupt_memory_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "broken"
    d.mkdir()
    (d / "edits.sqlite").write_bytes(b"garbage" * 500)
    code, _, err = run(capsys, "edits", "list", "--memory", str(d))
    assert code == 1 and "not a readable edit memory" in err
    assert (d / "edits.sqlite").read_bytes() == b"garbage" * 500  # left as it was for the user to inspect


def test_unreachable_endpoint(capsys: pytest.CaptureFixture[str], mem: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run(capsys, "ask", "--memory", mem, "--base-url", f"http://127.0.0.1:{port}/v1", "--timeout", "2",
                       "Who is the CEO of Acme?")
    assert code == 1 and f"127.0.0.1:{port}" in err


def test_gate_show_and_set(capsys: pytest.CaptureFixture[str], mem: str) -> None:
    code, out, _ = run(capsys, "gate", "set", "--memory", mem, "0.9")
    assert code == 0
    code, out, _ = run(capsys, "gate", "show", "--memory", mem)
    assert json.loads(out) == {"kind": "learned", "threshold": 0.9}
    code, _, err = run(capsys, "gate", "set", "--memory", mem, "1.7")
    assert code == 1 and "0.0..1.0" in err


def test_help_lists_commands_and_imports_no_heavy_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "ask", "chat", "edits", "gate", "serve-model"):
        assert cmd in out
    # in a fresh interpreter (this one has imported whatever other tests needed): no torch, transformers, faiss
    probe = ("import sys\nfrom bbedit.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "{'torch', 'transformers', 'faiss', 'sentence_transformers'}), file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert r.returncode == 0 and "edits" in r.stdout
    assert r.stderr.strip().splitlines()[-1] == "[]", r.stderr[-2000:]


@pytest.mark.slow
def test_ask_and_demo_against_the_real_server(capsys: pytest.CaptureFixture[str], mem: str, llama_server) -> None:  # type: ignore[no-untyped-def]
    url = llama_server.base_url
    run(capsys, "edits", "add", "--memory", mem, "--subject", "Acme Corporation", "--alias", "Acme",
        "--prompt", "Who is the CEO of Acme Corporation?", "--target-new", "Maria Okafor", "--id", "acme")
    code, out, _ = run(capsys, "ask", "--memory", mem, "--base-url", url, "--json", "Who is the CEO of Acme?")
    res = json.loads(out)
    assert code == 0 and res["edit"] == "acme" and res["text"]
    code, out, _ = run(capsys, "ask", "--memory", mem, "--base-url", url, "--json", "What is the capital of Japan?")
    assert json.loads(out)["edit"] is None
    code, out, _ = run(capsys, "demo", "--base-url", url, "--max-tokens", "24")
    assert code == 0 and "before editing" in out and "after editing" in out
    assert "edits taking effect: " in out and "control questions untouched: " in out  # judged, not only routed


def test_import_refuses_ids_taken_by_other_edits(capsys: pytest.CaptureFixture[str], mem: str, tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text(json.dumps({"id": "x1", "subject": "Acme", "prompt": "The CEO of Acme is", "target_new": "Jane"}) + "\n")
    b.write_text(json.dumps({"id": "x1", "subject": "Lyon", "prompt": "The twin city of Lyon is", "target_new": "Oslo"}) + "\n")
    assert run(capsys, "edits", "import", "--memory", mem, str(a), "--quiet")[0] == 0
    code, _, err = run(capsys, "edits", "import", "--memory", mem, str(b), "--quiet")
    assert code == 1 and "reuse ids" in err and "--id-prefix" in err


@pytest.mark.slow
def test_interactive_chat_session(mem: str, llama_server, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    run(capsys, "edits", "add", "--memory", mem, "--subject", "Acme Corporation", "--alias", "Acme Corp",
        "--prompt", "Who is the CEO of Acme Corporation?", "--target-new", "Maria Okafor", "--id", "acme")
    script = "Who is the CEO of Acme Corp?\nWhat is the capital of Japan?\n/reset\n/quit\n"
    p = subprocess.run([sys.executable, "-m", "bbedit.cli", "chat", "--memory", mem, "--base-url", llama_server.base_url,
                        "--max-tokens", "16"], input=script, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 0, p.stderr
    bot = [line for line in p.stdout.splitlines() if line.startswith("you> bot> ") or "bot> " in line]
    assert len(bot) == 2 and "[edit acme]" in bot[0] and "[edit" not in bot[1]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_edits_history_revert_and_restore(capsys: pytest.CaptureFixture[str], mem: str, store: str,
                                          request: pytest.FixtureRequest) -> None:
    import time

    loc = ["--memory", mem] if store == "sqlite" else ["--memory", request.getfixturevalue("pg_url"),
                                                       "--namespace", "cli-" + os.urandom(4).hex()]
    add = ["edits", "add", *loc, "--subject", "Acme", "--prompt", "The CEO of Acme is"]
    assert run(capsys, *add, "--target-new", "Jane Doe", "--id", "ceo-1")[0] == 0
    then = time.time() + 0.02
    time.sleep(0.1)
    assert run(capsys, *add, "--target-new", "Max Power", "--id", "ceo-2")[0] == 0
    code, out, _ = run(capsys, "edits", "history", *loc, "ceo-1")
    assert code == 0 and "create" in out and "supersede" in out and "superseded by ceo-2" in out
    code, out, _ = run(capsys, "edits", "history", *loc, "--json")
    assert [json.loads(x)["op"] for x in out.splitlines()] == ["create", "create", "supersede"]
    assert json.loads(out.splitlines()[0])["actor"].startswith("cli")
    code, out, _ = run(capsys, "edits", "revert", *loc, "ceo-2", "--to", "0")
    assert code == 0 and "removed" in out
    code, out, err = run(capsys, "edits", "list", *loc)
    assert "ceo-1" in out and "ceo-2" not in out
    assert run(capsys, *add, "--target-new", "Lena Moreau", "--id", "ceo-3")[0] == 0
    code, out, _ = run(capsys, "edits", "restore", *loc, "--at", str(then))
    assert code == 0 and "2 edits changed" in out  # ceo-3 gone again, ceo-1 back in force
    code, out, _ = run(capsys, "edits", "list", *loc)
    assert out.split()[0] == "ceo-1" and "ceo-3" not in out
    code, _, err = run(capsys, "edits", "restore", *loc, "--at", "last tuesday")
    assert code != 0 and "ISO-8601" in err
    code, _, err = run(capsys, "edits", "revert", *loc, "nope", "--to", "1")
    assert code != 0 and "nope" in err


def test_an_unreachable_postgres_memory_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://nobody@/bbedit?host={tmp_path}"  # no server listens there
    code, _, err = run(capsys, "edits", "list", "--memory", url)
    assert code != 0 and "cannot reach the PostgreSQL memory" in err and "Traceback" not in err
