"""Progress of a run: events from the pipeline, and a rich display for terminals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

Phase = Literal["contacts", "activities", "decide", "write"]
Step = Literal["stored", "decided", "written", "done"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Something the pipeline just committed.

    ``phase`` is the stage of the pipeline, ``step`` what was committed
    (a page stored, a chunk decided, a batch written, the phase done),
    ``done`` how many records so far in this phase, ``total`` how many are
    expected when known (the dirty queue; pulls do not know their size).
    """

    connection: str
    phase: Phase
    step: Step
    done: int
    total: int | None = None


ProgressCallback = Callable[[ProgressEvent], None]

_LABELS: dict[Phase, str] = {
    "contacts": "pull contacts",
    "activities": "pull activities",
    "decide": "decide",
    "write": "write",
}


class RichProgress:
    """One bar per connection and phase, for ``crmsync run`` on a terminal."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[tuple[str, Phase], TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        key = (event.connection, event.phase)
        task = self._tasks.get(key)
        if task is None:
            task = self._progress.add_task(f"{event.connection}: {_LABELS[event.phase]}", total=event.total)
            self._tasks[key] = task
        total = event.total if event.total is not None else (event.done if event.step == "done" else None)
        self._progress.update(task, completed=event.done, total=total)
