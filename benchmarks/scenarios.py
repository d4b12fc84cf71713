"""The pieces every proof scenario shares: a sandbox CRM in its own process, the real job path, the measurements.

A :class:`Target` is one CRM under test: it starts the vendor's sandbox in a
child process (``python -m connector.sandbox.hubspot`` /
``connector.sandbox.salesforce``), builds the ``Config`` that points the real
client at it, changes records the way a person would (through the vendor's
API, from a separate admin client whose calls are not counted), and says what
the vendor minimum of API calls is for a run, from the sandbox's own data.

:func:`run_phase` runs ``connector.sync.run_job`` once, exactly as
``crmsync run`` does (state store, ``open_client``, real clients), and
measures wall time, the peak RSS of this process during the run, and the API
calls per endpoint the client made.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connector.config import (
    Config,
    HubSpotConnection,
    PathSettings,
    RetrySettings,
    SalesforceConnection,
    StoreSettings,
)
from connector.connections import open_client
from connector.jobs import Job
from connector.mapping import CrmMapping, load_mapping
from connector.store import CONTACTS, Store, open_store
from connector.sync import RunResult, run_job

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import hubspot_sync  # noqa: E402  (the HubSpot benchmark's portal census and full-sync minimum)

HUBSPOT_TOKEN = "proof-benchmark-token"
HUBSPOT_TOKEN_ENV = "CRMSYNC_PROOF_HUBSPOT_TOKEN"
SF_PAGE = 2_000
SF_BATCH = 200
HS_SEARCH_PAGE = 200
HS_ASSOCIATIONS = 100
HS_BATCH = 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """The peak resident set of this process while a phase runs (sampled every 100 ms from /proc; the kernel's
    high-water mark of the whole process is reported beside it), and the peak of this process and its deciding
    helpers together (``connector.sync.helper``: children started by ``multiprocessing``; the sandbox is not
    counted)."""

    def __init__(self) -> None:
        self.peak = 0
        self.peak_with_helpers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    @staticmethod
    def current(pid: str = "self") -> int:
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
                return int(statm.read().split()[1]) * PAGE_SIZE
        except OSError:  # a helper that just ended
            return 0

    @staticmethod
    def helpers() -> list[str]:
        found = []
        for task in Path("/proc/self/task").iterdir():
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in children:
                try:
                    command = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"multiprocessing" in command:
                    found.append(child)
        return found

    def _take(self) -> None:
        own = self.current()
        self.peak = max(self.peak, own)
        self.peak_with_helpers = max(self.peak_with_helpers, own + sum(self.current(pid) for pid in self.helpers()))

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._take()
            self._stop.wait(0.1)

    def __enter__(self) -> RssSampler:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def process_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Phase:
    """One run of the job, measured."""

    crm: str
    name: str
    contacts: int
    """People in the sandbox."""
    seconds: float
    peak_rss_mb: float
    counts: dict[str, Any]
    calls: dict[str, int]
    minimum: dict[str, int]
    rate_limited: int = 0
    retries: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_minimum(self) -> int:
        return sum(self.minimum.values())

    @property
    def ratio(self) -> float | None:
        return self.total_calls / self.total_minimum if self.total_minimum else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "crm": self.crm,
            "name": self.name,
            "contacts": self.contacts,
            "seconds": round(self.seconds, 2),
            "contacts_per_second": round(self.counts.get("contacts_read", 0) / self.seconds) if self.seconds else 0,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "counts": self.counts,
            "calls": self.calls,
            "minimum": self.minimum,
            "total_calls": self.total_calls,
            "total_minimum": self.total_minimum,
            "ratio": round(self.ratio, 3) if self.ratio is not None else None,
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "notes": self.notes,
        }


def _resume_from(store: Store, job: str, connection: str, stream: str) -> str | None:
    """Where the job's next pull of ``stream`` starts (the store's checkpoint repository)."""
    with store.begin() as db:
        return store.checkpoints.get(db, job, connection, stream).resume_from


def _ceil(count: int, page: int) -> int:
    return math.ceil(count / page)


class Target:
    """One CRM under test, its sandbox in a child process."""

    crm: str
    job: Job

    def __init__(self, contacts: int, activities: int, *, seed: int, paced: bool, overlap: float | None = None) -> None:
        self.contacts = contacts
        self.activities = activities
        self.seed = seed
        self.paced = paced
        self.overlap = overlap
        """Seed the sandbox as this CRM of a two-CRM world with this share of shared people (``None``: alone)."""
        self.folder = Path(tempfile.mkdtemp(prefix=f"crmsync-proof-{self.crm}-"))
        self.mapping: CrmMapping = load_mapping(ROOT / "mappings" / f"{self.crm}.toml")
        self.seed_seconds = 0.0
        self.window_records = 0
        """Records in the change window, as counted by the last ``window_minimum``."""
        self.last_started: datetime | None = None
        """When the last measured run started (the org's clock is this machine's)."""

    def config(self, store_url: str) -> Config:
        (self.folder / "jobs").mkdir(exist_ok=True)
        return Config(
            store=StoreSettings(url=store_url),
            paths=PathSettings(
                mappings=ROOT / "mappings", jobs=self.folder / "jobs", rules=ROOT / "mappings" / "lifecycle.toml"
            ),
            connections={self.crm: self.connection()},
            base_dir=self.folder,
        )

    def connection(self) -> HubSpotConnection | SalesforceConnection:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        """The sandbox process's id (its CPU is reported beside the run's)."""
        popen = self.process.process
        assert popen is not None, "the sandbox is not running"
        return popen.pid

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def full_minimum(self, result: RunResult) -> dict[str, int]:
        raise NotImplementedError

    def window_minimum(self, store: Store) -> dict[str, int]:
        """Minimum reads of the next incremental run, from the stored checkpoints; call it just before the run."""
        raise NotImplementedError

    def change_people(self, share: float) -> int:
        """Edit ``share`` of the people through the vendor's API as a person would; returns how many."""
        raise NotImplementedError

    def __enter__(self) -> Target:
        started = time.perf_counter()
        self.start()
        self.seed_seconds = time.perf_counter() - started
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)  # the SQLite store of a 1M run is ~2 GB


