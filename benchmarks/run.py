"""Proof under load: the benchmark scenarios of issue 6, each against sandbox CRMs in a separate process.

    .venv/bin/python benchmarks/run.py SCENARIO [--crm hubspot|salesforce|both] [--contacts N] [--json FILE]

Scenarios (each runs ``connector.sync.run_job`` with a SQLite state store
and the real clients, exactly the ``crmsync run`` path, and prints one table):

- ``full``: full sync with write-back of N contacts (default 100,000) and 10 N
  activities: wall time, contacts/s, peak RSS, API calls per endpoint vs the
  vendor minimum;
- ``incremental``: after a full sync, a pause until our own write-back is older
  than the clients' 5-minute lookback (as between two scheduled runs), the echo
  run that reads it once, a re-run with nothing changed, then 1 % of the people
  edited through the vendor's API (a new title; every second one also has our
  stage field cleared) and one incremental run: same figures, minimum from the
  records in the change window;
- ``rerun``: the same without the 1 % edit: zero write calls, reads only for
  the change window;
- ``paced``: full sync (default 10,000 contacts) with the sandbox enforcing
  HubSpot's 190 / 10 s and 5 searches / s and the client pacing at its
  defaults: achieved request rate as a share of the limit, 429s received; for
  Salesforce the achieved rate against the connection's ``requests_per_second``;
- ``scale``: full sync at each of ``--sizes`` (default 10,000,100,000), each in
  a fresh process: time and memory growth;
- ``unify``: both sandboxes seeded as one world (N people each, ``--overlap``
  of them in both CRMs, default 0.3), one job over both connections with
  ``unify = true`` (``--no-unify``: the same job without the key, each record
  decided on its own), one full run: wall time, peak RSS, calls per CRM
  against each CRM's vendor minimum.

Every (CRM, scenario, size) runs in its own child process so that peak RSS is
that run's. The runner holds ``/tmp/crmsync-bench.lock`` (flock) while it
measures, so two benchmarks never share the cores.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

LOCK = "/tmp/crmsync-bench.lock"
LOOKBACK_SECONDS = 300.0
"""Both clients' default lookback: records changed this long before a checkpoint are read again."""
SCENARIOS = ("full", "incremental", "rerun", "paced", "scale", "unify")
HUBSPOT_BURST = 190
HUBSPOT_WINDOW = 10.0


# ---------------------------------------------------------------------------
# child: one CRM, one scenario, one size
# ---------------------------------------------------------------------------


def measure_unify(
    contacts: int, activities: int, seed: int, store_url: str | None, overlap: float, unify: bool
) -> list[dict[str, Any]]:
    """Both CRMs of one world, each sandbox in its own process, one full run of the job over both."""
    import logging
    from contextlib import ExitStack

    from scenarios import TARGETS, open_fresh_store, pair_config, process_peak_mb, run_pair, unify_job

    logging.getLogger("connector").setLevel(logging.ERROR)
    job = unify_job(unify=unify)  # before seeding: a checkout without the key stops at once
    targets = [TARGETS[crm](contacts, activities, seed=seed, paced=False, overlap=overlap) for crm in TARGETS]
    with ExitStack() as stack:
        for target in targets:
            stack.enter_context(target)
        store, alone = open_fresh_store(targets[0], store_url)
        config = pair_config(targets, alone.store.url)
        try:
            name = "full, unified" if unify else "full, not unified"
            phases = run_pair(targets, store, config, job, name)
        finally:
            store.close()
    from connector.sandbox.generator import shared_positions

    for phase, target in zip(phases, targets, strict=True):
        phase.notes["shared_people"] = shared_positions(contacts, overlap)
        phase.notes["seed_seconds"] = round(target.seed_seconds, 1)
        phase.notes["process_peak_rss_mb"] = round(process_peak_mb(), 1)
    return [phase.as_dict() for phase in phases]


