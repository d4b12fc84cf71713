"""Running the sandbox org in its own process (benchmarks, ``crmsync sandbox``).

``python -m connector.sandbox.salesforce --contacts N --activities M`` seeds
the org, starts it and prints one JSON line (``url``, ``ca_file``,
``port``, seed summary; never a credential) once it serves; it stops on
SIGTERM, SIGINT or when stdin closes. :class:`SandboxProcess` wraps that
for Python callers.
"""

from __future__ import annotations

import argparse
import gc
from dataclasses import asdict

from connector.sandbox import kit
from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m connector.sandbox.salesforce", description=__doc__)
    parser.add_argument("--contacts", "--people", dest="contacts", type=int, default=1_000)
    parser.add_argument("--activities", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--daily-api-requests", type=int, default=SandboxLimits.daily_api_requests)
    parser.add_argument("--hostile", action="store_true", help="also seed the hostile-data corpus")
    parser.add_argument("--overlap", type=float, help="share of people also in the HubSpot sandbox of this seed")
    args = parser.parse_args(argv)
    sandbox = SalesforceSandbox(
        contacts=args.contacts,
        activities=args.activities,
        seed=args.seed,
        host=args.host,
        port=args.port,
        limits=SandboxLimits(daily_api_requests=args.daily_api_requests),
        keep_log_entries=False,
        hostile=args.hostile,
        overlap=args.overlap,
    )
    # a million long-lived records would make every full GC pass of this process walk them all
    gc.collect()
    gc.freeze()
    kit.serve_until_stopped(sandbox, {"seeded": asdict(sandbox.summary)})


class SandboxProcess(kit.SandboxProcess):
    """A sandbox org in a child process; the default credentials of :class:`SalesforceSandbox` apply."""

    def __init__(
        self,
        *,
        contacts: int = 0,
        activities: int,
        seed: int = 7,
        daily_api_requests: int = 1_000_000,
        people: int | None = None,
        overlap: float | None = None,
    ) -> None:
        """``people`` is the former name of ``contacts``; ``overlap``: the org of a two-CRM world."""
        super().__init__(
            "salesforce",
            contacts=people if people is not None else contacts,
            activities=activities,
            seed=seed,
            options=[
                "--daily-api-requests", str(daily_api_requests),
                *(["--overlap", str(overlap)] if overlap is not None else []),
            ],
        )  # fmt: skip