def write_minimum(changed: int, batch: int, endpoint: str) -> dict[str, int]:
    return {endpoint: _ceil(changed, batch)} if changed else {}


# ---------------------------------------------------------------------------
# HubSpot
# ---------------------------------------------------------------------------


class HubSpotTarget(Target):
    crm = "hubspot"
    job = Job(name="proof-hubspot", connections=["hubspot"])

    def start(self) -> None:
        from connector.sandbox.kit import SandboxProcess

        options = ["--token", HUBSPOT_TOKEN, *(["--burst", "190"] if self.paced else ["--unlimited"])]
        if self.overlap is not None:
            options += ["--overlap", str(self.overlap)]
        self.process = SandboxProcess(
            "hubspot", contacts=self.contacts, activities=self.activities, seed=self.seed, options=options
        )
        self.process.start()
        self.url = self.process.url
        os.environ[HUBSPOT_TOKEN_ENV] = HUBSPOT_TOKEN
        from connector.hubspot.client import HubSpotClient

        # an admin's own client: its calls (census, edits) are not the benchmarked job's
        admin = HubSpotConnection(type="hubspot", base_url=self.url, retry=RetrySettings(initial_wait_seconds=0.5))
        self.admin = HubSpotClient("admin", admin, self.mapping, SecretStr(HUBSPOT_TOKEN), pacing=self.paced)

    def stop(self) -> None:
        self.admin.close()
        self.process.stop()

    def connection(self) -> HubSpotConnection:
        if self.paced:  # HubSpot's defaults: 190 / 10 s, 4 searches / s, pace at 95 %
            return HubSpotConnection(type="hubspot", base_url=self.url, token_env=HUBSPOT_TOKEN_ENV)
        return HubSpotConnection(
            type="hubspot", base_url=self.url, token_env=HUBSPOT_TOKEN_ENV,
            burst_limit=1_000_000, search_per_second=1_000_000,
        )  # fmt: skip

    def _search_total(self, name: str, groups: list[dict[str, Any]]) -> int:
        from connector.hubspot.payloads import ObjectPage
        from connector.hubspot.transport import Operation

        body = {"limit": 1, "filterGroups": groups}
        operation = Operation("census", "POST", f"/crm/v3/objects/{name}/search", body=body, search=True)
        return ObjectPage.model_validate_json(self.admin._transport.send(operation).data).total or 0

    def full_minimum(self, result: RunResult) -> dict[str, int]:
        sizes = hubspot_sync.store_sizes(self.admin)
        return hubspot_sync.minimum(sizes, result.counts[self.crm].changed, None)  # type: ignore[arg-type]

    def window_minimum(self, store: Store) -> dict[str, int]:
        from connector.hubspot.client import CONTACT_MODIFIED, ENGAGEMENT_OBJECTS, OBJECT_MODIFIED
        from connector.hubspot.cursor import ActivityCursor, ContactCursor

        contacts = ContactCursor.model_validate_json(_resume_from(store, self.job.name, self.crm, CONTACTS) or "")
        activities = ActivityCursor.model_validate_json(
            _resume_from(store, self.job.name, self.crm, "activities") or ""
        )
        window = [{"propertyName": CONTACT_MODIFIED, "operator": "GTE", "value": str(contacts.contacts.since)}]
        people = self._search_total("contacts", [{"filters": window}])
        self.window_records = people
        wanted = {"contacts.search": max(1, _ceil(people, HS_SEARCH_PAGE))}
        if self.mapping.company_object("contacts"):
            wanted |= self._company_minimum(contacts, people)
        for name in ENGAGEMENT_OBJECTS:
            since = activities.objects[name].since if name in activities.objects else 0
            changed = [{"propertyName": OBJECT_MODIFIED, "operator": "GTE", "value": str(since)}]
            records = self._search_total(name, [{"filters": changed}])
            self.window_records += records
            wanted[f"{name}.search"] = max(1, _ceil(records, HS_SEARCH_PAGE))
            # associations are read only for the changed records a rule maps to a kind
            groups = [
                {"filters": changed + [
                    {"propertyName": prop, "operator": "IN", "values": [value] if isinstance(value, str) else list(value)}
                    for prop, value in rule.when.items()
                ]}
                for rule in self.mapping.activity_rules(name)
            ]  # fmt: skip
            mapped = sum(self._search_total(name, [group]) for group in groups)
            if mapped:
                wanted[f"associations.{name}"] = _ceil(mapped, HS_ASSOCIATIONS)
        wanted["forms.submissions"] = len(self.admin._form_ids())
        wanted |= hubspot_sync.signals_minimum(hubspot_sync.signal_sizes(self.admin), full=False)
        # every pull reads the archived contacts whole (no date filter), 100 a page
        archived = self.admin._archived(0)
        wanted["contacts.list_archived"] = max(1, _ceil(len(archived), HS_BATCH))  # the list page is 100 too
        return wanted

    def _company_minimum(self, cursor: Any, people: int) -> dict[str, int]:
        """The company reads of an incremental pull: the window's contacts' primary companies (v4, 100 a call),
        those companies once each (100 a call), the companies changed since the last pull (search, 200 a page)
        and the contacts whose primary company one of them is (v4, then contacts 100 a call)."""
        from connector.hubspot.client import OBJECT_MODIFIED
        from connector.hubspot.cursor import SearchQuery

        wanted: dict[str, int] = {}
        if people:
            wanted["associations.contacts_to_companies"] = _ceil(people, HS_ASSOCIATIONS)
            companies: set[str] = set()
            query = SearchQuery(cursor.contacts.since, 0)
            for page, _, _ in self.admin._search("contacts", query, 0, ["hs_object_id"]):
                found = self.admin._company_associations([item.id for item in page.results])
                companies.update(c for c in found.values() if c)
            if companies:
                wanted["companies.batch_read"] = _ceil(len(companies), HS_BATCH)
        since = cursor.companies.since if cursor.companies is not None else None
        if since is not None:
            changed = [{"propertyName": OBJECT_MODIFIED, "operator": "GTE", "value": str(since)}]
            edited = self._search_total("companies", [{"filters": changed}])
            self.window_records += edited
            wanted["companies.search"] = max(1, _ceil(edited, HS_SEARCH_PAGE))
            if edited:
                wanted["associations.companies_to_contacts"] = _ceil(edited, HS_ASSOCIATIONS)
        return wanted

    def change_people(self, share: float) -> int:
        """Every ``1/share``-th contact gets a new job title; every second of those also has our stage cleared."""
        from connector.hubspot.transport import Operation

        step = max(1, round(1 / share))
        ids = list(range(1, self.contacts + 1, step))
        transport = self.admin._transport
        for start in range(0, len(ids), HS_BATCH):
            inputs = []
            for n, contact in enumerate(ids[start : start + HS_BATCH], start):
                properties = {"jobtitle": f"Head of Logistics {n}"}
                if n % 2:
                    properties[self.mapping.stage.field] = ""  # a person cleared it: the next run writes it again
                inputs.append({"id": str(contact), "properties": properties})
            transport.send(Operation("edit", "POST", "/crm/v3/objects/contacts/batch/update", body={"inputs": inputs}))
        return len(ids)


