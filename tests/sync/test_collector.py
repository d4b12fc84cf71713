"""The cycle collector's tuning during a run: in place while runs work, undone when the last one ends."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from connector.sync.collector import YOUNG_THRESHOLD, tuned_collector


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_run_freezes_what_existed_and_restores_the_collector_after() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with tuned_collector():
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > frozen_before
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_during_a_run_are_still_collected() -> None:
    with tuned_collector():
        freed = threading.Event()
        cycle = Cycle()
        weakref.finalize(cycle, freed.set)
        del cycle
        gc.collect()
        assert freed.is_set()


def test_overlapping_runs_share_one_tuning_undone_by_the_last() -> None:
    before = gc.get_threshold()
    outer = tuned_collector()
    inner = tuned_collector()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD  # the other run still works
    inner.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_failing_run_restores_the_collector() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), tuned_collector():
        raise RuntimeError("run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
