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
import urllib.request
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "team-benchmark-token"


def start_sandbox(contacts: int, activities: int, burst: int, seed: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "connector.sandbox.hubspot", "--contacts", str(contacts), "--activities",
         str(activities), "--burst", str(burst), "--token", TOKEN, "--port", "0", "--seed", str(seed)],
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


def phase(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    admin = create_engine(args.store_url)
    schema = f"bench_team_{uuid.uuid4().hex[:8]}"
    with admin.begin() as db:
        db.execute(text(f'CREATE SCHEMA "{schema}"'))
    store_url = f"{args.store_url}{'&' if '?' in args.store_url else '?'}options=-csearch_path%3D{schema}"
    sandboxes = [start_sandbox(args.contacts, args.activities, args.burst, seed=i) for i in range(args.portals)]
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
        with store.connect() as db:
            runs = db.execute(
                text("SELECT job, owner, status, started_at, finished_at FROM runs ORDER BY started_at")
            ).all()
            duplicates = db.execute(text(
                "SELECT count(*) FROM (SELECT connection, crm_id, to_stage FROM stage_changes "
                "GROUP BY connection, crm_id, to_stage HAVING count(*) > 1) d")).scalar_one()  # fmt: skip
            outbox = db.execute(text("SELECT count(*) FROM pending_writes")).scalar_one()
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
    return result


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
    results = [phase(args, int(n)) for n in args.workers.split(",")]
    for result in results:
        print(json.dumps(result, default=str))
    if len(results) > 1 and results[0]["runs_per_minute"]:
        print(json.dumps({"scaling": round(results[-1]["runs_per_minute"] / results[0]["runs_per_minute"], 2)}))


if __name__ == "__main__":
    main()
