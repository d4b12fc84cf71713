"""Processes that decide a long queue beside the run's own process.

Deciding 100,000 queued contacts (loading each chunk with its activities,
running the rules, recording decisions and outbox intents) is Python work of
one core; the run's process would do it alone while the machine's other
cores wait. A run with a long queue (``share_from`` contacts or more, and
``decide_processes`` above 1) splits it into chunks by CRM id
(:meth:`~connector.store.Queue.chunk_bounds`) and starts helper processes
that claim chunks from one shared counter, as the run's process does: each
chunk is decided once, by whoever claims it first.

A helper decides and records, in its own transactions fenced by the run's
lease, exactly what the run's process would (decisions, outbox intents,
writes found to have landed), then hands the planned writes to the run's
process, which makes **every CRM call**: the vendor's pacing and retries stay
one choke point per connection. A crash anywhere leaves what it always
leaves: decided contacts queued with their outbox intent until their write is
settled, so the next run writes or recognises them.

A helper stops at the next chunk when the run stops, when the run's process
is gone (its parent id changes) or when the run's lease is lost (its next
commit fails). A helper that fails or dies leaves its claimed chunk queued;
the run's process decides the chunks left, writes what was planned and then
fails the run with the helper's error, so the next run finishes the rest.

This module is the run's side: starting, claiming, collecting, stopping. The
helper's own loop is :func:`connector.sync.run.decide_beside` (it decides
with the run's code).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from multiprocessing.sharedctypes import Synchronized
from types import TracebackType
from typing import TYPE_CHECKING, Any

from connector.errors import TransientError

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event as EventType

    from connector.config import Config
    from connector.sync.decide import StageWrite

log = logging.getLogger(__name__)

_START = multiprocessing.get_context("spawn")
"""A fresh interpreter per helper: forking a process that runs threads (read-ahead, lease heartbeat, the
scheduler) could copy a lock held by one of them."""
_JOIN_SECONDS = 30.0
"""How long a stopping helper may take to finish its chunk before it is terminated."""


@dataclass(frozen=True)
class HelperTask:
    """Everything a helper process needs, sent to it once (pickled): no client, no secret."""

    config: Config
    store_url: str = field(repr=False)
    """With the server's password, if it has one: never shown."""
    settings: Any
    """The run's :class:`~connector.sync.run.RunSettings`."""
    connection: str
    owner: str
    """The run's lease owner: a helper's commits are fenced by the run's lease."""
    ttl: timedelta
    clock: Callable[[], Any]
    parent: int
    """The run's process id: a helper whose parent changed stops."""


@dataclass(frozen=True, slots=True)
class Planned:
    """A helper's report of one chunk it decided and recorded: the writes for the run's process to make."""

    writes: list[StageWrite]
    decided: int
    changed: int
    recovered: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Finished:
    """A helper ran out of chunks (or was told to stop) and ends."""


@dataclass(frozen=True, slots=True)
class Failed:
    """A helper's error; the run fails with it once the chunks left are decided."""

    error: BaseException


