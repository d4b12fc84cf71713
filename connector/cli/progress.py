"""The progress display of ``crmsync run`` on a terminal: one bar per connection and phase."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from connector.cli.terminal import visible
from connector.progress import Phase, ProgressEvent

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
            TextColumn("{task.description}", markup=False),
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
            task = self._progress.add_task(f"{visible(event.connection)}: {_LABELS[event.phase]}", total=event.total)
            self._tasks[key] = task
        total = event.total if event.total is not None else (event.done if event.step == "done" else None)
        self._progress.update(task, completed=event.done, total=total)
