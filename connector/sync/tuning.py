"""The interpreter tuned while a run works: the cycle collector and the thread switch interval.

The cycle collector
-------------------

A run makes millions of short-lived objects (a parsed record, its model, its
row), nearly all freed at once by reference counting. The cycle collector
still counts them: at its default thresholds it ran about 5,000 times in a
20,000-contact Salesforce run, 41 of them full passes over every object the
process holds (the imported libraries alone are ~120,000), and took 16 % of
the run's CPU (5.5 s of 34 s).

While a run works, :func:`tuned` moves the objects that were alive
before it began (imports, configuration, the long-lived caches) out of the
collector's sight (``gc.freeze``), and lets more new objects pile up before
a young collection (:data:`YOUNG_THRESHOLD`): 1.3 s of collecting, and the
run 17 % faster. Garbage cycles are still found and freed; only objects that
existed before the run are not looked at again until it ends. At the end
everything goes back as it was (``gc.unfreeze``, the former thresholds), so
a long-lived worker collects as usual between runs.

The switch interval
-------------------
A run's process has threads that mostly compute (the client's reading
threads parse pages; the run's thread builds rows) and make short calls that
let go of the interpreter lock (a socket read, an SQLite statement). A thread
coming back from such a call waits until the one computing is asked to yield,
which Python does every switch interval: 5 ms by default, paid again on every
call. :data:`SWITCH_INTERVAL` makes the wait shorter; at 100,000 HubSpot
contacts the run took 4-10 % less time (``docs/benchmarks.md``).

Runs that overlap in one process share one tuning, undone when the last of
them ends.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000
"""New container objects (net of those freed) before a young collection; Python's default is 700."""
OLDER_THRESHOLD = 10
"""Young (then middle) collections before the next generation is collected; as Python's default."""

SWITCH_INTERVAL = 0.001
"""Seconds a thread computes before Python asks it to let another one run; Python's default is 0.005."""

_lock = threading.Lock()
_active = 0
_saved: tuple[int, ...] = ()
_saved_interval = 0.0


@contextmanager
def tuned() -> Iterator[None]:
    """Tune the cycle collector and the switch interval for the body (see the module's docs); restored
    afterwards."""
    global _active, _saved, _saved_interval
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            _saved_interval = sys.getswitchinterval()
            gc.freeze()
            gc.set_threshold(YOUNG_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD)
            sys.setswitchinterval(min(SWITCH_INTERVAL, _saved_interval))
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
                sys.setswitchinterval(_saved_interval)
