"""Configuration of the post-editors."""

from __future__ import annotations

from dataclasses import dataclass

from bbedit.errors import ConfigError

DEFAULT_ADAPTER = "postedit-smollm2-135m"  # shipped under models/ (bbedit/_data/models in the wheel)


@dataclass(frozen=True)
class PostEditConfig:
    """The learned post-editor.

    model: the local causal LM: None for the packaged SmolLM2-135M-Instruct GGUF, or any HF
        model directory, HF id in the local cache, or ``.gguf`` file.
    adapter: the LoRA adapter trained for ``model`` (a directory written by
        ``bbedit posteditor train``); "default" is the one shipped with bbedit (trained on
        SmolLM2-135M-Instruct), None runs the bare model (useful only to measure the training).
    keep_threshold: the answer stands when the editor's probability of "keep" (vs "edit"),
        read from its first output token, is at least this.
    max_new_tokens: cap on the length of the edit script the editor writes.
    rule_spans: once the editor has decided to edit, an answer that names the edit's old value
        gets the exact script "<old value as written> => <new>" without decoding one; the model
        writes the script only when the answer does not name it, or the edit does not say what it
        replaces. False: the model writes every script (to measure it alone).
    typed_minimum: for an edit without an old value, when no rule finds the value an answer gives, the
        candidate value most like the new value in kind (MiniLM cosine, :mod:`bbedit.editors.postedit.typed`)
        counts when its cosine reaches this; None turns that off.
    threads: torch threads (None: torch's default).
    gate_threshold: the scope gate threshold to use with this editor when it is lower than the
        gate's own: the editor's keep decision is a second filter, so the gate may let more through.
        None: the gate's threshold. Where the default stands on development data (the gate's
        validation split of counterfact-train) is in eval/results/postedit-threshold/.
    """

    model: str | None = None
    adapter: str | None = "default"
    keep_threshold: float = 0.5
    max_new_tokens: int = 64
    rule_spans: bool = True
    gate_threshold: float | None = 0.3
    typed_minimum: float | None = 0.35  # typed.DEFAULT_MINIMUM, chosen by `python -m bbedit.editors.postedit.typed`
    threads: int | None = None
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not 0.0 <= self.keep_threshold <= 1.0:
            raise ConfigError(f"keep_threshold must be in [0, 1], got {self.keep_threshold}")
        if self.gate_threshold is not None and not 0.0 <= self.gate_threshold <= 1.0:
            raise ConfigError(f"gate_threshold must be in [0, 1], got {self.gate_threshold}")
        if self.typed_minimum is not None and not -1.0 <= self.typed_minimum <= 1.0:
            raise ConfigError(f"typed_minimum must be a cosine in [-1, 1], got {self.typed_minimum}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
