"""The admin commands through typer's CliRunner, against a fake CRM and a real store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.cli.services import Services
from connector.errors import AuthError, QuotaExhausted
from connector.store import acquire, open_store
from tests.fakes import FakeCrm
from tests.sync.conftest import NOW, REPO, new_crm, populate

SECRET = "pat-na1-99999999-aaaa-bbbb-cccc-dddddddddddd"


@dataclass
class Project:
    config: Path
    crm: FakeCrm
    services: Services
    """The fake CRM's clients and a fixed clock, handed to the app instead of the real ones."""


@pytest.fixture
def setup(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "hubspot-lifecycle.toml").write_text((REPO / "jobs" / "hubspot-lifecycle.toml").read_text())
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
url = "{store_url}"
[paths]
mappings = "{REPO / "mappings"}"
jobs = "jobs"
rules = "{REPO / "mappings" / "lifecycle.toml"}"
[connections.hubspot]
type = "hubspot"
token_env = "CRMSYNC_TEST_HUBSPOT_TOKEN"
"""
    )
    crm = new_crm()
    populate(crm, 24)
    monkeypatch.setenv("CRMSYNC_TEST_HUBSPOT_TOKEN", SECRET)
    monkeypatch.setenv("COLUMNS", "250")  # tables unwrapped, for the assertions
    yield Project(config, crm, Services(clients=lambda _config, _name: crm.client(), clock=lambda: NOW))


def cli(project: Project, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--config", str(project.config), *args], obj=project.services)
    return result.exit_code, result.output


def test_run_json_prints_one_summary_object_without_secrets(setup: Project) -> None:
    crm = setup.crm

    code, output = cli(setup, "run", "hubspot-lifecycle", "--json")

    assert code == 0, output
    summary = json.loads(output)
    assert summary["status"] == "completed"
    assert summary["written"] == 20
    assert summary["connections"]["hubspot"]["api_calls"] == crm.usage().total_calls
    assert SECRET not in output


def test_run_prints_a_plain_summary_off_a_terminal(setup: Project) -> None:

    code, output = cli(setup, "run", "hubspot-lifecycle")

    assert code == 0, output
    assert "hubspot-lifecycle: completed" in output
    assert "written 20" in output


def test_dry_run_prints_before_and_after_and_writes_nothing(setup: Project) -> None:
    crm = setup.crm
    crm.set_value("c0004", "crmsync_lifecycle_stage", "lead")

    code, output = cli(setup, "run", "hubspot-lifecycle", "--dry-run", "--json")

    assert code == 0, output
    planned = {p["crm_id"]: (p["before"], p["after"]) for p in json.loads(output)["planned"]}
    assert planned["c0004"] == ("lead", "sql")
    assert crm.writes == []


@pytest.mark.parametrize(
    ("error", "code"),
    [(QuotaExhausted("hubspot: daily limit"), 4), (AuthError("hubspot: 401 on /crm/v3/objects/contacts"), 3)],
    ids=["quota", "auth"],
)
def test_run_exit_codes_tell_why_a_run_could_not_complete(setup: Project, error: Exception, code: int) -> None:
    crm = setup.crm
    crm.raise_on_write = error

    exit_code, output = cli(setup, "run", "hubspot-lifecycle")

    assert exit_code == code, output


def test_run_exits_5_when_another_process_holds_the_job(setup: Project, store_url: str) -> None:
    store = open_store(store_url)
    acquire(store, "hubspot-lifecycle", "other-host:1", ttl=timedelta(hours=1), clock=lambda: NOW)

    code, output = cli(setup, "run", "hubspot-lifecycle")

    assert code == 5
    assert "other-host:1" in output
    store.close()


def test_unknown_job_and_bad_job_file_are_clear_config_errors(setup: Project) -> None:
    config = setup.config
    (config.parent / "jobs" / "broken.toml").write_text('name = "broken"\nconnections = []\nschedul = "x"\n')

    code, output = cli(setup, "run", "nope")
    assert code == 2
    assert "no job 'nope'" in output and "hubspot-lifecycle" in output

    code, output = cli(setup, "run", "broken")
    assert code == 2
    assert "broken.toml" in output and "connections" in output and "schedul" in output


def test_a_job_naming_an_unknown_connection_is_a_config_error(setup: Project) -> None:
    config = setup.config
    (config.parent / "jobs" / "sf.toml").write_text('name = "sf"\nconnections = ["salesforce"]\n')

    code, output = cli(setup, "run", "sf")

    assert code == 2
    assert "salesforce" in output


def test_a_bad_config_names_the_file_and_key(setup: Project) -> None:
    config = setup.config
    config.write_text(config.read_text() + "\n[stor]\nurl = 'x'\n")

    code, output = cli(setup, "status")

    assert code == 2
    assert "config.toml" in output and "stor" in output


def test_status_history_explain_and_report_after_a_run(setup: Project, tmp_path: Path) -> None:
    crm = setup.crm
    crm.reject["c0009"] = ("INVALID_OPTION", "lifecyclestage: not a valid option")
    assert cli(setup, "run", "hubspot-lifecycle")[0] == 0

    code, output = cli(setup, "status", "--json")
    assert code == 0
    [job] = json.loads(output)
    assert job["last_run"]["status"] == "completed"
    assert job["dead_letters"] == 1
    assert {cp["stream"] for cp in job["checkpoints"]} == {"contacts", "activities"}
    assert all(cp["cursor"] and cp["resume_position"] is None for cp in job["checkpoints"])

    code, output = cli(setup, "history", "--stage", "sql", "--json")
    assert code == 0
    rows = [json.loads(line) for line in output.splitlines()]
    assert {row["contact"] for row in rows} == {"hubspot:c0004", "hubspot:c0010", "hubspot:c0016", "hubspot:c0022"}
    assert cli(setup, "history", "--contact", "person4@example.fr", "--json")[1].count("\n") == 1
    assert cli(setup, "history", "--since", "2027-01-01", "--json")[1] == ""
    assert cli(setup, "history", "--since", "yesterday")[0] == 2

    code, output = cli(setup, "explain", "person4@example.fr")
    assert code == 0, output
    assert "decided sql" in output and "demo_request" in output and "→ sql" in output
    assert cli(setup, "explain", "hubspot:nope")[0] == 1

    code, output = cli(setup, "dead-letters")
    assert code == 0
    assert "hubspot:c0009" in output and "INVALID_OPTION" in output

    html = tmp_path / "funnel.html"
    code, output = cli(setup, "report", "--html", str(html))
    assert code == 0
    assert "meeting" in output
    page = html.read_text()
    assert "<svg" in page and "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")


def test_dead_letters_retry_resolves_after_a_fix(setup: Project) -> None:
    crm = setup.crm
    crm.reject["c0009"] = ("INVALID_OPTION", "not a valid option")
    cli(setup, "run", "hubspot-lifecycle")
    del crm.reject["c0009"]

    code, output = cli(setup, "dead-letters", "--retry")

    assert code == 0, output
    assert "1 record(s) queued again" in output
    assert crm.stage_of("c0009") == "mql"
    assert "dead letters (0 open)" in cli(setup, "dead-letters")[1]
    resolved = [json.loads(line) for line in cli(setup, "dead-letters", "--all", "--json")[1].splitlines()]
    assert resolved[0]["resolution"] == "written"


def test_validate_remote_asks_the_clients_the_services_give(setup: Project) -> None:
    code, output = cli(setup, "validate", "--remote")

    assert code == 0, output
    assert "hubspot: checked against the live schema" in output
