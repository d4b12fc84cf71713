"""Run a HubSpot sandbox in its own process: prints one JSON line (``url``, ``port``, seeded counts), then serves.

python -m connector.sandbox.hubspot --contacts 100000 --activities 1000000 --port 0 --unlimited

It stops on SIGTERM, SIGINT or when stdin closes (see :mod:`connector.sandbox.kit.process`).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import datetime

from connector.sandbox import kit
from connector.sandbox.hubspot import HubSpotSandbox, Limits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m connector.sandbox.hubspot", description=__doc__)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--activities", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="sandbox-token", help="the bearer token the sandbox accepts")
    parser.add_argument("--unlimited", action="store_true", help="turn every rate limit off (benchmarks)")
    parser.add_argument("--burst", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--search-cap", type=int, default=10_000)
    parser.add_argument("--hostile", action="store_true", help="also seed the hostile-data corpus")
    parser.add_argument("--overlap", type=float, help="share of people also in the Salesforce sandbox of this seed")
    parser.add_argument(
        "--now", type=datetime.fromisoformat, default=None, help="the instant the data is generated around (ISO 8601)"
    )
    args = parser.parse_args(argv)
    limits = (
        Limits.unlimited(search_result_cap=args.search_cap)
        if args.unlimited
        else Limits(burst=args.burst, search_result_cap=args.search_cap)
    )
    started = time.perf_counter()
    sandbox = HubSpotSandbox(
        contacts=args.contacts,
        activities=args.activities,
        seed=args.seed,
        token=args.token,
        host=args.host,
        port=args.port,
        limits=limits,
        keep_log_entries=False,
        hostile=args.hostile,
        overlap=args.overlap,
        now=args.now,
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"seeded {args.contacts} contacts, {sandbox.store.activity_total()} activities "
        f"in {time.perf_counter() - started:.1f} s, RSS {rss:.0f} MB",
        file=sys.stderr,
        flush=True,
    )
    kit.serve_until_stopped(sandbox, {"seeded": sandbox.stats()["records"]})


if __name__ == "__main__":
    main()
