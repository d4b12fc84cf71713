"""Python's cycle collector, tuned while a run works.

A run makes millions of short-lived objects (a parsed record, its model, its
row), nearly all freed at once by reference counting. The cycle collector
still counts them: at its default thresholds it ran about 5,000 times in a
20,000-contact Salesforce run, 41 of them full passes over every object the
process holds (the imported libraries alone are ~120,000), and took 16 % of
the run's CPU (5.5 s of 34 s).

While a run works, :func:`tuned_collector` moves the objects that were alive
before it began (imports, configuration, the long-lived caches) out of the
collector's sight (``gc.freeze``), and lets more new objects pile up before
a young collection (:data:`YOUNG_THRESHOLD`): 1.3 s of collecting, and the
run 17 % faster. Garbage cycles are still found and freed; only objects that
existed before the run are not looked at again until it ends. At the end
everything goes back as it was (``gc.unfreeze``, the former thresholds), so
a long-lived worker collects as usual between runs. Runs that overlap in one
process share one tuning, undone when the last of them ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000
"""New container objects (net of those freed) before a young collection; Python's default is 700."""
OLDER_THRESHOLD = 10
"""Young (then middle) collections before the next generation is collected; as Python's default."""

_lock = threading.Lock()
_active = 0
_saved: tuple[int, ...] = ()


@contextmanager
def tuned_collector() -> Iterator[None]:
    """Tune the cycle collector for the body (see the module's docs); restored afterwards."""
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(YOUNG_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
