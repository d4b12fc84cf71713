"""The funnel: dates from the contacts' evidence, cohorts, the "beyond the ladder" row, --json/--csv, filters."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli.app import app
from connector.cli.services import Services
from connector.config import load_config
from connector.jobs import Job
from connector.report import COLUMNS, build_funnel
from connector.store import open_store
from tests.sync.conftest import ICP, NOW, REPO, Runner, new_crm, populate

DAY = timedelta(days=1)


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "hubspot-lifecycle.toml").write_text((REPO / "jobs" / "hubspot-lifecycle.toml").read_text())
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n[paths]\nmappings = "{REPO / "mappings"}"\njobs = "jobs"\n'
        f'rules = "{REPO / "mappings" / "lifecycle.toml"}"\n'
        '[connections.hubspot]\ntype = "hubspot"\ntoken_env = "CRMSYNC_TEST_HUBSPOT_TOKEN"\n'
    )
    monkeypatch.setenv("CRMSYNC_TEST_HUBSPOT_TOKEN", "pat-test")
    monkeypatch.setenv("COLUMNS", "250")
    return config


def filled(project: Path) -> tuple[Services, Runner]:
    """24 contacts of populate() (downloads 40 days ago, a demo request 36 days ago...), a customer, one run."""
    crm = new_crm()
    populate(crm, 24)
    crm.add_contact("c9000", "buyer@example.fr", company=ICP)
    crm.set_value("c9000", "lifecyclestage", "customer")  # above the ladder: never written
    config = load_config(project)
    store = open_store(config.store_url)
    runner = Runner(config, store, {"hubspot": crm})
    runner(Job(name="hubspot-lifecycle", connections=["hubspot"]))
    # a second run a week later writes nothing new: the dates must not move
    runner.now = NOW + 7 * DAY
    runner(Job(name="hubspot-lifecycle", connections=["hubspot"]))
    return Services(clients=lambda _c, _n: crm.client(), clock=lambda: NOW + 7 * DAY), runner


def test_time_in_rung_comes_from_the_evidence_dates_not_from_our_writes(project: Path) -> None:
    _services, runner = filled(project)
    funnel = build_funnel(runner.store, config=runner.config, now=runner.now)
    rungs = {rung.stage.value: rung for rung in funnel.rungs}

    # populate(): lead on day 1 (a download), mql on day 3 (webinar), then sql on day 4 (a demo request) for
    # four of the mqls, a meeting on day 5 for the four others: 1 and 2 days in mql, median 1.5
    assert rungs["lead"].median_days == pytest.approx(2.0)
    assert rungs["mql"].median_days == pytest.approx(1.5)
    assert rungs["suspect"].entered == 4 + 1, "ICP-only contacts and the customer's ICP fit, not the leads"
    assert rungs["lead"].entered == 16 and rungs["lead"].converted == 12
    assert rungs["lead"].conversion == pytest.approx(12 / 16)
    assert rungs["meeting"].conversion is None
    assert funnel.beyond_ladder == 1 and funnel.total == 25


def test_a_date_range_keeps_only_the_cohorts_that_entered_in_it(project: Path) -> None:
    _services, runner = filled(project)
    base = NOW - timedelta(days=40)

    early = build_funnel(runner.store, config=runner.config, since=base, until=base + 2 * DAY, now=runner.now)
    late = build_funnel(runner.store, config=runner.config, since=base + 2 * DAY, now=runner.now)

    assert {r.stage.value: r.entered for r in early.rungs}["lead"] == 16
    assert {r.stage.value: r.entered for r in early.rungs}["mql"] == 0
    assert {r.stage.value: r.entered for r in late.rungs}["lead"] == 0


def test_report_json_csv_and_the_table_define_every_column(project: Path) -> None:
    services, _runner = filled(project)

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(app, ["report", *args, "--config", str(project)], obj=services)
        assert result.exit_code == 0, result.output
        return result.stdout

    data = json.loads(invoke("--json"))
    assert data["beyond_the_ladder"] == 1 and set(data["definitions"]) == set(COLUMNS)
    assert [r["rung"] for r in data["rungs"]][:2] == ["suspect", "lead"]
    rows = list(csv.DictReader(io.StringIO(invoke("--csv"))))
    assert rows[1]["rung"] == "lead" and rows[1]["median_days_in_rung"] == "2.0"
    assert rows[-2]["rung"] == "beyond the ladder" and rows[-2]["on_it"] == "1"
    split = list(csv.DictReader(io.StringIO(invoke("--csv", "--by-connection"))))
    assert {row["connection"] for row in split} == {"hubspot"}
    table = invoke()
    assert "beyond the ladder" in table and "median days in rung" in table
    assert all(meaning.split(" (")[0][:30] in table.replace("\n", " ") for meaning in list(COLUMNS.values())[1:3])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--connection", "nowhere"], "no connection 'nowhere'"),
        (["--crm", "pipedrive"], "--crm 'pipedrive'"),
        (["--job", "nope"], "no job 'nope'"),
        (["--json", "--csv"], "choose one"),
    ],
    ids=["connection", "crm", "job", "json-and-csv"],
)
def test_report_refuses_a_filter_that_matches_nothing_known(project: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["report", *args, "--config", str(project)])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["history", "--stage", "customer"], "--stage 'customer' is not a rung"),
        (["history", "--job", "nope"], "no job 'nope'"),
        (["history", "--connection", "nope"], "no connection 'nope'"),
        (["dead-letters", "--job", "nope"], "no job 'nope'"),
        (["runs", "nope"], "no job 'nope'"),
    ],
    ids=["stage", "history-job", "history-connection", "dead-letters-job", "runs-job"],
)
def test_a_bad_filter_is_an_error_not_an_empty_table(project: Path, command: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [*command, "--config", str(project)])
    assert result.exit_code == 2, result.output
    assert message in result.output