# ---------------------------------------------------------------------------
# Salesforce
# ---------------------------------------------------------------------------


class SalesforceTarget(Target):
    crm = "salesforce"
    job = Job(name="proof-salesforce", connections=["salesforce"])
    RATE = 20.0
    """The connection's default ``requests_per_second`` (used by the paced scenario)."""

    def start(self) -> None:
        from connector.sandbox.salesforce import SECRET_ENV, SalesforceSandbox
        from connector.sandbox.salesforce.process import SandboxProcess

        self.process = SandboxProcess(contacts=self.contacts, activities=self.activities, seed=self.seed,
                                      daily_api_requests=10_000_000, overlap=self.overlap)  # fmt: skip
        self.process.start()
        defaults = SalesforceSandbox.__init__.__kwdefaults__ or {}
        os.environ[SECRET_ENV["client_id"]] = defaults["client_id"]
        os.environ[SECRET_ENV["client_secret"]] = defaults["client_secret"]
        self.secret_env = SECRET_ENV
        from connector.salesforce.client import SalesforceClient

        self.admin = SalesforceClient.from_settings("admin", self.connection(), self.mapping)

    def stop(self) -> None:
        self.admin.close()
        self.process.stop()

    def connection(self) -> SalesforceConnection:
        return SalesforceConnection(
            type="salesforce",
            instance_url=self.process.url,
            login_url=self.process.url,
            ca_bundle=self.process.ca_file,
            client_id_env=self.secret_env["client_id"],
            client_secret_env=self.secret_env["client_secret"],
            requests_per_second=self.RATE if self.paced else 100_000.0,
            retry=RetrySettings(initial_wait_seconds=0.05),
        )

    def objects(self) -> dict[str, int]:
        seeded = self.process.info["seeded"]
        return {
            "Lead": seeded["leads"] + seeded["converted"],
            "Contact": seeded["contacts"],
            "Task": seeded["tasks"],
            "Event": seeded["events"],
            "CampaignMember": seeded["members"],
        }

    def _reads(self, sizes: dict[str, int]) -> dict[str, int]:
        pages = {name: max(1, _ceil(count, SF_PAGE)) for name, count in sizes.items()}
        return {"query": len(pages), "query_more": sum(p - 1 for p in pages.values())}

    def full_minimum(self, result: RunResult) -> dict[str, int]:
        return {
            "oauth/token": 1,
            **self._reads(self.objects()),
            **write_minimum(result.counts[self.crm].changed, SF_BATCH, "composite/sobjects"),
        }

    def window_minimum(self, store: Store) -> dict[str, int]:
        from simple_salesforce import format_soql

        from connector.salesforce.cursor import Cursor, resume_from

        lookback = timedelta(seconds=self.connection().lookback_seconds)
        sizes: dict[str, int] = {}
        for stream in (CONTACTS, "activities"):
            cursor = Cursor.decode(_resume_from(store, self.job.name, self.crm, stream))
            for name in cursor.positions:
                # what may have changed since the last run: the records after the last one read, and those
                # that could still commit late: stamped within the lookback before the scan that read up
                # to there began (the org's clock, kept in the cursor); without that scan start, within the
                # lookback before the last run started
                start = resume_from(cursor, name, lookback)
                assert start is not None
                if name not in cursor.scans and self.last_started is not None:
                    start = min(start, type(start)(self.last_started - lookback, ""))
                if name == "Account":
                    # the Account scan reads the Contacts of the Accounts changed in the window: one query at least
                    soql = format_soql("SELECT Id FROM Contact WHERE Account.SystemModstamp >= {}", start.stamp)
                else:
                    soql = format_soql(
                        "SELECT Id FROM {:literal} WHERE (SystemModstamp > {stamp} OR (SystemModstamp = {stamp}"
                        " AND Id > {id}))", name, stamp=start.stamp, id=start.id,
                    )  # fmt: skip
                sizes[name] = int(self._sf("census", "query", soql)["totalSize"])
        self.window_records = sum(sizes.values())
        return {"oauth/token": 1, **self._reads(sizes)}

    def _sf(self, endpoint: str, operation: str, *args: Any, **kwargs: Any) -> Any:
        """One call of simple-salesforce's ``operation`` through the admin client's choke point."""
        return self.admin.api.call(endpoint, lambda sf: getattr(sf, operation)(*args, **kwargs))

    def change_people(self, share: float) -> int:
        """Every ``1/share``-th Contact and open Lead gets a new title; every second one also has our stage cleared."""
        step = max(1, round(1 / share))
        stage = self.mapping.stage.field
        records: list[dict[str, Any]] = []
        for sobject, where in (("Contact", ""), ("Lead", " WHERE IsConverted = false")):
            soql = f"SELECT Id FROM {sobject}{where} ORDER BY Id"
            rows = list(self._sf("census", "query_all", soql)["records"])
            for n, row in enumerate(rows[::step], len(records)):
                record = {"attributes": {"type": sobject}, "id": row["Id"], "Title": f"Head of Logistics {n}"}
                if n % 2:
                    record[stage] = None
                records.append(record)
        for start in range(0, len(records), SF_BATCH):
            body = {"allOrNone": False, "records": records[start : start + SF_BATCH]}
            self._sf("edit", "restful", "composite/sobjects", method="PATCH", json=body)
        return len(records)


