"""`crmsync demo`: sandboxes, a demo config, every demo job end to end, then the funnel."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app

runner = CliRunner()


def test_demo_runs_every_job_twice_and_leaves_a_usable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    putenv = os.putenv

    def recording_putenv(name: str | bytes, value: str | bytes) -> None:
        written.append(os.fsdecode(name))
        putenv(name, value)

    before = dict(os.environ)
    monkeypatch.setattr(os, "putenv", recording_putenv)  # what os.environ[...] = ... calls
    result = runner.invoke(app, ["demo", "--contacts", "150", "--activities", "1500", "--dir", str(tmp_path)])
    monkeypatch.undo()
    assert not [name for name in written if "SANDBOX" in name or "SALESFORCE" in name or "HUBSPOT" in name], written
    assert result.exit_code == 0, result.output
    assert "hubspot-lifecycle: completed" in result.output
    assert "salesforce-lifecycle: completed" in result.output
    assert "Funnel" in result.output
    # the second run of each job, with nothing new, writes nothing
    reruns = result.output.split("re-run, nothing new")[1:]
    assert len(reruns) == 2
    assert all("written 0" in part.split("\n\n")[0] for part in reruns)
    assert dict(os.environ) == before, "the demo must not leave the sandbox credentials in the environment"

    config = tmp_path / "config.toml"
    status = runner.invoke(app, ["--config", str(config), "history", "--json", "--limit", "5"])
    assert status.exit_code == 0, status.output
    lines = [json.loads(line) for line in status.stdout.splitlines()]
    # the demo's worlds hold customers: their beyond-the-ladder notes come first, then the stage changes
    assert {line["kind"] for line in lines} <= {"beyond_ladder", "stage_change"}
    changes = [line for line in lines if line["kind"] == "stage_change"]
    assert changes and all(change["to"] for change in changes)
    text = config.read_text()
    assert "sandbox-token" not in text and "sandbox-secret" not in text, "no secret in the written config"
    ca_bundle = Path(tomllib.loads(text)["connections"]["salesforce"]["ca_bundle"])
    assert ca_bundle.is_file() and ca_bundle.parent == tmp_path.resolve(), "the CA outlives the sandbox, in the folder"


def test_the_demo_seeds_one_world_whose_split_signals_person_is_in_both_crms(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["demo", "--contacts", "120", "--activities", "600", "--overlap", "0.2", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    found = runner.invoke(
        app, ["--config", str(tmp_path / "config.toml"), "explain", "lena.hoffmann@hoffmann-logistik.example.com"]
    )
    assert found.exit_code == 0, found.output
    # shared person 0 sits first in both CRMs; each record is decided on its own until the job unifies people
    hubspot, _, salesforce = found.output.partition("salesforce:")
    assert hubspot.startswith("hubspot:1 lena.hoffmann@hoffmann-logistik.example.com (contact)")
    assert "decided mql by rule mql" in hubspot
    assert salesforce.startswith("00Q") and "(Lead)" in salesforce.splitlines()[0]
    assert "decided meeting by rule meeting" in salesforce
