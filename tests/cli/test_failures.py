"""Files and stores that are not what they should be: one line, a documented exit code, a JSON error under --json."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from typer.testing import CliRunner

from connector.cli import app
from connector.cli.exits import ExitCode, report_failure
from connector.cli.services import Services
from connector.store import Store, open_store
from tests.fakes import FakeCrm
from tests.sync.conftest import NOW, REPO, new_crm, populate

LATIN_1 = "# Société Générale\n".encode("latin-1")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A config with two jobs and a SQLite store in its folder; returns the config path."""
    (tmp_path / "jobs").mkdir()
    for name in ("hubspot-lifecycle", "salesforce-lifecycle"):
        shutil.copy(REPO / "jobs" / f"{name}.toml", tmp_path / "jobs")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///state/crmsync.db"\n[paths]\nmappings = "{REPO / "mappings"}"\njobs = "jobs"\n'
        f'rules = "{REPO / "mappings" / "lifecycle.toml"}"\n'
        '[connections.hubspot]\ntype = "hubspot"\ntoken_env = "CRMSYNC_TEST_HUBSPOT_TOKEN"\n'
        '[connections.salesforce]\ntype = "salesforce"\ninstance_url = "https://example.my.salesforce.com"\n'
    )
    (tmp_path / "state").mkdir()
    return config


def invoke(config: Path, *args: str, services: Services | None = None) -> Any:
    result = CliRunner().invoke(app, ["--config", str(config), *args], obj=services)
    assert "Traceback" not in result.output
    return result


def one_error_line(result: Any) -> str:
    # log lines (a failed run is logged at ERROR, for log watchers) are another channel: not counted
    lines = [text for text in result.stderr.strip().splitlines() if not text[:4].isdigit()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_config_that_is_not_utf8_is_one_line_naming_the_file_and_line(project: Path) -> None:
    project.write_bytes(b"# first line\n" + LATIN_1 + project.read_bytes())

    result = invoke(project, "status")

    assert result.exit_code == ExitCode.CONFIG
    assert f"{project}: not UTF-8 text (byte 0xe9 on line 2)" in one_error_line(result)


def test_a_config_with_a_utf8_byte_order_mark_is_read(project: Path) -> None:
    project.write_bytes(b"\xef\xbb\xbf" + project.read_bytes())

    assert invoke(project, "status").exit_code == 0


def test_config_pointing_at_a_folder_is_one_line(project: Path) -> None:
    result = invoke(project.parent, "status", "--json")

    assert result.exit_code == ExitCode.CONFIG
    assert f"{project.parent}: is a folder, not a file" in one_error_line(result)
    assert json.loads(result.stdout)["reason"] == "config"
    assert invoke(project.parent, "validate").exit_code == ExitCode.CONFIG


def test_one_job_file_that_is_not_utf8_does_not_hide_the_other_jobs(project: Path) -> None:
    (project.parent / "jobs" / "salesforce-lifecycle.toml").write_bytes(LATIN_1)

    result = invoke(project, "status", "--json")

    assert result.exit_code == 0
    assert [job["job"] for job in json.loads(result.stdout)] == ["hubspot-lifecycle"]
    assert "salesforce-lifecycle.toml: not UTF-8 text" in result.stderr
    assert invoke(project, "run", "salesforce-lifecycle").exit_code == ExitCode.CONFIG


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_bytes(b"this is not a database, " * 100), id="not-a-database"),
        pytest.param(lambda path: path.write_bytes(path.read_bytes()[:3000]), id="truncated"),
    ],
)
def test_a_damaged_sqlite_store_is_one_line_naming_the_file(project: Path, damage: Any) -> None:
    database = project.parent / "state" / "crmsync.db"
    open_store(f"sqlite:///{database}").close()
    damage(database)

    result = invoke(project, "status", "--json")

    assert result.exit_code == ExitCode.STORE
    line = one_error_line(result)
    assert str(database) in line and ("not a database" in line or "malformed" in line), line
    error = json.loads(result.stdout)
    assert error == {"status": "failed", "exit_code": 6, "reason": "store", "error": line.removeprefix("error: ")}


def test_a_store_that_cannot_be_opened_names_its_path(project: Path) -> None:
    project.write_text(project.read_text().replace("sqlite:///state/", "sqlite:///no-such-folder/"))

    result = invoke(project, "history")

    assert result.exit_code == ExitCode.STORE
    line = one_error_line(result)
    assert "unable to open database file" in line and str(project.parent / "no-such-folder" / "crmsync.db") in line


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCrm]:
    made = new_crm()
    populate(made, 30)
    monkeypatch.setenv("CRMSYNC_TEST_HUBSPOT_TOKEN", "not-used")
    yield made


def test_a_full_disk_during_a_run_is_one_line_and_a_rerun_completes(project: Path, crm: FakeCrm) -> None:
    def full_store(url: str) -> Store:
        """The real store, on a disk that fills up once the schema is written (SQLite's own SQLITE_FULL)."""
        store = open_store(url)

        @event.listens_for(store.engine, "connect")
        def _small(connection: sqlite3.Connection, _record: Any) -> None:
            used = connection.execute("PRAGMA page_count").fetchone()[0]
            connection.execute(f"PRAGMA max_page_count = {used + 2}")

        store.engine.dispose()
        return store

    clients = Services(clients=lambda _config, _name: crm.client(), clock=lambda: NOW)
    full = Services(clients=clients.clients, clock=clients.clock, store_opener=full_store)

    result = invoke(project, "run", "hubspot-lifecycle", "--json", services=full)

    assert result.exit_code == ExitCode.STORE, result.output
    line = one_error_line(result)
    assert "database or disk is full" in line and str(project.parent / "state" / "crmsync.db") in line
    assert json.loads(result.stdout)["job"] == "hubspot-lifecycle"
    rerun = invoke(project, "run", "hubspot-lifecycle", "--json", services=clients)
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["status"] == "completed"


def test_a_report_written_to_a_full_disk_is_one_line(project: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")

    result = invoke(project, "report", "--html", "/dev/full")

    assert result.exit_code == ExitCode.STORE
    assert "disk full: /dev/full: No space left on device" in one_error_line(result)


def test_a_store_variable_that_is_not_json_names_the_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMSYNC_STORE", "notjson")

    result = invoke(project, "status")

    assert result.exit_code == ExitCode.CONFIG
    assert "environment: CRMSYNC_STORE: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_takes_a_job_name_never_a_path(project: Path) -> None:
    (project.parent / "mappings").mkdir()
    shutil.copy(REPO / "jobs" / "hubspot-lifecycle.toml", project.parent / "mappings" / "outside.toml")

    result = invoke(project, "run", "../mappings/outside")

    assert result.exit_code == ExitCode.CONFIG
    assert "is not a job name" in one_error_line(result)


def test_what_the_crm_said_is_shown_at_the_terminal_but_never_stored(capsys: pytest.CaptureFixture[str]) -> None:
    from connector.errors import ConfigError, with_vendor_message
    from connector.sync.redact import safe_message

    error = with_vendor_message(ConfigError("HubSpot contacts.search: HTTP 400: VALIDATION_ERROR"), "bad value 'Jane'")

    assert safe_message(error) == "ConfigError: HubSpot contacts.search: HTTP 400: VALIDATION_ERROR"
    failure = report_failure(error, debug=False, as_json=False)
    assert failure.code == ExitCode.CONFIG
    assert "(the CRM said: bad value 'Jane')" in capsys.readouterr().err
