"""Team mode benchmark: many sandbox portals, jobs every minute, 1 then 3 `crmsync worker` processes.

For each worker count, a fresh PostgreSQL schema and fresh HubSpot sandboxes
(one process per portal, enforcing its burst limit) are started; one tenant
per portal (``tenants.toml``), every job on ``* * * * *`` in ``full`` mode (each
run re-reads its portal, so runs cost real, paced API calls), plus a second
job on the first two portals (two jobs on one connection share its budget).
The workers run for ``--minutes``; with more than one worker, one is SIGKILLed
while it runs a job. Measured from the store and the sandboxes:

- runs completed per minute (and the ratio between the worker counts);
- overlapping runs of one job (must be 0) and ticks with no run;
- 429s answered by the sandboxes (0: no portal went over its limit at any
  moment, as the sandbox counts its rolling window);
- the killed worker's job: how long until another worker completed it, and
  its history (no stage change recorded twice, nothing left in the outbox).

    flock /tmp/crmsync-bench.lock .venv/bin/python benchmarks/team.py \\
        [--portals 30 --minutes 10 --workers 1,3] [--store-url postgresql+psycopg://...]

The issue's size is ``--portals 30 --minutes 10``; the defaults are smaller.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "team-benchmark-token"
WRITTEN_FIELDS = ("crmsync_lifecycle_stage", "lifecyclestage", "crmsync_stage_reached_at", "crmsync_stage_reason")
"""The contact properties the HubSpot mapping writes (``mappings/hubspot.toml``)."""


def start_sandbox(
    contacts: int, activities: int, burst: int, seed: int, now: datetime
) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector.sandbox.hubspot", "--contacts", str(contacts), "--activities",
         str(activities), "--burst", str(burst), "--token", TOKEN, "--port", "0", "--seed", str(seed),
         "--now", now.isoformat()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("{"):
        process.kill()
        raise SystemExit("a sandbox did not start")
    return process, str(json.loads(line)["url"])


def sandbox_statuses(url: str) -> Counter[str]:
    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=10) as answer:
        return Counter(json.loads(answer.read())["requests"]["statuses"])


def crm_state(url: str) -> list[tuple[str, ...]]:
    """Every contact's fields crmsync writes, read through the portal's API (paced under its burst limit)."""
    fields = ",".join(WRITTEN_FIELDS)
    rows: list[tuple[str, ...]] = []
    after = ""
    while True:
        query = f"limit=100&properties={fields}" + (f"&after={after}" if after else "")
        request = urllib.request.Request(
            f"{url}/crm/v3/objects/contacts?{query}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                page = json.loads(answer.read())
        except urllib.error.HTTPError as error:
            if error.code != 429:
                raise
            time.sleep(10)  # the portal's burst window (these reads come after its 429s were counted)
            continue
        for record in page["results"]:
            properties = record.get("properties") or {}
            rows.append((str(record["id"]), *(str(properties.get(name)) for name in WRITTEN_FIELDS)))
        after = ((page.get("paging") or {}).get("next") or {}).get("after") or ""
        if not after:
            return sorted(rows)


def write_config(folder: Path, store_url: str, urls: list[str], burst: int) -> list[str]:
    (folder / "jobs").mkdir()
    tenants = [f"p{i:02d}" for i in range(len(urls))]
    (folder / "config.toml").write_text(
        f'[store]\nurl = "{store_url}"\n[paths]\nmappings = "{ROOT / "mappings"}"\njobs = "jobs"\n'
        f'rules = "{ROOT / "mappings" / "lifecycle.toml"}"\n[team]\nenabled = true\n',
        encoding="utf-8",
    )
    template = (
        f'[connection]\ntype = "hubspot"\ntoken_env = "BENCH_TOKEN_{{TENANT}}"\nburst_limit = {burst}\n'
        '[job]\nschedule = "* * * * *"\nmode = "full"\n'
    )
    entries = "".join(f'[tenants.{t}.connection]\nbase_url = "{url}"\n' for t, url in zip(tenants, urls, strict=True))
    (folder / "tenants.toml").write_text(template + entries, encoding="utf-8")
    for tenant in tenants[:2]:  # a second job on the same connection: both draw on its one budget
        (folder / "jobs" / f"{tenant}-second.toml").write_text(
            f'name = "{tenant}-second"\nconnections = ["{tenant}"]\nschedule = "* * * * *"\nmode = "full"\n',
            encoding="utf-8",
        )
    return tenants


def phase(args: argparse.Namespace, workers: int, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """One worker count: its figures, and every tenant's outcome (CRM fields, history) to compare between counts."""
    admin = create_engine(args.store_url)
    schema = f"bench_team_{uuid.uuid4().hex[:8]}"
    with admin.begin() as db:
        db.execute(text(f'CREATE SCHEMA "{schema}"'))
    store_url = f"{args.store_url}{'&' if '?' in args.store_url else '?'}options=-csearch_path%3D{schema}"
    # the same seed and instant per portal in every phase: portal i starts from the same data each time
    sandboxes = [start_sandbox(args.contacts, args.activities, args.burst, i, now) for i in range(args.portals)]
    folder = Path(tempfile.mkdtemp(prefix="crmsync-team-"))
    tenants = write_config(folder, store_url, [url for _, url in sandboxes], args.burst)
    env = {**os.environ, **{f"BENCH_TOKEN_{t.upper()}": TOKEN for t in tenants}}
    env["CRMSYNC_CONFIG"] = str(folder / "config.toml")
    procs: list[subprocess.Popen[bytes]] = []
    killed: dict[str, Any] = {}
    store = create_engine(store_url)
    try:
        # the first worker creates procrastinate's tables; start the others once it has
        for index in range(workers):
            log = open(folder / f"worker{index}.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append(subprocess.Popen([sys.executable, "-m", "connector", "worker"], env=env, cwd=ROOT,
                                          stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
            if index == 0:
                time.sleep(8)
        started = datetime.now(UTC).replace(tzinfo=None)  # the runs table holds naive UTC times
        deadline = time.monotonic() + args.minutes * 60
        kill_at = time.monotonic() + args.minutes * 20  # a third in: time left for the recovery
        while time.monotonic() < deadline:
            time.sleep(1)
            if workers > 1 and not killed and time.monotonic() >= kill_at:
                with store.connect() as db:
                    rows = db.execute(text("SELECT job, owner FROM runs WHERE status = 'running'")).all()
                pids = {p.pid: p for p in procs}
                for job, owner in rows:
                    pid = int(owner.split(":")[1])
                    if pid in pids:
                        pids[pid].send_signal(signal.SIGKILL)
                        killed = {"job": job, "pid": pid, "at": datetime.now(UTC).replace(tzinfo=None)}
                        # reaped at once, as a supervisor (systemd, the container runtime) would: a zombie's pid
                        # still answers kill(pid, 0), and the job's lease would wait for its TTL (60 s)
                        pids[pid].wait()
                        break
        stopped = datetime.now(UTC).replace(tzinfo=None)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
        statuses: Counter[str] = Counter()
        for _, url in sandboxes:
            statuses += sandbox_statuses(url)
        outcomes: dict[str, Any] = {
            tenant: {"crm": crm_state(url)} for tenant, (_, url) in zip(tenants, sandboxes, strict=True)
        }
        with store.connect() as db:
            runs = db.execute(
                text("SELECT job, owner, status, started_at, finished_at FROM runs ORDER BY started_at")
            ).all()
            duplicates = db.execute(text(
                "SELECT count(*) FROM (SELECT connection, crm_id, to_stage FROM stage_changes "
                "GROUP BY connection, crm_id, to_stage HAVING count(*) > 1) d")).scalar_one()  # fmt: skip
            outbox = db.execute(text("SELECT count(*) FROM pending_writes")).scalar_one()
            # the history without run ids or instants (the clock is real): who moved from what to what, and why
            history = db.execute(text(
                "SELECT connection, crm_id, email, from_stage, from_value, to_stage, rule, reasons "
                "FROM stage_changes ORDER BY connection, crm_id, to_stage")).all()  # fmt: skip
        for row in history:
            outcomes[row.connection].setdefault("history", []).append(tuple(str(value) for value in row))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for process, _ in sandboxes:
            process.kill()
        store.dispose()
        if not args.keep:
            with admin.begin() as db:
                db.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    by_job: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        by_job[run.job].append(run)
    overlaps = 0
    for job_runs in by_job.values():
        for before, after in itertools.pairwise(job_runs):
            # a killed run ended when its worker died (the run that took over marks it abandoned later)
            end = killed["at"] if killed and before.status in ("running", "abandoned") else before.finished_at
            if end is not None and end > after.started_at:
                overlaps += 1
    minutes = (stopped - started).total_seconds() / 60
    ticks = int(minutes)  # one tick per minute per job over the measured window
    completed = [r for r in runs if r.status == "completed" and r.started_at >= started]
    per_job = Counter(r.job for r in runs if r.started_at >= started)
    missed = sum(max(0, ticks - per_job[job]) for job in by_job)
    result: dict[str, Any] = {
        "workers": workers,
        "jobs": len(by_job),
        "minutes": round(minutes, 2),
        "runs_completed": len(completed),
        "runs_per_minute": round(len(completed) / minutes, 2),
        "statuses": dict(Counter(r.status for r in runs)),
        "overlapping_runs": overlaps,
        "ticks_missed": missed,
        "ticks_expected": ticks * len(by_job),
        "http_429": statuses.get("429", 0),
        "requests": sum(statuses.values()),
        "duplicate_history_rows": duplicates,
        "left_in_outbox": outbox,
    }
    if killed:
        after = [r for r in runs if r.job == killed["job"] and r.started_at > killed["at"] and r.status == "completed"]
        result["killed"] = {
            "job": killed["job"],
            "completed_by_another_worker_after_s": round((after[0].finished_at - killed["at"]).total_seconds(), 1)
            if after
            else None,
            "other_owner": bool(after) and str(killed["pid"]) not in after[0].owner.split(":")[1],
        }
    return result, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portals", type=int, default=6)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--workers", default="1,3")
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--activities", type=int, default=1500)
    parser.add_argument("--burst", type=int, default=40, help="each sandbox portal's requests per 10 s")
    parser.add_argument("--store-url", default=os.environ.get("CRMSYNC_TEST_POSTGRES_URL"))
    parser.add_argument("--keep", action="store_true", help="keep the schemas")
    args = parser.parse_args()
    if not args.store_url:
        raise SystemExit("--store-url (or CRMSYNC_TEST_POSTGRES_URL): a PostgreSQL database to make schemas in")
    now = datetime.now(UTC).replace(microsecond=0)
    phases = [phase(args, int(n), now) for n in args.workers.split(",")]
    results = [result for result, _ in phases]
    clean = phases[0][1]
    for result, outcomes in phases[1:]:
        # every portal ends as in the first phase (with one worker nothing is killed: the clean runs)
        differ = sorted(t for t in clean if outcomes[t] != clean[t])
        result["portals_equal_to_first_phase"] = f"{len(clean) - len(differ)} of {len(clean)}"
        result["portals_differing"] = differ
        if "killed" in result:
            tenant = result["killed"]["job"].removesuffix("-second")
            result["killed"]["crm_and_history_equal_clean"] = outcomes[tenant] == clean[tenant]
            result["killed"]["stage_changes"] = len(clean[tenant].get("history", []))
    for result in results:
        print(json.dumps(result, default=str))
    if len(results) > 1 and results[0]["runs_per_minute"]:
        print(json.dumps({"scaling": round(results[-1]["runs_per_minute"] / results[0]["runs_per_minute"], 2)}))


if __name__ == "__main__":
    main()