TARGETS: dict[str, type[Target]] = {"hubspot": HubSpotTarget, "salesforce": SalesforceTarget}


# ---------------------------------------------------------------------------
# one measured run of the job
# ---------------------------------------------------------------------------


def run_phase(target: Target, store: Store, config: Config, name: str, *, full: bool = False,
              minimum: dict[str, int] | None = None) -> Phase:  # fmt: skip
    """``run_job`` once, as ``crmsync run`` does it; ``minimum`` (reads known beforehand) is completed with writes."""
    from cpu import client_cpu, process_cpu, server_cpu

    target.last_started = datetime.now(UTC)
    postgres = store.engine.dialect.name == "postgresql"
    with RssSampler() as rss:
        cpu_before, server_before = client_cpu(), server_cpu() if postgres else None
        sandbox_before = process_cpu(target.pid)
        started = time.perf_counter()
        result = run_job(target.job, config, store=store, clients=open_client, full=full, heartbeat=True)
        seconds = time.perf_counter() - started
        cpu_used = client_cpu() - cpu_before
        server_after = server_cpu() if postgres else None
        sandbox_after = process_cpu(target.pid)
    if result.status != "completed":
        raise RuntimeError(f"{target.crm} {name}: the run ended {result.status}: {result.error}")
    counts = result.counts[target.crm].as_dict()
    usage = result.usage[target.crm]
    if minimum is None:
        wanted = target.full_minimum(result)
    else:
        endpoint, batch = (
            ("contacts.batch_update", HS_BATCH) if target.crm == "hubspot" else ("composite/sobjects", SF_BATCH)
        )
        wanted = {**minimum, **write_minimum(counts["changed"], batch, endpoint)}
    notes: dict[str, Any] = {
        "client_cpu_s": round(cpu_used, 1),
        "peak_rss_with_helpers_mb": round(rss.peak_with_helpers / 2**20, 1),
    }
    if server_before is not None and server_after is not None:
        notes["server_cpu_s"] = round(server_after - server_before, 1)
    if sandbox_before is not None and sandbox_after is not None:
        notes["sandbox_cpu_s"] = round(sandbox_after - sandbox_before, 1)
    if minimum is not None:
        notes["records_in_window"] = target.window_records
    return Phase(
        notes=notes,
        crm=target.crm,
        name=name,
        contacts=target.contacts,
        seconds=seconds,
        peak_rss_mb=rss.peak_mb,
        counts=counts,
        calls=dict(usage.calls),
        minimum=wanted,
        rate_limited=usage.rate_limited,
        retries=usage.retries,
    )


