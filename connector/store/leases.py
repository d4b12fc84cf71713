"""Job leases: one run of a job at a time, across processes and machines.

A lease is one row per job: who holds it and until when. The holder renews
it (a heartbeat) while it works; a holder that dies stops renewing and the
lease expires, so another process can take the job over. Every commit of a
run's results renews the lease in the same transaction, so a process that
lost its lease (paused past the expiry, say) cannot commit anything more.

The owner's name says where it runs (``host:pid:random``). A holder on this
host whose process is gone (killed, crashed) is taken over at once; a holder
on another host cannot be checked from here and is taken over when its
lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, delete, or_, select, update

from connector.store.sql import upsert
from connector.store.state import Store
from connector.store.tables import leases

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class LeaseHeld(Exception):
    """Another process runs this job now."""

    def __init__(self, job: str, owner: str, expires_at: datetime) -> None:
        super().__init__(f"job {job!r} is being run by {owner} (lease until {expires_at.isoformat()})")
        self.job = job
        self.owner = owner
        self.expires_at = expires_at


class LeaseLost(Exception):
    """This process no longer holds the job's lease: stop without committing more."""


def new_owner() -> str:
    """A name for this holder that says where it runs (host, pid) and is unique."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (signal 0 checks without sending anything).

    A killed process that its parent has not reaped yet (a zombie) still answers signal 0, but it
    runs nothing and never renews a lease: on Linux its state in ``/proc`` says so, and it counts as gone.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it ended meanwhile: signal 0 said it existed
        return False
    # "pid (command) state ...": the command may hold spaces and parentheses, the state follows the last ")"
    return stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"])


def dead_local_holder(owner: str) -> bool:
    """``owner`` ran on this host in a process that no longer exists."""
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return int(pid) != os.getpid() and not process_alive(int(pid))


class Lease:
    """A held lease on one job. Use :func:`acquire` to get one."""

    def __init__(self, store: Store, job: str, owner: str, ttl: timedelta, clock: Clock) -> None:
        self.store = store
        self.job = job
        self.owner = owner
        self.ttl = ttl
        self.clock = clock
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def renew(self, db: Connection) -> None:
        """Extend the lease inside ``db``'s transaction; raise ``LeaseLost`` if another holder has it."""
        now = self.clock()
        result = db.execute(
            update(leases)
            .where(leases.c.job == self.job, leases.c.owner == self.owner)
            .values(heartbeat_at=now, expires_at=now + self.ttl)
        )
        if result.rowcount != 1:
            self.lost.set()
            raise LeaseLost(f"lost the lease on job {self.job!r}")

    def heartbeat(self) -> None:
        with self.store.begin() as db:
            self.renew(db)

    def start_heartbeat(self, interval: float | None = None) -> None:
        """Renew in the background (a long CRM call must not let the lease lapse)."""
        period = interval if interval is not None else max(1.0, self.ttl.total_seconds() / 3)

        def beat() -> None:
            while not self._stop.wait(period):
                try:
                    self.heartbeat()
                except LeaseLost:
                    log.warning("lease lost", extra={"job": self.job})
                    return
                except Exception as error:  # the next beat may succeed; the fence in commits stays
                    log.warning("lease heartbeat failed", extra={"job": self.job, "error": type(error).__name__})

        self._thread = threading.Thread(target=beat, name=f"lease-{self.job}", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def release(self) -> None:
        self.stop_heartbeat()
        with self.store.begin() as db:
            db.execute(delete(leases).where(leases.c.job == self.job, leases.c.owner == self.owner))


def acquire(store: Store, job: str, owner: str, *, ttl: timedelta, clock: Clock) -> Lease:
    """Take the lease on ``job`` or raise ``LeaseHeld``; an expired lease, or one whose holder died on
    this host, is taken over."""
    now = clock()
    values = {"owner": owner, "acquired_at": now, "heartbeat_at": now, "expires_at": now + ttl}
    with store.begin() as db:
        taken = db.execute(
            update(leases)
            .where(leases.c.job == job, or_(leases.c.owner == owner, leases.c.expires_at < now))
            .values(**values)
        ).rowcount
        if taken != 1:
            before = db.execute(select(leases.c.owner).where(leases.c.job == job)).first()
            if before is None:
                upsert(db, leases, [{"job": job, **values}], keys=["job"])
            elif dead_local_holder(before.owner):
                # only if it is still that holder's: two takers cannot both win
                db.execute(update(leases).where(leases.c.job == job, leases.c.owner == before.owner).values(**values))
                log.info("lease taken over from a dead process", extra={"job": job, "holder": before.owner})
        holder = db.execute(select(leases.c.owner, leases.c.expires_at).where(leases.c.job == job)).one()
    if holder.owner != owner:
        raise LeaseHeld(job, holder.owner, holder.expires_at)
    return Lease(store, job, owner, ttl, clock)
