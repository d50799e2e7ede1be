"""The one prompt loader: templates are plain files under ``prompts/`` (shipped in the wheel)."""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError

_REPO_PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


def prompts_dir() -> Path:
    """Where the prompt files are: inside the installed package, or the source tree's ``prompts/``."""
    packaged = Path(str(resources.files("bbedit"))) / "_data" / "prompts"
    return packaged if packaged.is_dir() else _REPO_PROMPTS


def data_dir(name: str) -> Path:
    """A folder shipped with bbedit (``memory``, ``prompts`` or ``models``), packaged or in the source tree."""
    packaged = Path(str(resources.files("bbedit"))) / "_data" / name
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / name


def demo_questions() -> list[dict[str, Any]]:
    """The demo's questions (``memory/demo_questions.jsonl``): ``{"question", "edit"}`` rows, ``edit``
    naming the demo edit a question is about, null for a control; lines starting with "#" are comments."""
    text = (data_dir("memory") / "demo_questions.jsonl").read_text(encoding="utf-8")
    return [json.loads(x) for x in text.splitlines() if x.strip() and not x.startswith("#")]


@functools.lru_cache(maxsize=64)
def load_prompt(name: str) -> str:
    """The text of prompt file ``name`` (e.g. "ike/system_fact.txt"), trailing newline removed.

    Raises :class:`ConfigError` when no such prompt file exists.
    """
    path = prompts_dir() / name
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except FileNotFoundError:
        raise ConfigError(f"no prompt file {name!r} in {prompts_dir()}") from None
