"""The shared machinery of benchmark suites: a suite's config, the systems under test, routing,
and answering probes under the two protocols.

Systems (what a user could deploy in front of the same model; each is a Router and an
:class:`~bbedit.pipeline.EditedModel`, built in :mod:`bbedit.evaluation.systems`):

- ``none``: the unedited model; every query goes through as asked.
- ``bbedit``: edit memory + scope gate + editor (IKE); out-of-scope queries go through untouched.
- ``always``: the memory's top hit is applied to every query (in-context editing without a gate).
- ``postedit`` / ``replace``: the same memory and gate, but the model answers as usual and a
  post-editor rewrites a routed query's answer: the learned local post-editor, or the rule-based
  baseline. The answer rewritten is the dataset's recorded one (PostEdit's ``response_before_edit``)
  with ``options.original: reference``, else the unedited model's.

Protocols (reported separately, never averaged together):

- ``generation`` (default, black-box): the query as the only user message, chat template,
  greedy, natural stop (``max_tokens`` is a safety cap); judged by containment of the answer.
- ``probability`` (teacher forcing, white-box or logprob-capable models): the log-probability
  of the new vs. the old answer as the start of the reply (after the prompt itself, for cloze
  prompts), on exactly the messages the system would send.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError
from bbedit.evaluation.calls import CachedModel, CachedScorer, CallCache
from bbedit.evaluation.report import DATA_ROOT, RESULTS_ROOT
from bbedit.evaluation.systems import CachedBackend
from bbedit.evaluation.tasks import task_names
from bbedit.types import Edit

log = logging.getLogger(__name__)

SYSTEMS = ("none", "bbedit", "always", "postedit", "replace")
POST_EDITORS = ("postedit", "replace")
PROTOCOLS = ("generation", "probability")


@dataclass
class SuiteConfig:
    """A benchmark suite, as written in ``eval/<suite>.yaml``."""

    suite: str
    task: str = "editing"
    description: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)  # path (relative to the data root), format, on_error
    n: int | None = None
    memory: str = "file"  # "file": every edit in the dataset file; "cases": only the n cases' edits
    systems: list[str] = field(default_factory=lambda: ["none", "bbedit"])
    editor: dict[str, Any] = field(default_factory=lambda: {"name": "ike"})
    backend: dict[str, Any] = field(default_factory=lambda: {"kind": "embedded"})
    protocols: list[str] = field(default_factory=lambda: ["generation"])
    generation: dict[str, Any] = field(default_factory=lambda: {"max_tokens": 48})
    probability: dict[str, Any] = field(default_factory=dict)  # n (cases), model (None: packaged SmolLM2)
    workers: int = 4
    options: dict[str, Any] = field(default_factory=dict)  # task-specific settings
    source: str = ""  # the YAML file it came from

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SuiteConfig:
        """The suite in ``path``, with the files it ``include:``s merged under it (see :func:`read_suite`);
        its name defaults to the file's stem. Raises :class:`ConfigError` for an unreadable or invalid
        file, an include cycle, or unknown keys."""
        p = Path(path)
        raw = read_suite(p)
        raw.setdefault("suite", p.stem)
        return cls.from_dict(raw, source=str(p))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "") -> SuiteConfig:
        known = set(cls.__dataclass_fields__) - {"source"}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"suite {source or raw.get('suite')}: unknown key(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(known))}")
        cfg = cls(**dict(raw), source=source)
        cfg.check()
        return cfg

    def check(self) -> None:
        where = f"suite {self.suite!r}"
        if self.task not in task_names():
            raise ConfigError(f"{where}: unknown task {self.task!r}; known: {', '.join(task_names())}")
        bad = [s for s in self.systems if s not in SYSTEMS]
        if bad or not self.systems:
            raise ConfigError(f"{where}: unknown system(s) {bad or '[]'}; known: {', '.join(SYSTEMS)}")
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad:
            raise ConfigError(f"{where}: unknown protocol(s) {bad}; known: {', '.join(PROTOCOLS)}")
        if self.n is not None and (not isinstance(self.n, int) or self.n < 1):
            raise ConfigError(f"{where}: n must be a positive integer, got {self.n!r}")
        if self.memory not in ("file", "cases"):
            raise ConfigError(f"{where}: memory must be 'file' or 'cases', got {self.memory!r}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"{where}: workers must be a positive integer, got {self.workers!r}")
        if self.task != "general" and not self.dataset.get("path"):
            raise ConfigError(f"{where}: dataset.path is required")

    def command(self) -> str:
        return f"bbedit eval {self.source or 'eval/' + self.suite + '.yaml'}"


def _read_yaml(p: Path) -> dict[str, Any]:
    import yaml

    try:
        raw = yaml.safe_load(p.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read suite {p}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"suite {p} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"suite {p} must be a YAML mapping, got {type(raw).__name__}")
    return raw


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``: mappings present in both are merged key by key (recursively), any
    other value in ``over`` replaces the one in ``base``."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def read_suite(path: str | os.PathLike[str], _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A suite file's mapping with its ``include:`` resolved: a path (relative to the including file) or a
    list of them, read in order and deep-merged (:func:`deep_merge`), the including file winning. Raises
    :class:`ConfigError` for an unreadable or invalid file, a malformed ``include`` and an include cycle."""
    p = Path(path)
    here = p.resolve()
    if here in _chain:
        cycle = " -> ".join(str(x) for x in (*_chain, here))
        raise ConfigError(f"suite include cycle: {cycle}")
    raw = _read_yaml(p)
    inc = raw.pop("include", None)
    if inc is None:
        return raw
    paths = [inc] if isinstance(inc, str) else inc
    if not isinstance(paths, list) or not paths or not all(isinstance(x, str) and x for x in paths):
        raise ConfigError(f"suite {p}: include must be a file path or a list of them, got {inc!r}")
    merged: dict[str, Any] = {}
    for rel in paths:
        merged = deep_merge(merged, read_suite(p.parent / os.path.expanduser(rel), (*_chain, here)))
    return deep_merge(merged, raw)