def measure(
    scenario: str, crm: str, contacts: int, activities: int, seed: int, store_url: str | None, no_wait: bool = False
) -> list[dict[str, Any]]:
    import logging

    from scenarios import TARGETS, open_fresh_store, process_peak_mb, run_phase

    logging.getLogger("connector").setLevel(logging.ERROR)
    target = TARGETS[crm](contacts, activities, seed=seed, paced=scenario == "paced")
    with target:
        store, config = open_fresh_store(target, store_url)
        try:
            full = run_phase(target, store, config, "full sync")
            full_ended = time.monotonic()
            full.notes["seed_seconds"] = round(target.seed_seconds, 1)
            phases = [full]
            if scenario == "paced":
                full.notes["achieved_per_second"] = round(full.total_calls / full.seconds, 2)
                if crm == "hubspot":
                    limit = HUBSPOT_BURST / HUBSPOT_WINDOW
                    full.notes["limit_per_second"] = limit
                else:
                    limit = target.RATE  # type: ignore[attr-defined]
                    full.notes["configured_per_second"] = limit
                full.notes["share_of_limit"] = round(full.total_calls / full.seconds / limit, 3)
                full.notes["rate_limited_share"] = round(full.rate_limited / full.total_calls, 4)
            if scenario in ("incremental", "rerun"):
                # our own write-back is "changed" for the lookback (5 min): let it age out, as between
                # two scheduled runs, so that the echo run reads it once and the later runs do not
                settle = LOOKBACK_SECONDS + 5 - (time.monotonic() - full_ended)
                if settle > 0 and not no_wait:
                    time.sleep(settle)
                phases.append(run_phase(target, store, config, "echo of our writes",
                                        minimum=target.window_minimum(store)))  # fmt: skip
                phases.append(run_phase(target, store, config, "re-run, nothing changed",
                                        minimum=target.window_minimum(store)))  # fmt: skip
                if scenario == "incremental":
                    changed = target.change_people(0.01)
                    phase = run_phase(target, store, config, "incremental (1% changed)",
                                      minimum=target.window_minimum(store))  # fmt: skip
                    phase.notes["people_edited"] = changed
                    phases.append(phase)
        finally:
            store.close()
    for phase in phases:
        phase.notes["process_peak_rss_mb"] = round(process_peak_mb(), 1)
    return [phase.as_dict() for phase in phases]


# ---------------------------------------------------------------------------
# parent: lock, children, one table
# ---------------------------------------------------------------------------


