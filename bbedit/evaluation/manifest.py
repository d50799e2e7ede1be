"""The run manifest: what produced a ``results.json``, and fingerprints that key every cache.

A manifest records the git commit (with a dirty flag and the dirty paths), the machine (CPU
count and model, memory, OS), Python and the versions of the packages that shape results, and
sha256 fingerprints of the bbedit code, the prompt templates, the shipped models (the
post-editor's adapter, the gate's weights) and the suite's config. The same fingerprints are
part of the call cache's keys (:mod:`bbedit.evaluation.calls`), so a change to a template, to an
editor's code or to an adapter cannot replay results produced before it.

Fingerprints are computed once per process (a run is fingerprinted as it starts);
:func:`clear_cache` forgets them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]  # bbedit/
REPO = PACKAGE.parent
PACKAGES = ("torch", "transformers", "sentence-transformers", "faiss-cpu", "openai", "xllamacpp", "peft",
            "numpy", "bbedit")
MAX_DIRTY_PATHS = 50
OUTPUTS = ("eval/results/", "eval/README.md")  # what runs write: not a change to what produces results
_SKIP_DIRS = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}

_cache: dict[tuple[Any, ...], Any] = {}


def clear_cache() -> None:
    """Forget every fingerprint and git state computed so far in this process."""
    _cache.clear()


def _files(path: Path, suffixes: Sequence[str] | None) -> list[tuple[str, Path]]:
    """``(name, file)`` for ``path`` (a file) or every file under it (a folder), names relative to
    ``path``'s parent, sorted; caches and compiled files are skipped."""
    if path.is_file():
        return [(path.name, path)]
    out = []
    for f in path.rglob("*"):
        rel = f.relative_to(path)
        if not f.is_file() or any(p in _SKIP_DIRS for p in rel.parts) or f.suffix == ".pyc":
            continue
        if suffixes is not None and f.suffix not in suffixes:
            continue
        out.append(((Path(path.name) / rel).as_posix(), f))
    return sorted(out)


def fingerprint(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                suffixes: Sequence[str] | None = None, cached: bool = True) -> str:
    """sha256 (hex, 16 characters) over the files at ``paths`` (files or folders, each folder's files
    sorted; ``suffixes`` such as ``(".py",)`` keeps only those): every file's name relative to its
    top folder and its bytes. Missing paths count as absent (their name is hashed as missing), so a
    fingerprint exists on any install. Cached per process unless ``cached`` is false.

    Raises :class:`OSError` when a file exists but cannot be read.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    resolved = [Path(p).resolve() for p in items]
    key = ("fp", tuple(str(p) for p in resolved), tuple(suffixes) if suffixes is not None else None)
    if cached and key in _cache:
        return str(_cache[key])
    h = hashlib.sha256()
    for p in resolved:
        if not p.exists():
            h.update(f"missing:{p.name}\0".encode())
            continue
        for name, f in _files(p, suffixes):
            h.update(name.encode() + b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
    value = h.hexdigest()[:16]
    _cache[key] = value
    return value


def _data(name: str) -> Path:
    from bbedit.prompts import data_dir

    return data_dir(name)


def code_fingerprint() -> str:
    """Every ``.py`` file of the bbedit package (path and content)."""
    return fingerprint(PACKAGE, (".py",))


def prompts_fingerprint() -> str:
    """The prompt templates (``prompts/``, or the installed package's copy)."""
    from bbedit.prompts import prompts_dir

    return fingerprint(prompts_dir())


def models_fingerprint() -> str:
    """The shipped models: ``models/`` (the post-editor's adapter) and the gate's weights."""
    return fingerprint([_data("models"), PACKAGE / "scope" / "gate_model.json"])


def postedit_fingerprint() -> str:
    """The post-editor's code (``bbedit/editors/postedit/``) and its prompt templates; its adapter's
    weights are hashed apart, by the caller that knows which adapter it loaded."""
    from bbedit.prompts import prompts_dir

    return fingerprint([PACKAGE / "editors" / "postedit", prompts_dir() / "postedit"])


def whitebox_fingerprint() -> str:
    """The white-box methods' code (``bbedit/whitebox/``) and the local model backend they run on."""
    return fingerprint([PACKAGE / "whitebox", PACKAGE / "backends" / "transformers_backend.py"], (".py",))


def suite_fingerprint(cfg: Any) -> str | None:
    """The suite's YAML file (``cfg.source``) or, without one, its config as loaded; None without a config."""
    if cfg is None:
        return None
    source = getattr(cfg, "source", "")
    if source and Path(source).is_file():
        return fingerprint(source, cached=False)
    import dataclasses
    import json

    raw = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type) else dict(cfg)
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprints(cfg: Any = None) -> dict[str, str | None]:
    """The code, prompts, models and suite fingerprints of a run."""
    return {"code": code_fingerprint(), "prompts": prompts_fingerprint(), "models": models_fingerprint(),
            "postedit": postedit_fingerprint(), "whitebox": whitebox_fingerprint(), "suite": suite_fingerprint(cfg)}