def portable(error: BaseException) -> BaseException:
    """``error`` itself when it survives pickling (most of crmsync's errors do), else a ``TransientError``
    naming it: a helper's error must reach the run's process whatever its class."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return TransientError(f"the deciding helper failed: {type(error).__name__}: {error}")
    return error


def without_activities(write: StageWrite) -> StageWrite:
    """A planned write as the run's process needs it to write and settle (the contact's activities are not:
    they only served the decision, and would be most of what crosses between the processes)."""
    return replace(write, contact=replace(write.contact, activities=()))


def claim(claims: Synchronized[int], chunks: int) -> int | None:
    """The next chunk no process has claimed, or ``None`` when all are."""
    with claims.get_lock():
        chunk = claims.value
        if chunk >= chunks:
            return None
        claims.value = chunk + 1
        return chunk


AHEAD = 2_000
"""Planned writes not yet made (in transit, waiting in the run's process) above which helpers wait before they
claim another chunk: the run's process writes at its pace and its memory stays bounded."""


def room_to_plan(ahead: Synchronized[int], stop: EventType, parent: int, *, limit: int = AHEAD) -> bool:
    """Wait until fewer than ``limit`` planned writes wait for the run's process; ``False`` when the run
    stops or its process is gone meanwhile."""
    while not stop.is_set() and os.getppid() == parent:
        if ahead.value < limit:
            return True
        time.sleep(0.01)
    return False


def planned(ahead: Synchronized[int], count: int) -> None:
    """``count`` more writes planned (negative: made)."""
    with ahead.get_lock():
        ahead.value += count


def chunk_range(bounds: list[str], chunk: int) -> tuple[str, str | None]:
    """Chunk ``chunk``'s CRM ids: after the first value, up to the second (``None``: to the end)."""
    return (bounds[chunk - 1] if chunk else "", bounds[chunk] if chunk < len(bounds) else None)


HelperMain = Callable[[int, "HelperTask", list[str], "Synchronized[int]", "Synchronized[int]", Any, "EventType"], None]
"""A helper's life: its number, the task, the chunk bounds, the claims counter, the planned writes not made
yet, the report queue, the stop."""


@dataclass
class Helpers:
    """The run's handle on its helper processes for one connection's queue (a context manager: leaving it
    stops and joins them)."""

    main: HelperMain
    task: HelperTask
    count: int
    bounds: list[str]
    failure: BaseException | None = None
    _claims: Synchronized[int] = field(init=False)
    _ahead: Synchronized[int] = field(init=False)
    _out: Any = field(init=False)
    _stop: EventType = field(init=False)
    _processes: list[Any] = field(init=False, default_factory=list)
    _ended: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._claims = _START.Value("i", 0)
        self._ahead = _START.Value("i", 0)
        self._out = _START.Queue()
        self._stop = _START.Event()

    @property
    def chunks(self) -> int:
        return len(self.bounds) + 1

    def __enter__(self) -> Helpers:
        for number in range(self.count):
            process = _START.Process(
                target=self.main,
                args=(number, self.task, self.bounds, self._claims, self._ahead, self._out, self._stop),
                name=f"crmsync-decide-{number + 1}",
                daemon=True,
            )
            process.start()
            self._processes.append(process)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        deadline = time.monotonic() + _JOIN_SECONDS
        while any(process.is_alive() for process in self._processes) and time.monotonic() < deadline:
            # a helper ends only once what it sent is read: chunks reported after a stop are left as they are
            # (recorded, their contacts queued with their outbox intents: the next run writes them)
            self._drain(0.05)
        for process in self._processes:
            if process.is_alive():
                log.warning("a deciding helper did not stop; ended", extra={"helper": process.name})
                process.terminate()
            process.join()
        self._out.close()
        self._out.join_thread()

    def claim(self) -> int | None:
        return claim(self._claims, self.chunks)

    def stop(self) -> None:
        self._stop.set()

    def planned(self, count: int) -> None:
        """The run's process planned ``count`` writes itself (they count toward :data:`AHEAD` too)."""
        planned(self._ahead, count)

    def written(self, count: int) -> None:
        """The run's process made ``count`` planned writes."""
        planned(self._ahead, -count)

    @property
    def busy(self) -> bool:
        """Some helper has not ended yet."""
        return len(self._ended) < len(self._processes)

    def collect(self, wait: float = 0.0) -> list[Planned]:
        """The chunks the helpers reported since the last call (waiting up to ``wait`` seconds for the first).
        Notes a helper's failure in :attr:`failure`, and a helper that died without a word as one."""
        reports = self._drain(wait)
        for number, process in enumerate(self._processes):
            if number in self._ended or process.is_alive():
                continue
            reports += self._drain(0.2)  # its last words may still be on their way
            if number in self._ended:
                continue
            self._ended.add(number)
            if self.failure is None:
                self.failure = TransientError(
                    f"a deciding helper ended without finishing (exit code {process.exitcode}); "
                    "its chunk stays queued for the next run"
                )
        return reports

    def _drain(self, wait: float) -> list[Planned]:
        reports: list[Planned] = []
        timeout = wait
        while True:
            try:
                sender, message = self._out.get(timeout=timeout) if timeout > 0 else self._out.get_nowait()
            except queue.Empty:
                return reports
            timeout = 0.0
            if isinstance(message, Planned):
                reports.append(message)
                continue
            self._ended.add(sender)
            if isinstance(message, Failed) and self.failure is None:
                self.failure = message.error
