"""Tenants: one template, one line per client portal, every problem named with its file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import Config, HubSpotConnection, PathSettings, TeamSettings
from connector.errors import ConfigError
from connector.team.tenants import team_jobs

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = """
[connection]
type = "hubspot"
base_url = "http://127.0.0.1:8100/{tenant}"
token_env = "HUBSPOT_TOKEN_{TENANT}"

[job]
schedule = "*/5 * * * *"
description = "ladder of {tenant}"
"""


def config_in(folder: Path, tenants: str, **team: object) -> Config:
    (folder / "jobs").mkdir(exist_ok=True)
    (folder / "tenants.toml").write_text(tenants, encoding="utf-8")
    return Config(
        paths=PathSettings(
            mappings=REPO / "mappings", jobs=folder / "jobs", rules=REPO / "mappings" / "lifecycle.toml"
        ),
        team=TeamSettings(**team),  # type: ignore[arg-type]
        base_dir=folder,
    )


def test_fifty_tenants_from_one_template(tmp_path: Path) -> None:
    entries = "".join(f"[tenants.client-{i:02d}]\n" for i in range(50))
    config, jobs = team_jobs(config_in(tmp_path, TEMPLATE + entries + "[tenants.big.connection]\nburst_limit = 250\n"))
    assert len(jobs) == 51 and len(config.connections) == 51
    acme = config.connections["client-07"]
    assert isinstance(acme, HubSpotConnection)
    assert acme.token_env == "HUBSPOT_TOKEN_CLIENT_07"
    assert acme.base_url == "http://127.0.0.1:8100/client-07"
    assert jobs["client-07"].connections == ["client-07"]
    assert jobs["client-07"].schedule == "*/5 * * * *"
    assert jobs["client-07"].description == "ladder of client-07"
    big = config.connections["big"]
    assert isinstance(big, HubSpotConnection) and big.burst_limit == 250
    # the mapping of a tenant's connection is the template's vendor's
    assert config.connection_mapping("client-07").crm == "hubspot"


def test_a_job_file_keeps_working_beside_the_tenants(tmp_path: Path) -> None:
    config = config_in(tmp_path, TEMPLATE + "[tenants.acme]\n")
    (tmp_path / "jobs" / "nightly.toml").write_text('name = "nightly"\nconnections = ["acme"]\n', encoding="utf-8")
    _, jobs = team_jobs(config)
    assert sorted(jobs) == ["acme", "nightly"]


def test_every_problem_is_named_with_file_and_key(tmp_path: Path) -> None:
    bad = TEMPLATE + (
        "[tenants.ok]\n[tenants.Bad_Name]\n[tenants.slow.connection]\nburst_limit = 0\n"
        '[tenants.never.job]\nschedule = "0 0 31 2 *"\n[tenants.typo.connection]\nburstlimit = 3\n'
    )
    with pytest.raises(ConfigError) as raised:
        team_jobs(config_in(tmp_path, bad))
    keys = sorted(problem.key for problem in raised.value.problems)
    assert keys == [
        "tenants.Bad_Name",
        "tenants.never.job.schedule",
        "tenants.slow.connection.burst_limit",
        "tenants.typo.connection.burstlimit",
    ]
    assert all(problem.file.endswith("tenants.toml") for problem in raised.value.problems)


def test_a_tenant_may_not_shadow_a_job_file(tmp_path: Path) -> None:
    config = config_in(tmp_path, TEMPLATE + "[tenants.acme]\n")
    (tmp_path / "jobs" / "acme.toml").write_text('name = "acme"\nconnections = ["x"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="already defined"):
        team_jobs(config)


def test_no_tenants_file_no_tenants(tmp_path: Path) -> None:
    config = config_in(tmp_path, TEMPLATE)
    (tmp_path / "tenants.toml").unlink()
    assert team_jobs(config) == (config, {})