def list_suites(folder: str | os.PathLike[str]) -> list[Path]:
    """The suite files in ``folder`` (``*.yaml``), leaving out the shared parts they include (names
    starting with ``_``)."""
    return sorted(p for p in Path(folder).glob("*.yaml") if not p.name.startswith("_"))


@dataclass
class RunContext:
    """What a task needs at run time: where data and results live, the cache, the models."""

    cfg: SuiteConfig
    data_root: Path = DATA_ROOT
    results_root: Path = RESULTS_ROOT
    cache_dir: Path | None = None  # None: no persistent cache
    _stack: Any = None
    _model: CachedModel | None = None
    _scorer: CachedScorer | None = None
    _cache: CallCache | None = None
    _backend: CachedBackend | None = None

    def data_path(self, rel: str | os.PathLike[str]) -> Path:
        p = Path(os.path.expanduser(str(rel)))
        full = p if p.is_absolute() else self.data_root / p
        if not full.exists():
            raise ConfigError(f"suite {self.cfg.suite!r}: data file not found: {full} "
                              f"(set the data root with --data-root or BBEDIT_DATA)")
        return full

    @property
    def cache(self) -> CallCache:
        if self._cache is None:
            path = self.cache_dir / self.cfg.suite / "calls.sqlite" if self.cache_dir else None
            self._cache = CallCache(path)
        return self._cache

    def model(self) -> CachedModel:
        """The model under test, started (embedded) or connected on first use."""
        if self._model is None:
            import contextlib

            from bbedit.backends.openai_backend import OpenAIBackend

            if self._stack is None:
                self._stack = contextlib.ExitStack()
            b = dict(self.cfg.backend)
            kind = b.pop("kind", "embedded")
            timeout = float(b.pop("timeout", 180))
            if kind == "embedded":
                from bbedit.backends.embedded import EmbeddedServer

                server = self._stack.enter_context(EmbeddedServer(
                    model_path=b.pop("model_path", None), n_threads=b.pop("n_threads", None),
                    n_parallel=int(b.pop("n_parallel", self.cfg.workers)), n_ctx=int(b.pop("n_ctx", 4096))))
                backend = OpenAIBackend(model=server.model, base_url=server.base_url, timeout=timeout)
            elif kind == "openai":
                api_key = os.environ.get(str(b.pop("api_key_env", "OPENAI_API_KEY")), "sk-none")
                backend = OpenAIBackend(model=b.pop("model", None), base_url=b.pop("base_url", None),
                                        api_key=api_key, timeout=timeout)
            else:
                raise ConfigError(f"suite {self.cfg.suite!r}: backend.kind must be 'embedded' or 'openai', got {kind!r}")
            if b:
                raise ConfigError(f"suite {self.cfg.suite!r}: unknown backend option(s) {', '.join(sorted(b))}")
            self._model = CachedModel(backend, self.cache, **{"temperature": 0.0, **self.cfg.generation})
        return self._model

    def backend(self) -> CachedBackend:
        """The model under test as a :class:`~bbedit.backends.Backend` (over :meth:`model`), shared by the
        run's systems, so a request several systems send is made once."""
        if self._backend is None:
            self._backend = CachedBackend(self.model())
        return self._backend

    def scorer(self) -> CachedScorer:
        if self._scorer is None:
            from bbedit.backends.transformers_backend import TransformersBackend

            opts = self.cfg.probability
            backend = TransformersBackend(opts.get("model"), threads=opts.get("threads"))
            self._scorer = CachedScorer(backend, self.cache)
        return self._scorer

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        if self._cache is not None:
            self._cache.close()


