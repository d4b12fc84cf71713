"""The interpreter's tuning during a run: in place while runs work, undone when the last one ends."""

from __future__ import annotations

import gc
import sys
import threading
import weakref

import pytest

from connector.sync.tuning import SWITCH_INTERVAL, YOUNG_THRESHOLD, tuned


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_run_freezes_what_existed_and_restores_the_collector_after() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with tuned():
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > frozen_before
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_run_shortens_the_switch_interval_and_restores_it_after() -> None:
    before = sys.getswitchinterval()
    with tuned():
        assert sys.getswitchinterval() == pytest.approx(min(SWITCH_INTERVAL, before))
    assert sys.getswitchinterval() == before


def test_a_process_set_to_switch_more_often_keeps_its_setting() -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL / 2)
    try:
        with tuned():
            assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL / 2)
    finally:
        sys.setswitchinterval(before)


def test_cycles_made_during_a_run_are_still_collected() -> None:
    with tuned():
        freed = threading.Event()
        cycle = Cycle()
        weakref.finalize(cycle, freed.set)
        del cycle
        gc.collect()
        assert freed.is_set()


def test_overlapping_runs_share_one_tuning_undone_by_the_last() -> None:
    before = gc.get_threshold()
    interval = sys.getswitchinterval()
    outer = tuned()
    inner = tuned()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD  # the other run still works
    inner.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == interval


def test_a_failing_run_restores_the_collector() -> None:
    before = gc.get_threshold()
    interval = sys.getswitchinterval()
    with pytest.raises(RuntimeError), tuned():
        raise RuntimeError("run failed")
    assert sys.getswitchinterval() == interval
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
