"""Where bbedit finds things it does not ship: configuration, not constants.

The benchmark data (CounterFact, zsRE, BoolQ, ...) is not part of bbedit. Its folder is, in order:
the path a caller passes (a suite file's ``data_root``, a ``--data-root`` flag), ``$BBEDIT_DATA``,
``<user data dir>/bbedit/data`` when it exists (e.g. ``~/.local/share/bbedit/data``), and
``shared/data`` beside a source checkout (the project's own workspace layout) when it exists.
Nothing here reads a file or the environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "BBEDIT_DATA"
"""Environment variable naming the benchmark data folder."""


def data_candidates() -> list[Path]:
    """The folders :func:`data_root` tries after ``$BBEDIT_DATA``, in order."""
    from platformdirs import user_data_dir

    checkout = Path(__file__).resolve().parents[1]
    out = [Path(user_data_dir("bbedit")) / "data"]
    if (checkout / "pyproject.toml").is_file():  # a source checkout, not an installed wheel
        out.append(checkout.parent / "shared" / "data")
    return out


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The benchmark data folder: ``explicit`` if given, else ``$BBEDIT_DATA``, else the first of
    :func:`data_candidates` that exists, else the first candidate (so a missing file is reported
    under a path the user can create). Does not check that the folder exists; raises nothing."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    candidates = data_candidates()
    return next((c for c in candidates if c.is_dir()), candidates[0])
