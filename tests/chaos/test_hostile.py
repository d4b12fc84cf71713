"""Hostile CRM data never stops a connection, and is printed safely.

Both sandboxes are seeded with ordinary people plus the hostile corpus
(``connector.sandbox.hostile``): NUL bytes, lone surrogates, rich markup,
ANSI/OSC escapes and 300 KB strings in every text field a mapping reads,
e-mails differing only by case, and a record deleted between pull and
write. Real runs (``run_job``, the real clients) on SQLite, and on
PostgreSQL when ``CRMSYNC_TEST_POSTGRES_URL`` is set. Given such a world,
when a job runs: the run completes, every ordinary person ends exactly as
in a world without the hostile records, every hostile record either lands
(its stage written back) or is reported with its id, and the command line
(``run --dry-run``, ``explain``, ``history``, ``dead-letters``) prints it all
without crashing, without a raw control byte and without interpreting markup.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from connector.config import load_config
from connector.connections import open_client
from connector.jobs import Job
from connector.mapping import load_mapping
from connector.sandbox.hostile import SeededCase
from connector.sandbox.hubspot import HubSpotSandbox, Limits
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits
from connector.store import open_store
from connector.sync import RunResult, run_job

ROOT = Path(__file__).resolve().parents[2]
SIZE = 40
SEED = 29
SANDBOX_NOW = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
RUN_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CRMS = ("hubspot", "salesforce")
PG_URL = os.environ.get("CRMSYNC_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
FAST_RETRY = {"max_attempts": 4, "initial_wait_seconds": 0.002, "max_wait_seconds": 0.02, "total_wait_seconds": 5}

MUST_LAND = frozenset({
    "nul", "nul-email", "markup", "markup-email", "link", "link-email", "osc52", "osc52-email",
    "clear", "clear-email", "twin-upper", "twin-lower",
})  # fmt: skip
"""Text a CRM legitimately holds: stored safely on both backends, so the stage is written back."""
MUST_BE_REPORTED = frozenset({"deleted", "huge-email"})
"""Not syncable: the record is gone at write time; an e-mail past 254 characters."""
# the others (lone surrogates, 300 KB texts) may land or be reported, never vanish silently
CONTROL_BYTES = ("\x1b", "\x07", "\x00", "\x9b")


# ---------------------------------------------------------------------------
# worlds
# ---------------------------------------------------------------------------


class StoreUrls:
    """Fresh store URLs on one backend: SQLite files, or PostgreSQL schemas dropped at the end."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.folder = folder
        self.schemas: list[str] = []
        self._admin = create_engine(PG_URL) if backend == "postgresql" and PG_URL else None

    def new(self, name: str) -> str:
        if self._admin is None:
            return f"sqlite:///{self.folder / (name + '.db')}"
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with self._admin.begin() as db:
            db.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        return f"{PG_URL}{'&' if '?' in str(PG_URL) else '?'}options=-csearch_path%3D{schema}"

    def drop(self) -> None:
        if self._admin is not None:
            with self._admin.begin() as db:
                for schema in self.schemas:
                    db.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            self._admin.dispose()