# ----------------------------------------------------------------------------- systems

def system_prefix(system: str, primary: str = "bbedit") -> str:
    """Headline keys are bare for the suite's primary system (bbedit with its editor, unless the suite
    says ``options.primary``) and prefixed for the others: ``ike_`` for bbedit's in-context editing when
    it is not the primary, ``baseline_`` for the rule-based post-editor, ``baseline_<system>_`` else."""
    if system == primary:
        return ""
    return {"bbedit": "ike_", "replace": "baseline_"}.get(system, f"baseline_{system}_") \
        if primary != "bbedit" else f"baseline_{system}_"


def make_editor(cfg: SuiteConfig) -> Any:
    from bbedit.editors.base import make_editor as _make

    opts = dict(cfg.editor)
    return _make(opts.pop("name", "ike"), **opts)


def cloze_prefix(query: str) -> str:
    """For the probability protocol: a cloze prompt ("The capital of France is") is continued
    inside the reply, after the prompt itself; a question is answered from the reply's start."""
    q = query.strip()
    return "" if q.endswith("?") else q


def flat_counterfact(path: Path) -> list[dict[str, Any]] | None:
    """The records of a CounterFact file in EasyEdit's flattened form (None for any other form)."""
    from bbedit.memory import formats

    raw = [r for _, _, r in formats.records(path)]
    return raw if raw and isinstance(raw[0], dict) and "locality_prompt" in raw[0] else None


def neighbours_in_scope(edit_records: Sequence[dict[str, Any]], edit_ids: Sequence[str],
                        texts: set[str], query_records: Sequence[dict[str, Any]] = ()) -> dict[str, set[str]]:
    """CounterFact reuses subjects: a neighbourhood prompt may name a subject that has an edit *of the same
    relation* in memory, and is then in scope of that edit. Maps each such prompt among ``texts`` (from
    ``edit_records`` or ``query_records``, flattened CounterFact) to the ids of the edits in memory
    (``edit_records``, stored as ``edit_ids``) it is in scope of."""
    from bbedit.scope.train import labelled_queries

    in_memory = set(edit_ids)
    labels = labelled_queries([*edit_records, *query_records],
                              [*edit_ids, *(f"query-record-{i}" for i in range(len(query_records)))], synthetic=0.0)
    found: dict[str, set[str]] = {}
    for q in labels:
        mine = in_memory & q.edit_ids if q.kind == "locality" and q.text in texts else set()
        if mine:
            found.setdefault(q.text, set()).update(mine)
    return found


def build_memory(edits: Sequence[Edit], progress: bool = True) -> Any:
    from bbedit.memory.memory import EditMemory

    memory = EditMemory(None)
    memory.add_many(list(edits), supersede=False, progress=progress)
    return memory
