"""Configuration of the IKE editor."""

from __future__ import annotations

from dataclasses import dataclass

from bbedit.errors import ConfigError

MODES = ("fact", "ike")


@dataclass(frozen=True)
class IKEConfig:
    """How the in-scope edit is put in front of the model.

    mode: "ike" (the default) adds demonstrations (copy / update / retain, as in the IKE paper) as
        earlier turns, each a new fact with a question and its answer; "fact" only puts the updated
        fact in a system message (shorter prompts, faster). No committed suite runs "fact", so how the
        two compare is not measured here.
    n_demos: how many demonstrations "ike" retrieves from the pool (most similar to the query).
    demos_file: the demonstration pool, a JSONL file under ``prompts/``.
    """

    mode: str = "ike"
    n_demos: int = 6
    demos_file: str = "ike/demos.jsonl"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"IKE mode must be one of {MODES}, not {self.mode!r}")
        if self.n_demos < 0:
            raise ConfigError(f"n_demos must be >= 0, got {self.n_demos}")
