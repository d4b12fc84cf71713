"""Log lines go through rich's console: above a live progress display, never tearing it; JSON when asked."""

from __future__ import annotations

import io
import json
import logging

import pytest
from rich.console import Console

from connector.cli import logs
from connector.cli.logs import LogFormat, configure_logging, level_of
from connector.cli.progress import RichProgress
from connector.progress import ProgressEvent


def test_a_log_line_while_the_progress_display_is_live_is_printed_once_above_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, highlight=False)
    monkeypatch.setattr(logs, "err", console)
    configure_logging(logging.INFO, LogFormat.TEXT)
    log = logging.getLogger("connector.sync.run")

    with RichProgress(console) as display:
        display(ProgressEvent(connection="hubspot", phase="contacts", done=5, total=10, step="stored"))
        log.warning("write batch deferred", extra={"connection": "hubspot"})
        display(ProgressEvent(connection="hubspot", phase="contacts", done=10, total=10, step="done"))

    text = screen.getvalue()
    assert text.count("write batch deferred") == 1
    assert 'connection="hubspot"' in text
    assert "10/10" in text, "the display's final state is kept"


def test_json_log_lines_carry_the_event_fields_and_escape_controls(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(logs, "err", Console(file=screen, width=400))
    configure_logging(logging.INFO, LogFormat.JSON)

    logging.getLogger("connector.sync.run").error("run %s failed", "job\x1b[2J", extra={"run_id": "r1"})

    [event] = [json.loads(line) for line in screen.getvalue().splitlines()]
    assert event["level"] == "ERROR" and event["run_id"] == "r1" and event["logger"] == "connector.sync.run"
    assert "\x1b" not in screen.getvalue()


@pytest.mark.parametrize(
    ("verbose", "level", "expected"),
    [(0, None, logging.INFO), (1, None, logging.DEBUG), (3, None, logging.DEBUG), (2, "ERROR", logging.ERROR)],
)
def test_level_from_v_and_log_level(verbose: int, level: str | None, expected: int) -> None:
    assert level_of(verbose, level) == expected
