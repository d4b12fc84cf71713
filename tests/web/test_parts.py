"""The dashboard's pure parts, by tables: job health, visible text, the chart's geometry, causes, words for times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.causes import GENERIC_HINT, HINTS, group_by_cause, hint_for
from connector.jobs import Job
from connector.model import LADDER
from connector.report import Funnel, RungFigures
from connector.store.queries import DeadLetterView, RunView
from connector.web.chart import funnel_chart
from connector.web.health import Level, job_health
from connector.web.rendering import ago, code_spans, days, environment, visible

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
JOB = Job(name="hubspot-lifecycle", connections=["hubspot"], schedule="*/15 * * * *")


def run(status: str, minutes_ago: float, **counts: Any) -> RunView:
    started = NOW - timedelta(minutes=minutes_ago)
    return RunView(
        id=f"run-{status}-{minutes_ago}",
        job=JOB.name,
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=30),
        dry_run=False,
        full=False,
        counts=counts,
        usage={},
        error="QuotaExhausted: quota used up\nsecond line" if status == "failed" else None,
    )


@pytest.mark.parametrize(
    ("last", "success", "dead", "level", "summary"),
    [
        (None, None, 0, Level.NEVER, "no run recorded yet"),
        (run("running", 1), run("completed", 16), 0, Level.RUNNING, "a run is in progress"),
        (run("failed", 5), run("completed", 20), 0, Level.FAILING, "last run failed: QuotaExhausted: quota used up"),
        (run("abandoned", 5), None, 0, Level.FAILING, "last run abandoned: no error recorded"),
        (run("completed", 31), run("completed", 31), 0, Level.LATE, "no run completed for two ticks of the schedule"),
        (run("completed", 29), run("completed", 29), 0, Level.OK, "last run completed"),
        (run("completed", 5, failed=3), run("completed", 5), 0, Level.ATTENTION, "last run: 3 record(s) rejected"),
        (run("completed", 5), run("completed", 5), 2, Level.ATTENTION, "2 open dead letter(s)"),
        (run("stopped", 5), run("completed", 20), 0, Level.OK, "last run was stopped and resumes on the next one"),
    ],
    ids=["never", "running", "failed", "abandoned", "late", "just-in-time", "rejected", "dead-letters", "stopped"],
)
def test_job_health(last: RunView | None, success: RunView | None, dead: int, level: Level, summary: str) -> None:
    health = job_health(JOB.name, JOB, last_run=last, last_success=success, dead_letters=dead, queued=0, now=NOW)
    assert (health.level, health.summary) == (level, summary)
    assert health.next_run == datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


def test_job_health_without_a_job_file_has_no_next_run_and_is_never_late() -> None:
    old = run("completed", 600)
    health = job_health(JOB.name, None, last_run=old, last_success=old, dead_letters=0, queued=0, now=NOW)
    assert (health.level, health.next_run) == (Level.OK, None)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, accents é, emoji 🚀", "plain text, accents é, emoji 🚀"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("nul\x00byte", "nul\\x00byte"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("carriage\rreturn", "carriage\\rreturn"),
        ("c1\x9bcontrol", "c1\\x9bcontrol"),
        ("\u202eevil\u2066", "\\u202eevil\\u2066"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("<b>[/bold]</b>", "<b>[/bold]</b>"),
    ],
    ids=["plain", "ansi", "nul", "tab-newline", "cr", "c1", "bidi", "zero-width", "markup-left-to-escaping"],
)
def test_visible(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_templates_escape_and_make_control_characters_visible() -> None:
    template = environment().from_string("{{ value }}|{{ missing_is_dash }}")
    assert template.render(value="<script>\x1b", missing_is_dash=None) == "&lt;script&gt;\\x1b|–"


def test_code_spans_escape_then_mark_backquoted_parts() -> None:
    assert str(code_spans("run `crmsync <x>` then <b>")) == "run <code>crmsync &lt;x&gt;</code> then &lt;b&gt;"


@pytest.mark.parametrize(
    ("moment", "words"),
    [
        (NOW - timedelta(seconds=5), "5 s ago"),
        (NOW - timedelta(minutes=3, seconds=20), "3 min ago"),
        (NOW - timedelta(hours=2), "2 h ago"),
        (NOW - timedelta(hours=1, minutes=30), "1.5 h ago"),
        (NOW - timedelta(days=3, hours=1), "3 d ago"),
        (NOW + timedelta(minutes=15), "in 15 min"),
        (None, "never"),
    ],
    ids=["seconds", "minutes", "hours", "half-hours", "days", "future", "never"],
)
def test_ago(moment: datetime | None, words: str) -> None:
    assert ago(moment, NOW) == words


@pytest.mark.parametrize(("value", "words"), [(None, "–"), (0.04, "1.0 h"), (1.0, "1.0 d"), (12.34, "12.3 d")], ids=str)
def test_days(value: float | None, words: str) -> None:
    assert days(value) == words


def funnel(on: list[int]) -> Funnel:
    reached = [sum(on[i:]) for i in range(len(on))]
    rungs = [
        RungFigures(stage=stage, on=on[i], reached=reached[i])
        for i, stage in enumerate(LADDER)
    ]
    return Funnel(rungs=rungs, total=sum(on), off_ladder=0, job=None)


def test_chart_bars_are_proportional_to_reached_and_on() -> None:
    chart = funnel_chart(funnel([10, 10, 0, 10, 5, 5]), width=720, bar_height=32, gap=12)
    room = 720 - chart.label_width - 190
    first, last = chart.bars[0], chart.bars[-1]
    assert (first.reached, first.reached_width, first.on_width) == (40, room, room / 4)
    assert (last.reached, last.reached_width, last.on_width) == (5, room / 8, room / 8)
    assert [bar.y for bar in chart.bars] == [0, 44, 88, 132, 176, 220]
    assert chart.height == 6 * 44 - 12
    assert [bar.stage for bar in chart.bars] == [stage.value for stage in LADDER]


def test_chart_of_an_empty_store_draws_empty_bars() -> None:
    chart = funnel_chart(funnel([0] * len(LADDER)))
    assert all(bar.reached_width == 0 and bar.on_width == 0 for bar in chart.bars)


def letter(crm_id: str, code: str | None) -> DeadLetterView:
    return DeadLetterView(
        id=hash(crm_id),
        job="j",
        connection="hubspot",
        crm_id=crm_id,
        email=None,
        stage="mql",
        code=code,
        reason="r",
        first_seen=NOW,
        last_seen=NOW,
        attempts=1,
        resolved_at=None,
        resolution=None,
    )


def test_dead_letters_group_by_code_largest_first() -> None:
    causes = group_by_cause(
        [letter("1", "VALIDATION_ERROR"), letter("2", None), letter("3", "retries_exhausted"), letter("4", None)]
    )
    assert [(c.code, [x.crm_id for x in c.letters]) for c in causes] == [
        (None, ["2", "4"]),
        ("VALIDATION_ERROR", ["1"]),
        ("retries_exhausted", ["3"]),
    ]
    assert causes[1].hint == HINTS["VALIDATION_ERROR"]


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", HINTS["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]),
        ("validation_error", HINTS["VALIDATION_ERROR"]),
        ("SOMETHING_NEW", GENERIC_HINT),
        (None, GENERIC_HINT),
    ],
    ids=["known", "case-insensitive", "unknown", "no-code"],
)
def test_hint_for(code: str | None, hint: str) -> None:
    assert hint_for(code) == hint