@dataclass
class World:
    folder: Path
    hubspot: HubSpotSandbox
    salesforce: SalesforceSandbox
    env: dict[str, str]

    def config_file(self, store_url: str, name: str = "config") -> Path:
        """A config folder pointing at the sandboxes and ``store_url``, with one job per CRM and one for both."""
        jobs = self.folder / "jobs"
        jobs.mkdir(exist_ok=True)
        for job, connections in (*((crm, [crm]) for crm in CRMS), ("both", list(CRMS))):
            (jobs / f"{job}.toml").write_text(f"name = {json.dumps(job)}\nconnections = {json.dumps(connections)}\n")
        sections = {
            "hubspot": self.hubspot.connection_settings(retry=FAST_RETRY, timeout_seconds=5.0),
            "salesforce": self.salesforce.connection_settings(retry=FAST_RETRY, timeout_seconds=5.0),
        }
        lines = [
            f"[store]\nurl = {json.dumps(store_url)}\n",
            f'[paths]\nmappings = {json.dumps(str(ROOT / "mappings"))}\njobs = "jobs"\n'
            f"rules = {json.dumps(str(ROOT / 'mappings' / 'lifecycle.toml'))}\n",
        ]
        for crm, values in sections.items():
            lines.append(f"[connections.{crm}]")
            lines += [f"{key} = {_toml(value)}" for key, value in values.items() if not isinstance(value, dict)]
            for key, table in ((k, v) for k, v in values.items() if isinstance(v, dict)):
                lines.append(f"[connections.{crm}.{key}]")
                lines += [f"{name} = {_toml(value)}" for name, value in table.items()]
        path = self.folder / f"{name}.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def run(self, crm: str, config: Path) -> RunResult:
        settings = load_config(config)
        store = open_store(settings.store_url)
        try:
            return run_job(
                Job(name=crm, connections=[crm]),
                settings,
                store=store,
                clients=open_client,
                clock=lambda: RUN_NOW,
                heartbeat=False,
            )
        finally:
            store.close()

    def stage_values(self, crm: str) -> dict[str, Any]:
        """The stage field of every person in the CRM, by CRM id."""
        field = load_mapping(ROOT / "mappings" / f"{crm}.toml").stage.field
        if crm == "hubspot":
            store = self.hubspot.store
            with store.lock:
                return {str(store.contact_id(i)): store.get(i, field) for i in range(store.contact_count)}
        org = self.salesforce.org
        with org.lock:
            return {r["Id"]: r.get(field) for sobject in ("Lead", "Contact") for r in org.records(sobject)}

    def hostile(self, crm: str) -> list[SeededCase]:
        return self.hubspot.hostile if crm == "hubspot" else self.salesforce.hostile

    def cli(self, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "connector", "--config", str(config), *args],
            capture_output=True, text=True, encoding="utf-8", errors="surrogateescape", env=self.env, timeout=600,
            cwd=self.folder,
        )  # fmt: skip

    def stop(self) -> None:
        self.hubspot.stop()
        self.salesforce.stop()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def make_world(folder: Path, *, hostile: bool) -> World:
    folder.mkdir(parents=True, exist_ok=True)
    hubspot = HubSpotSandbox(
        contacts=SIZE, activities=10 * SIZE, seed=SEED, now=SANDBOX_NOW, limits=Limits.unlimited(), hostile=hostile,
        token="pat-na1-hostile-0c1d",
    )  # fmt: skip
    salesforce = SalesforceSandbox(
        contacts=SIZE, activities=10 * SIZE, seed=SEED + 1, now=SANDBOX_NOW, hostile=hostile,
        limits=SandboxLimits(page_size=50, daily_api_requests=10_000_000),
    )  # fmt: skip
    hubspot.start()
    salesforce.start()
    env = {**os.environ, **hubspot.secrets_env(), **salesforce.secrets_env(), "COLUMNS": "200", "NO_COLOR": ""}
    env.pop("NO_COLOR")
    return World(folder, hubspot, salesforce, env)


@pytest.fixture(scope="module")
def clean_stages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Every ordinary person's stage after one run in a world without hostile records (SQLite)."""
    world = make_world(tmp_path_factory.mktemp("clean"), hostile=False)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in {**world.hubspot.secrets_env(), **world.salesforce.secrets_env()}.items():
                patch.setenv(name, value)
            stages = {}
            for crm in CRMS:
                config = world.config_file(f"sqlite:///{world.folder / crm}.db", name=f"config-{crm}")
                assert world.run(crm, config).status == "completed"
                stages[crm] = world.stage_values(crm)
        yield stages
    finally:
        world.stop()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    made = make_world(tmp_path / "hostile", hostile=True)
    for name, value in {**made.hubspot.secrets_env(), **made.salesforce.secrets_env()}.items():
        monkeypatch.setenv(name, value)
    yield made
    made.stop()