# ---------------------------------------------------------------------------
# both CRMs of one world, one job over both connections
# ---------------------------------------------------------------------------

UNIFY_KEY = "unify"
"""The job key that makes a job over several CRMs decide one stage per person (the unify work)."""


def unify_job(*, unify: bool) -> Job:
    """The job over both connections; ``unify = true`` when asked, and a clear error when this checkout's jobs
    do not know the key yet (run with ``--no-unify``: the same data, each record decided on its own)."""
    values: dict[str, Any] = {"name": "proof-unify", "connections": ["hubspot", "salesforce"]}
    if unify:
        if UNIFY_KEY not in Job.model_fields:
            raise SystemExit(
                f"this checkout's jobs have no `{UNIFY_KEY}` key yet: run with --no-unify for the baseline "
                "(the same data and job, each record decided on its own)"
            )
        values[UNIFY_KEY] = True
    return Job.model_validate(values)


def run_pair(targets: list[Target], store: Store, config: Config, job: Job, name: str) -> list[Phase]:
    """``run_job`` once over both CRMs; one :class:`Phase` per CRM (its calls against its own minimum), the wall
    time and the peak RSS being the one run's."""
    from cpu import client_cpu

    with RssSampler() as rss:
        cpu_before = client_cpu()
        started = time.perf_counter()
        result = run_job(job, config, store=store, clients=open_client, heartbeat=True)
        seconds = time.perf_counter() - started
        cpu_used = client_cpu() - cpu_before
    if result.status != "completed":
        raise RuntimeError(f"{name}: the run ended {result.status}: {result.error}")
    phases = []
    for target in targets:
        usage = result.usage[target.crm]
        phases.append(
            Phase(
                crm=target.crm,
                name=name,
                contacts=target.contacts,
                seconds=seconds,
                peak_rss_mb=rss.peak_mb,
                counts=result.counts[target.crm].as_dict(),
                calls=dict(usage.calls),
                minimum=target.full_minimum(result),
                rate_limited=usage.rate_limited,
                retries=usage.retries,
                notes={"client_cpu_s": round(cpu_used, 1), "overlap": target.overlap},
            )
        )
    return phases


def pair_config(targets: list[Target], store_url: str) -> Config:
    """One config with every target's connection (the first target's folder holds the jobs folder)."""
    folder = targets[0].folder
    (folder / "jobs").mkdir(exist_ok=True)
    return Config(
        store=StoreSettings(url=store_url),
        paths=PathSettings(
            mappings=ROOT / "mappings", jobs=folder / "jobs", rules=ROOT / "mappings" / "lifecycle.toml"
        ),
        connections={target.crm: target.connection() for target in targets},
        base_dir=folder,
    )


def open_fresh_store(target: Target, url: str | None) -> tuple[Store, Config]:
    """A new store: a SQLite file in the target's folder, or a schema of its own on the PostgreSQL at ``url``
    (never anyone's tables; left behind for inspection, named ``bench_<pid>``)."""
    store_url = url or f"sqlite:///{target.folder / 'state.db'}"
    if store_url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

        schema = f"bench_{os.getpid()}"
        engine = create_engine(store_url)
        with engine.begin() as db:
            db.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        store_url = f"{store_url}{'&' if '?' in store_url else '?'}options=-csearch_path%3D{schema}"
    store = open_store(store_url)
    return store, target.config(store_url)
