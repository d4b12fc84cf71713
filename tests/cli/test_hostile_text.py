"""CRM text never styles, links or controls the terminal: every command prints it as plain, visible text."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from connector.cli import app
from connector.cli.services import Services
from connector.cli.terminal import line, safe, visible
from tests.fakes import FakeCrm
from tests.sync.conftest import NOW, REPO, new_crm, populate

ESC = "\x1b"
CLIPBOARD = f"{ESC}]52;c;ZXZpbA=={ESC}\\"  # OSC 52: write "evil" to the clipboard
CLEAR = f"{ESC}[2J{ESC}[H"
LINK = f"{ESC}]8;;https://evil.example{ESC}\\click{ESC}]8;;{ESC}\\"  # OSC 8 hyperlink
HOSTILE_EMAIL = "x[/i]@evil.example"
HOSTILE_SUBJECT = f"[/bold][link=https://evil.example]free[/link] :warning: {CLIPBOARD}{CLEAR}\u202egnp.exe"
HOSTILE_REASON = f"[/red]value {LINK} not allowed\x07\x08\r"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain é 漢字 🙂", "plain é 漢字 🙂"),
        (CLIPBOARD, "\\x1b]52;c;ZXZpbA==\\x1b\\"),
        ("a\x00b\x7fc\x9bd", "a\\x00b\\x7fc\\x9bd"),
        ("line\nbreak\ttab\rreturn", "line\\nbreak\\ttab\\rreturn"),
        ("\u202eevil\u2066\u2028", "\\u202eevil\\u2066\\u2028"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ],
    ids=["printable", "osc52", "c0-c1", "whitespace-controls", "bidi-separators", "surrogate"],
)
def test_visible_escapes_every_control_and_keeps_printable_text(text: str, shown: str) -> None:
    assert visible(text) == shown


def render(*renderables: object) -> str:
    """What a colour terminal receives."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="truecolor", width=300)
    for renderable in renderables:
        console.print(renderable)
    return buffer.getvalue()


def test_safe_text_reaches_a_terminal_without_markup_links_or_escapes() -> None:
    table = Table("e-mail", "subject")
    table.add_row(safe(HOSTILE_EMAIL), safe(HOSTILE_SUBJECT))

    shown = render(line(("fact:", "bold"), " ", safe(HOSTILE_SUBJECT)), table, safe(HOSTILE_REASON))

    assert "]52;" not in shown.replace("\\x1b]52;", ""), "no OSC 52 clipboard write"
    assert "\x1b]8;" not in shown, "no hyperlink"
    assert "\x1b[2J" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "[link=https://evil.example]free[/link]" in shown and HOSTILE_EMAIL in shown
    assert ":warning:" in shown, "no emoji substitution"


@pytest.fixture
def project(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, FakeCrm, Services]]:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "hubspot-lifecycle.toml").write_text((REPO / "jobs" / "hubspot-lifecycle.toml").read_text())
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n[paths]\nmappings = "{REPO / "mappings"}"\njobs = "jobs"\n'
        f'rules = "{REPO / "mappings" / "lifecycle.toml"}"\n'
        '[connections.hubspot]\ntype = "hubspot"\ntoken_env = "CRMSYNC_TEST_HUBSPOT_TOKEN"\n'
    )
    crm = new_crm()
    populate(crm, 24)
    crm.edit_contact("c0004", email=HOSTILE_EMAIL, first_name=HOSTILE_SUBJECT, job_title=HOSTILE_SUBJECT)
    crm.add_activity("hostile-1", "demo_request", NOW - timedelta(days=2), ["c0004"], HOSTILE_SUBJECT)
    crm.reject["c0010"] = ("INVALID[/b]" + ESC + "[5m", HOSTILE_REASON)
    monkeypatch.setenv("COLUMNS", "400")
    yield config, crm, Services(clients=lambda _config, _name: crm.client(), clock=lambda: NOW)


def cli(project: tuple[Path, FakeCrm, Services], *args: str) -> tuple[int, str]:
    config, _crm, services = project
    result = CliRunner().invoke(app, ["--config", str(config), *args], obj=services)
    assert ESC not in result.output, f"a raw escape reached the terminal: {result.output!r}"
    assert "\x07" not in result.output and "\u202e" not in result.output
    return result.exit_code, result.output


def test_hostile_crm_text_through_every_command(project: tuple[Path, FakeCrm, Services]) -> None:
    code, output = cli(project, "run", "hubspot-lifecycle", "--dry-run")
    assert code == 0, output
    assert HOSTILE_EMAIL in output, "the plan is printed, with the e-mail as it is"

    code, output = cli(project, "run", "hubspot-lifecycle")
    assert code == 0, output

    code, output = cli(project, "explain", HOSTILE_EMAIL)
    assert code == 0, output
    assert "[link=https://evil.example]free[/link]" in output and "\\x1b]52;c;ZXZpbA==" in output

    code, output = cli(project, "history")
    assert code == 0, output
    assert HOSTILE_EMAIL in output

    code, output = cli(project, "dead-letters")
    assert code == 0, output
    assert "INVALID[/b]\\x1b[5m" in output and "[/red]value" in output

    code, output = cli(project, "status")
    assert code == 0, output

    code, output = cli(project, "dead-letters", "--json")
    assert json.loads(output.splitlines()[0])["reason"] == HOSTILE_REASON, "JSON keeps the text exactly"


def test_log_lines_show_crm_text_with_controls_visible() -> None:
    import logging

    from connector.cli.logs import EventFormatter

    record = logging.LogRecord(
        "connector.sync", logging.WARNING, "", 0, "record %s skipped", (HOSTILE_EMAIL + CLEAR,), None
    )
    record.reason = HOSTILE_REASON

    text = EventFormatter("%(levelname)s %(message)s").format(record)

    assert ESC not in text and "\x07" not in text and "\r" not in text
    assert text.startswith("WARNING record x[/i]@evil.example\\x1b[2J")