def reported_ids(caplog: pytest.LogCaptureFixture, world: World, config: Path, crm: str) -> set[str]:
    """CRM ids reported by the run: log events naming a record (``record_skipped``...) and dead letters."""
    ids = {str(r.crm_id) for r in caplog.records if getattr(r, "crm_id", None) and getattr(r, "connection", crm) == crm}
    letters = world.cli(config, "dead-letters", "--json")
    for line in letters.stdout.splitlines():
        if line.strip().startswith("{"):
            contact = json.loads(line)["contact"]
            connection, _, crm_id = contact.partition(":")
            if connection == crm:
                ids.add(crm_id)
    return ids


def assert_printed_safely(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert "Traceback" not in result.stderr, f"{what}: {result.stderr[-2000:]}"
    for stream, output in (("stdout", result.stdout), ("stderr", result.stderr)):
        raw = [byte for byte in CONTROL_BYTES if byte in output]
        assert not raw, f"{what}: raw control byte(s) {raw!r} on {stream}"


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("crm", CRMS)
def test_a_run_over_hostile_records_completes_reports_the_bad_and_lands_the_good(
    world: World, store_urls: StoreUrls, clean_stages: dict[str, dict[str, Any]], crm: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="connector")
    config = world.config_file(store_urls.new("state"))

    result = world.run(crm, config)

    assert result.status == "completed", result.error
    stages = world.stage_values(crm)
    hostile_ids = {seeded.crm_id for seeded in world.hostile(crm)}
    ordinary = {crm_id: value for crm_id, value in stages.items() if crm_id not in hostile_ids}
    assert ordinary == clean_stages[crm], "an ordinary person ended differently beside the hostile records"
    reported = reported_ids(caplog, world, config, crm)
    lost, unreported, not_landed = [], [], []
    for seeded in world.hostile(crm):
        landed = bool(stages.get(seeded.crm_id))
        if seeded.name in MUST_LAND and not landed:
            not_landed.append(seeded.name)
        if seeded.name in MUST_BE_REPORTED and seeded.crm_id not in reported:
            unreported.append(seeded.name)
        if not landed and seeded.crm_id not in reported:
            lost.append(seeded.name)
    assert not lost, f"hostile records neither synced nor reported: {lost}"
    assert not unreported, f"bad records not reported with their id: {unreported}"
    assert not not_landed, f"good records that did not land: {not_landed}"
    assert result.counts[crm].failed + result.counts[crm].skipped >= 1  # at least the deleted one, counted


def test_the_command_line_prints_hostile_records_safely(world: World, store_urls: StoreUrls) -> None:
    # a dry run on its own store first: the plan holds every hostile person's e-mail and reasons
    dry = world.cli(world.config_file(store_urls.new("dry"), name="config-dry"), "run", "both", "--dry-run")
    assert_printed_safely(dry, "run --dry-run")
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]

    config = world.config_file(store_urls.new("state"))
    for crm in CRMS:
        world.run(crm, config)

    for what, args in (("history", ["history"]), ("dead-letters", ["dead-letters"])):
        shown = world.cli(config, *args)
        assert_printed_safely(shown, what)
        assert shown.returncode == 0, f"{what}: {shown.stdout[-2000:]}{shown.stderr[-2000:]}"

    cases = [("hubspot", name) for name in ("markup-email", "link-email", "osc52-email", "clear-email")]
    cases += [("salesforce", name) for name in ("markup-email", "osc52-email")]
    for crm, name in cases:
        seeded = next(s for s in world.hostile(crm) if s.name == name and s.object_type in ("contacts", "Contact"))
        shown = world.cli(config, "explain", f"{crm}:{seeded.crm_id}")
        assert_printed_safely(shown, f"explain {crm} {name}")
        assert shown.returncode == 0, f"explain {crm} {name}: {shown.stdout[-2000:]}{shown.stderr[-2000:]}"
        if name in ("markup-email", "link-email"):  # shown as written, not interpreted as markup
            assert seeded.case.email in shown.stdout, f"explain {crm} {name}: the e-mail is not shown literally"

    twins = world.cli(config, "explain", "twin.case@hostile.example")
    assert_printed_safely(twins, "explain twins")
    twin_ids = [s.crm_id for s in world.hostile("hubspot") if s.name.startswith("twin-")]
    assert all(f"hubspot:{crm_id}" in twins.stdout for crm_id in twin_ids), twins.stdout[-2000:]
