"""Progress of a run: the events the pipeline reports (the command line draws them, see ``connector/cli/progress.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

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
