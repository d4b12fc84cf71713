"""The sync: one run of a job over the state store, talking to CRMs only through the client protocol.

``run`` holds the orchestration (transactions, checkpoints, leases);
``decide`` and ``settle`` are the pure steps beside it.
"""

from connector.sync.result import ConnectionCounts, PlannedWrite, RunResult
from connector.sync.run import ClientFactory, Clock, PageGroup, RunSettings, job_rules, run_job, utc_now

__all__ = [
    "ClientFactory",
    "Clock",
    "ConnectionCounts",
    "PageGroup",
    "PlannedWrite",
    "RunResult",
    "RunSettings",
    "job_rules",
    "run_job",
    "utc_now",
]