# ----------------------------------------------------------------------------- git and machine

def _git(*args: str, cwd: Path = REPO) -> str | None:
    try:
        r = subprocess.run(["git", *args], capture_output=True, text=True, cwd=cwd, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def git_state(repo: Path = REPO, cached: bool = True) -> dict[str, Any]:
    """``commit`` (full hash), ``short``, ``dirty`` (uncommitted changes to tracked files, or untracked
    files that git does not ignore, other than the results runs write, :data:`OUTPUTS`), ``n_dirty`` and
    up to :data:`MAX_DIRTY_PATHS` ``dirty_paths``.
    All None outside a git checkout (an installed package). Cached per process unless ``cached`` is false."""
    key = ("git", str(repo))
    if cached and key in _cache:
        return dict(_cache[key])
    head = _git("rev-parse", "HEAD", cwd=repo)
    if head is None:
        state: dict[str, Any] = {"commit": None, "short": None, "dirty": None, "n_dirty": None, "dirty_paths": []}
    else:
        status = _git("status", "--porcelain", cwd=repo) or ""
        paths = [line[3:] for line in status.splitlines() if line.strip()]
        paths = [p for p in paths if not p.strip('"').startswith(OUTPUTS)]
        state = {"commit": head.strip(), "short": head.strip()[:7], "dirty": bool(paths), "n_dirty": len(paths),
                 "dirty_paths": paths[:MAX_DIRTY_PATHS]}
    _cache[key] = state
    return dict(state)


def cpu_count() -> int:
    """CPUs this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine() -> dict[str, Any]:
    """CPU count (usable by this process, and the machine's), CPU model, total RAM, OS and architecture."""
    return {"cpu_count": cpu_count(), "cpu_count_machine": os.cpu_count(), "cpu_model": _cpu_model(),
            "ram_gib": _ram_gib(), "os": platform.platform(), "arch": platform.machine()}


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of ``names`` (None for one that is not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def machine_line(m: dict[str, Any] | None = None) -> str:
    """One line for a report: "16 CPU cores (AMD EPYC ...), 62.8 GiB RAM"."""
    m = m or machine()
    ram = f", {m['ram_gib']} GiB RAM" if m.get("ram_gib") else ""
    model = f" ({m['cpu_model']})" if m.get("cpu_model") else ""
    return f"{m['cpu_count']} CPU cores{model}{ram}"


def run_manifest(cfg: Any = None) -> dict[str, Any]:
    """Everything that identifies how a run's results were produced (see the module docstring)."""
    from bbedit.types import utc_now

    return {"git": git_state(), "machine": machine(), "python": platform.python_version(),
            "packages": package_versions(), "fingerprints": fingerprints(cfg), "created_at": utc_now()}
