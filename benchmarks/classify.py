"""Benchmark: the rules engine and `crmsync classify`, 100,000 contacts x 10 activities.

    python benchmarks/classify.py [--contacts 100000]

Prints one table: rules evaluation on ready-made common-model contacts (one
core, with and without building the explanation), and `crmsync classify`
end to end through JSON lines (a separate process reading a file on stdin,
writing to a file). Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from connector.lifecycle.rules import decide, load_rules
from connector.model import Contact
from connector.sandbox.generator import generate

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def contacts_as_json(count: int) -> list[str]:
    lines = []
    for person, activities in generate(count, count * 10, seed=11, now=NOW):
        company = person.company
        lines.append(
            json.dumps(
                {
                    "email": person.email,
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "job_title": person.job_title,
                    "company": {
                        "name": company.name,
                        "domain": company.domain,
                        "employees": company.employees,
                        "industry": company.industry,
                        "country": company.country,
                    },
                    "activities": [
                        {"kind": a.kind, "occurred_at": a.occurred_at.isoformat(), "detail": a.detail}
                        for a in activities
                    ],
                }
            )
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    rules = load_rules(ROOT / "mappings" / "lifecycle.toml")

    lines = contacts_as_json(args.contacts)
    contacts = [Contact.model_validate_json(line) for line in lines]
    activities = sum(len(c.activities) for c in contacts)

    rows = []
    for explain in (True, False):
        start, cpu = time.perf_counter(), time.process_time()
        stages = Counter(decide(c, None, rules, now=NOW, explain=explain).stage for c in contacts)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows.append((f"rules engine (explain={explain})", elapsed, cpu, len(contacts)))

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "contacts.jsonl"
        source.write_text("\n".join(lines) + "\n")
        target = Path(folder) / "stages.jsonl"
        command = [
            sys.executable,
            "-m",
            "connector",
            "classify",
            "--rules",
            str(ROOT / "mappings" / "lifecycle.toml"),
            "--as-of",
            NOW.isoformat(),
        ]
        with source.open("rb") as stdin, target.open("wb") as stdout:
            start = time.perf_counter()
            # /usr/bin/time reports the child's own peak RSS (getrusage of children would
            # count the pages it shared with this process between fork and exec).
            done = subprocess.run(
                ["/usr/bin/time", "-f", "%M", *command],
                stdin=stdin,
                stdout=stdout,
                stderr=subprocess.PIPE,
                check=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
            elapsed = time.perf_counter() - start
        produced = sum(1 for _ in target.open())
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = int(done.stderr.decode().split()[-1]) / 1024
        rows.append(("crmsync classify, JSON in/out (process)", elapsed, usage.ru_utime + usage.ru_stime, produced))

    print(f"{args.contacts:,} contacts, {activities:,} activities (avg {activities / len(contacts):.1f} per contact)")
    print("stages:", ", ".join(f"{(s.value if s else 'none')}={n}" for s, n in sorted(stages.items(), key=str)))
    # CPU seconds are what one core spent; on a shared machine they are the steadier figure.
    print(f"{'what':42} {'wall s':>7} {'cpu s':>7} {'contacts/s wall':>16} {'contacts/s cpu':>15}")
    for name, elapsed, cpu, count in rows:
        print(f"{name:42} {elapsed:7.2f} {cpu:7.2f} {count / elapsed:16,.0f} {count / cpu:15,.0f}")
    print(f"classify process peak RSS: {child:.0f} MB")


if __name__ == "__main__":
    main()
