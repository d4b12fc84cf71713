"""CPU seconds for the benchmark tables: this process's (all threads) and the local PostgreSQL server's.

The machine is shared, so wall time alone says little: CPU seconds are given
beside it. The server's CPU is read from ``/proc``: every live ``postgres``
process's own time plus the postmaster's reaped children (backends that ended).
Other work on the same server during a run is counted too; run under the
benchmark lock.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stat(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_cpu(pid: int) -> float | None:
    """CPU seconds used so far by one live process (the sandbox CRM's), ``None`` once it is gone."""
    fields = _stat(str(pid))
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _TICK


def server_cpu() -> float | None:
    """CPU seconds used so far by the PostgreSQL server on this machine (``None`` if none is found)."""
    total = 0
    found = False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name != "postgres":
            continue
        fields = _stat(entry.name)
        if fields is None:
            continue
        found = True
        # after the ")": state ppid ... utime(11) stime(12) cutime(13) cstime(14), 0-based from "state"
        total += int(fields[11]) + int(fields[12])
        if _is_postmaster(fields):
            total += int(fields[13]) + int(fields[14])
    return total / _TICK if found else None


def _is_postmaster(fields: list[str]) -> bool:
    parent = _stat(fields[1])
    if parent is None:
        return True
    try:
        return Path(f"/proc/{fields[1]}/comm").read_text().strip() != "postgres"
    except OSError:
        return True
