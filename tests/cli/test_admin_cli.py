"""What admins look at: --version, global options after the command, JSON logs, status in words, runs,
a dry run's transitions, tables that keep full ids when piped, the schema check before a run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli.app import app, hoist_global_options
from connector.cli.services import Services
from connector.errors import Problem
from tests.fakes import FakeCrm
from tests.sync.conftest import NOW, REPO, new_crm, populate

JOB = "hubspot-lifecycle"


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FakeCrm]]:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / f"{JOB}.toml").write_text((REPO / "jobs" / f"{JOB}.toml").read_text())
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n[paths]\nmappings = "{REPO / "mappings"}"\njobs = "jobs"\n'
        f'rules = "{REPO / "mappings" / "lifecycle.toml"}"\n'
        '[connections.hubspot]\ntype = "hubspot"\ntoken_env = "CRMSYNC_TEST_HUBSPOT_TOKEN"\n'
    )
    monkeypatch.setenv("CRMSYNC_TEST_HUBSPOT_TOKEN", "pat-test-SECRET")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    crm = new_crm()
    populate(crm, 24)
    yield config, crm


def invoke(project: tuple[Path, FakeCrm], *args: str, at: object = NOW) -> tuple[int, str, str]:
    config, crm = project
    services = Services(clients=lambda _c, _n: crm.client(), clock=lambda: at)  # type: ignore[arg-type, return-value]
    result = CliRunner().invoke(app, [*args, "--config", str(config)], obj=services)
    return result.exit_code, result.stdout, result.stderr


def test_version_and_completion() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and re.fullmatch(r"crmsync \S+\n", result.output)
    assert "--install-completion" in CliRunner().invoke(app, ["--help"]).output


def test_help_names_values_not_python_types() -> None:
    for command in (["history"], ["run"], ["report"], ["dead-letters"], ["runs"], ["alerts", "test"], []):
        text = CliRunner().invoke(app, [*command, "--help"]).output
        assert not re.search(r"<(str|int|bool|float|path)[^>]*>|INTEGER|TEXT|BOOLEAN|FLOAT", text), (command, text)


@pytest.mark.parametrize(
    ("args", "hoisted"),
    [
        (["run", "daily", "--config", "x.toml", "--json"], ["--config", "x.toml", "run", "daily", "--json"]),
        (["--debug", "status", "--log-format=json"], ["--debug", "--log-format=json", "status"]),
        (["status", "-v"], ["status", "-v"]),  # status's own --verbose (the cursors)
        (["run", "daily", "-v"], ["-v", "run", "daily"]),
        (["classify", "--", "--config", "x"], ["classify", "--", "--config", "x"]),
    ],
    ids=["config-after", "format-after", "command-own-option", "verbose-after", "after-dashdash"],
)
def test_global_options_after_the_command_are_moved_before_it(args: list[str], hoisted: list[str]) -> None:
    own = {"status": {"--verbose", "-v", "--json"}}
    assert hoist_global_options(args, lambda name: own.get(name, set())) == hoisted


def test_a_run_logs_json_lines_and_a_failed_run_at_error(project: tuple[Path, FakeCrm]) -> None:
    from connector.errors import QuotaExhausted

    _config, crm = project
    code, _out, err = invoke(project, "run", JOB, "--log-format", "json", "--log-level", "INFO")
    assert code == 0
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    finished = [e for e in events if e.get("event") == "run_finished"]
    assert finished and finished[0]["level"] == "INFO" and finished[0]["status"] == "completed"

    crm.raise_on_write = QuotaExhausted("daily limit")
    crm.add_activity("late-1", "demo_request", NOW - timedelta(days=1), ["c0003"], "Demo")
    code, _out, err = invoke(project, "run", JOB, "--log-format", "json")
    assert code == 4
    failed = [json.loads(line) for line in err.splitlines() if line.startswith("{") and "run_finished" in line]
    assert failed[0]["level"] == "ERROR" and failed[0]["status"] == "failed"
    assert "pat-test-SECRET" not in err


def test_status_in_plain_words_and_cursors_only_with_verbose(project: tuple[Path, FakeCrm]) -> None:
    assert invoke(project, "run", JOB)[0] == 0
    later = NOW + timedelta(minutes=3)

    code, out, _err = invoke(project, "status", at=later)

    assert code == 0
    assert re.search(r"last success 3 min ago, \d+ written; next \d\d:\d\d UTC; 0 open dead letters", out), out
    assert "cursor" not in out
    assert "cursor hubspot/contacts" in invoke(project, "status", "--verbose", at=later)[1]


def test_runs_lists_each_run_with_counts_and_duration(project: tuple[Path, FakeCrm]) -> None:
    invoke(project, "run", JOB)
    invoke(project, "run", JOB, "--dry-run")

    code, out, _err = invoke(project, "runs", "--json")
    rows = [json.loads(line) for line in out.splitlines()]

    assert code == 0 and len(rows) == 2
    assert {row["job"] for row in rows} == {JOB}
    assert any(row["written"] > 0 for row in rows) and all(row["duration_seconds"] is not None for row in rows)
    piped = invoke(project, "runs", JOB)[1].splitlines()
    assert piped[0].split("\t")[:4] == ["started", "job", "run", "status"]
    assert {line.split("\t")[2] for line in piped[1:]} == {row["run_id"] for row in rows}, "full run ids"


def test_a_dry_run_says_which_transitions_it_would_make(project: tuple[Path, FakeCrm]) -> None:
    code, out, _err = invoke(project, "run", JOB, "--dry-run")

    assert code == 0
    assert "transitions it would make:" in out
    assert re.search(r"\(empty\) -> lead: 4\b", out), out

    data = json.loads(invoke(project, "run", JOB, "--dry-run", "--json")[1])
    assert {"from": "(empty)", "to": "lead", "count": 4} in data["transitions"]


def test_piped_history_keeps_whole_ids_one_row_per_line(project: tuple[Path, FakeCrm]) -> None:
    _config, crm = project
    long_id = "c" + "9" * 80
    from tests.sync.conftest import ICP

    crm.add_contact(long_id, "long@example.fr", company=ICP)
    crm.add_activity("long-1", "content_download", NOW - timedelta(days=2), [long_id], "Guide")
    invoke(project, "run", JOB)

    out = invoke(project, "history", "--stage", "lead")[1]

    assert out.splitlines()[0] == "when\tjob\tcontact\te-mail\tfrom\tto\twhy"
    assert any(line.split("\t")[2] == f"hubspot:{long_id}" for line in out.splitlines()[1:])


def test_run_refuses_to_start_on_a_field_the_crm_does_not_have(project: tuple[Path, FakeCrm]) -> None:
    _config, crm = project
    problem = Problem("mappings/hubspot.toml", "people.contacts.fields.job_title", "no property 'jobtitel' in HubSpot")
    crm.check_schema = lambda: [problem]  # type: ignore[method-assign]

    code, out, err = invoke(project, "run", JOB)

    assert code == 2
    assert "jobtitel" in out + err and "crmsync setup" in out + err
    assert crm.calls["contacts.write"] == 0 and not crm.writes
    assert invoke(project, "run", JOB, "--no-schema-check")[0] == 0


def test_a_passed_schema_check_is_not_asked_again_within_the_hour(project: tuple[Path, FakeCrm]) -> None:
    _config, crm = project
    asked: list[int] = []
    crm.check_schema = lambda: asked.append(1) or []  # type: ignore[method-assign, func-returns-value]

    invoke(project, "run", JOB)
    invoke(project, "run", JOB)

    assert asked == [1]


def test_the_demo_explains_its_numbers() -> None:
    from connector.cli.sandbox import explain_numbers
    from connector.runs import RunStatus
    from connector.sync.result import ConnectionCounts, RunResult

    first = RunResult("r1", JOB, RunStatus.COMPLETED, NOW)
    first.counts["hubspot"] = ConnectionCounts(contacts_read=1685, decided=1685, changed=1200, unchanged=485, skipped=222)
    rerun = RunResult("r2", JOB, RunStatus.COMPLETED, NOW)
    rerun.counts["hubspot"] = ConnectionCounts(contacts_read=1200)

    words = " ".join(explain_numbers(first, rerun=False))
    again = " ".join(explain_numbers(rerun, rerun=True))

    assert "a first run reads every contact" in words and "skipped 222" in words and "could not be read" in words
    assert "read 1200 contacts" in again and "echoes of our own writes" in again and "(decided 0)" in again


@pytest.mark.parametrize("width", [80, 250])
def test_a_terminal_table_never_cuts_an_id(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    import io

    from rich.console import Console

    from connector.cli import inspect

    screen = io.StringIO()
    monkeypatch.setattr(inspect, "out", Console(file=screen, force_terminal=True, width=width, color_system=None))
    long_id = "hubspot:" + "7" * 60
    rows = [["2026-11-20 09:00:00", "hubspot-lifecycle", long_id, "person@example.fr", "lead", "mql", "3 downloads"]]

    inspect.print_rows("stage changes (1)", ["when", "job", "contact", "e-mail", "from", "to", "why"], rows)

    text = screen.getvalue()
    assert long_id in text, text
    assert "…" not in text
    assert ("contact: " in text) == (width == 80), "blocks on a narrow terminal, a table on a wide one"