@contextmanager
def bench_lock() -> Iterator[None]:
    with open(LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_child(scenario: str, crm: str, contacts: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    command = [sys.executable, __file__, "_child", "--scenario", scenario, "--crm", crm, "--contacts", str(contacts),
               "--activities-per-contact", str(args.activities_per_contact), "--seed", str(args.seed)]  # fmt: skip
    if args.store_url:
        command += ["--store-url", args.store_url]
    if args.no_wait:
        command.append("--no-wait")
    if args.decide_processes is not None:
        command += ["--decide-processes", str(args.decide_processes)]
    if scenario == "unify":
        command += ["--overlap", str(args.overlap), *(["--no-unify"] if args.no_unify else [])]
    answer = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if answer.returncode != 0:
        raise SystemExit(f"{crm} {scenario} at {contacts:,} contacts failed (exit {answer.returncode})")
    return list(json.loads(answer.stdout.strip().splitlines()[-1]))


def _fmt(value: Any, spec: str = "") -> str:
    if value is None or value == "":
        return ""
    return format(value, spec)


def print_table(scenario: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{scenario}: {machine()}")
    header = f"{'crm':<11}{'run':<27}{'contacts':>9}{'endpoint':>24}{'calls':>8}{'minimum':>9}{'ratio':>7}" \
             f"{'wall s':>9}{'contacts/s':>11}{'peak RSS MB':>12}{'429s':>6}{'retries':>8}"  # fmt: skip
    print(header)
    print("-" * len(header))
    for phase in rows:
        endpoints = sorted(set(phase["calls"]) | set(phase["minimum"]))
        for endpoint in endpoints:
            made, least = phase["calls"].get(endpoint, 0), phase["minimum"].get(endpoint, 0)
            ratio = f"{made / least:.2f}" if least else ("-" if not made else "extra")
            print(f"{phase['crm']:<11}{phase['name']:<27}{'':>9}{endpoint:>24}{made:>8}{least:>9}{ratio:>7}")
        ratio = phase["ratio"]
        print(
            f"{phase['crm']:<11}{phase['name']:<27}{phase['contacts']:>9,}{'TOTAL':>24}{phase['total_calls']:>8}"
            f"{phase['total_minimum']:>9}{_fmt(ratio, '.2f'):>7}{phase['seconds']:>9.1f}"
            f"{phase['contacts_per_second']:>11,}{phase['peak_rss_mb']:>12.0f}{phase['rate_limited']:>6}{phase['retries']:>8}"
        )
        counts = phase["counts"]
        line = ", ".join(f"{k} {counts[k]:,}" for k in ("contacts_read", "activities_read", "decided", "changed",
                                                          "written", "failed", "skipped") if k in counts)  # fmt: skip
        notes = ", ".join(f"{k} {v}" for k, v in phase["notes"].items())
        print(f"{'':<11}{'':<27}  {line}; {notes}")


def machine() -> str:
    cpus = os.cpu_count()
    with open("/proc/meminfo", encoding="ascii") as info:
        total_kb = int(info.readline().split()[1])
    return f"{cpus} cores, {total_kb / 2**20:.0f} GiB, Python {platform.python_version()}, {platform.machine()}"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        child = argparse.ArgumentParser()
        child.add_argument("--scenario", required=True)
        child.add_argument("--crm", required=True)
        child.add_argument("--contacts", type=int, required=True)
        child.add_argument("--activities-per-contact", type=int, default=10)
        child.add_argument("--seed", type=int, default=7)
        child.add_argument("--store-url")
        child.add_argument("--no-wait", action="store_true")
        child.add_argument("--overlap", type=float, default=0.3)
        child.add_argument("--no-unify", action="store_true")
        child.add_argument("--decide-processes", type=int)
        options = child.parse_args(argv[1:])
        if options.decide_processes is not None:
            from scenarios import TARGETS

            for target in TARGETS.values():
                target.job = target.job.model_copy(update={"decide_processes": options.decide_processes})
        if options.scenario == "unify":
            print(json.dumps(measure_unify(options.contacts, options.contacts * options.activities_per_contact,
                                           options.seed, options.store_url, options.overlap,
                                           not options.no_unify)))  # fmt: skip
            return
        phases = measure(options.scenario, options.crm, options.contacts,
                         options.contacts * options.activities_per_contact, options.seed, options.store_url,
                         options.no_wait)  # fmt: skip
        print(json.dumps(phases))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--crm", choices=("hubspot", "salesforce", "both"), default="both")
    parser.add_argument("--contacts", type=int, help="people per CRM (default 100,000; paced 10,000)")
    parser.add_argument("--sizes", default="10000,100000", help="scale: comma-separated contact counts")
    parser.add_argument("--activities-per-contact", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store-url", help="state store URL (default: a fresh SQLite file per run)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--no-wait", action="store_true", help="incremental/rerun: do not wait for our own writes to leave the lookback"
    )
    parser.add_argument("--overlap", type=float, default=0.3, help="unify: share of the people in both CRMs")
    parser.add_argument(
        "--decide-processes", type=int, help="the job's decide_processes (default: the job's default, 0 = per core)"
    )
    parser.add_argument(
        "--no-unify", action="store_true", help="unify: the same job without `unify = true` (the baseline)"
    )
    args = parser.parse_args(argv)
    crms = ["hubspot", "salesforce"] if args.crm == "both" else [args.crm]
    if args.scenario == "unify":
        from scenarios import unify_job

        unify_job(unify=not args.no_unify)  # a checkout without the job key stops here, not after the lock
        crms = ["both"]  # one child runs both sandboxes and the one job over them
    if args.scenario == "scale":
        sizes = [int(size) for size in args.sizes.split(",")]
    else:
        sizes = [args.contacts or (10_000 if args.scenario == "paced" else 100_000)]
    rows: list[dict[str, Any]] = []
    with bench_lock():
        for crm in crms:
            for size in sizes:
                rows += run_child(args.scenario, crm, size, args)
    print_table(args.scenario, rows)
    if args.json:
        args.json.write_text(json.dumps({"scenario": args.scenario, "machine": machine(), "phases": rows}, indent=1))


if __name__ == "__main__":
    main()
