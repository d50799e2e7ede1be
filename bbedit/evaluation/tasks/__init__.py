"""The evaluation tasks, one module each, registered once here.

A suite's ``task:`` names one of :data:`TASKS`; each entry is a lazy ``"module:attribute"`` string, so
listing or validating suites imports no task (nor torch). A task module exposes ``TASK``, an object
with the :class:`Task` methods: ``run`` (the suite's results, with a ``headline``), ``report`` (the
report's markdown, writing its plots into the results folder) and ``augment`` (figures a run adds
itself that a ``--report-only`` re-render of an older results.json may lack).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bbedit.errors import ConfigError

if TYPE_CHECKING:
    from bbedit.evaluation.harness import RunContext, SuiteConfig

TASKS: dict[str, str] = {
    "editing": "bbedit.evaluation.tasks.editing:TASK",
    "sequential": "bbedit.evaluation.tasks.sequential:TASK",
    "general": "bbedit.evaluation.tasks.general:TASK",
    "multihop": "bbedit.evaluation.tasks.multihop:TASK",
    "whitebox": "bbedit.evaluation.tasks.whitebox_compare:TASK",
    "whitebox_sequential": "bbedit.evaluation.tasks.whitebox_sequential:TASK",
}


@runtime_checkable
class Task(Protocol):
    """One evaluation task: what it runs and how it reports."""

    name: str

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Run the suite in ``ctx``; the results hold a ``headline`` mapping. Raises ConfigError for bad
        suite settings or data, BackendError when the model fails."""
        ...

    def report(self, cfg: SuiteConfig, results: Mapping[str, Any], folder: Path) -> str:
        """The report (markdown) of ``results``; plots are written into ``folder``."""
        ...

    def augment(self, ctx: RunContext, results: dict[str, Any]) -> None:
        """Add to a finished run's ``results`` (in place) the figures a run computes from its records."""
        ...


def _no_augment(ctx: RunContext, results: dict[str, Any]) -> None:
    """Nothing to add: the task's run computes everything its report shows."""


@dataclass(frozen=True)
class FunctionTask:
    """A :class:`Task` made of a task module's functions."""

    name: str
    run: Callable[[RunContext], dict[str, Any]]
    report: Callable[[SuiteConfig, Mapping[str, Any], Path], str]
    augment: Callable[[RunContext, dict[str, Any]], None] = _no_augment


def task_names() -> list[str]:
    """The registered task names."""
    return list(TASKS)


def register_task(name: str, target: str) -> None:
    """Register a task under ``name`` as a lazy ``"module:attribute"`` string."""
    TASKS[name] = target


def get_task(name: str) -> Task:
    """The task registered as ``name``. Raises :class:`ConfigError` for an unknown name or a target
    that is not a :class:`Task`."""
    try:
        target = TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None
    module, _, attr = target.partition(":")
    task = getattr(import_module(module), attr)
    if not isinstance(task, Task):
        raise ConfigError(f"task {name!r} ({target}) does not provide run, report and augment")
    return task


__all__ = ["TASKS", "FunctionTask", "Task", "get_task", "register_task", "task_names"]
