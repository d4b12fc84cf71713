"""One rate budget per connection, shared by every worker process on every machine (PostgreSQL store).

Each window of a vendor's pacer ("at most ``calls`` calls in any ``seconds``")
becomes one row of ``rate_budgets`` holding a theoretical arrival time (the
generic cell rate algorithm, GCRA): a call is admitted when the row's time
is at most ``tolerance`` ahead of now, and moves it on by ``interval``. The
row is read ``FOR UPDATE`` and moved in one transaction, with the database's
clock (``clock_timestamp()``), so processes on machines whose clocks differ
still share one budget; a call that must wait sleeps outside the transaction
and tries again.

With ``interval = seconds / (calls - burst + 1)`` and ``tolerance = (burst -
1) * interval``, any span shorter than ``seconds`` admits at most ``calls``
calls (a burst of ``burst`` at once, then one per ``interval``): the
window's limit holds at every moment, for everyone together. ``burst`` is a
twentieth of the window, so the sustained rate is about 95% of it.

The daily quota (HubSpot's daily limit, Salesforce's rolling 24-hour API
allocation) is not a rate to wait for but a budget to stop at: with a
connection's ``daily_call_budget``, each admitted call is also counted in the
connection's row of the current hour (``daily_calls``), in the same
transaction; a call that would bring the last 25 hourly rows (every span of
24 h ending now, whatever the minute) over the budget is refused with
``QuotaExhausted``, which stops the run (the next one resumes from its
checkpoints). The count is at least the calls of any 24 hours, so all workers
together never make more than the budget in any rolling day; HubSpot's
calendar day (midnight in the portal's time zone) is one such span.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from connector.errors import QuotaExhausted
from connector.http.pacing import Window, sharing

if TYPE_CHECKING:
    from connector.config import Config
    from connector.crm import CrmClient
    from connector.sync import ClientFactory

rate_budgets = Table(
    "rate_budgets",
    MetaData(),
    Column("key", Text, primary_key=True),
    Column("tat", Float(precision=53), nullable=False),
)
"""Created by the store's migration 0005; one row per connection window."""

daily_calls = Table(
    "daily_calls",
    MetaData(),
    Column("connection", Text, primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("calls", Integer, nullable=False),
)
"""Created by the store's migration 0009; the calls of one connection in one hour (epoch hours, database clock)."""

DAY_HOURS = 24
_NO_SYNC = text("SET LOCAL synchronous_commit TO OFF")


@dataclass(frozen=True, slots=True)
class Cell:
    """A window as GCRA parameters: calls ``interval`` apart after a burst that ``tolerance`` allows."""

    interval: float
    tolerance: float

    @classmethod
    def of(cls, window: Window) -> Cell:
        burst = max(1, window.calls // 20)
        interval = window.seconds / (window.calls - burst + 1)
        return cls(interval, (burst - 1) * interval)


def window_key(connection: str, window: Window) -> str:
    kinds = ",".join(sorted(window.kinds)) if window.kinds else "*"
    return f"{connection}|{window.calls}/{window.seconds:g}s|{kinds}"


class StoreBudget:
    """The shared budget of connection ``connection`` in the store behind ``engine`` (a ``SharedBudget``)."""

    def __init__(
        self,
        engine: Engine,
        connection: str,
        *,
        daily_calls: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("a shared rate budget needs the PostgreSQL store (team mode)")
        self.engine = engine
        self.connection = connection
        self.daily_calls = daily_calls
        """Calls all processes together may make in any 24 hours; ``None``: not counted."""
        self._sleep = sleep
        self._known: set[str] = set()
        self._hour: int | None = None
        """The last hour this process counted a call in (older rows are pruned when it changes)."""
        self.day_used = 0
        """Calls of the last 24 hours (all processes) when this process's last call was counted."""
        self.waited = 0.0
        """Seconds this process waited for the others so far."""
        self.admitted_at = 0.0
        """The database's clock (epoch seconds) when the last call was admitted: what a test checks."""

    def acquire(self, windows: Sequence[Window], kind: str | None) -> float:
        cells = {window_key(self.connection, w): Cell.of(w) for w in windows if w.applies(kind)}
        if not cells and self.daily_calls is None:
            return 0.0
        self._ensure(cells)
        keys = sorted(cells)  # rows locked in one order: two processes never deadlock
        query = (
            select(rate_budgets.c.key, rate_budgets.c.tat)
            .where(rate_budgets.c.key.in_(bindparam("keys", expanding=True)))
            .order_by(rate_budgets.c.key)
            .with_for_update()
        )
        waited = 0.0
        while True:
            with self.engine.begin() as db:
                # a lost admission (the server crashing within the next few ms) costs nothing: no flush to wait for
                db.execute(_NO_SYNC)
                rows = db.execute(query, {"keys": keys}).all()
                # the clock is read once the rows are locked: every admission sees the one before it
                now = float(db.execute(select(func.extract("epoch", func.clock_timestamp()))).scalar_one())
                wait = max((max(float(tat), now) - now - cells[key].tolerance for key, tat in rows), default=0.0)
                if wait <= 0:
                    if rows:
                        db.execute(
                            update(rate_budgets).where(rate_budgets.c.key == bindparam("k")).values(tat=bindparam("t")),
                            [{"k": key, "t": max(float(tat), now) + cells[key].interval} for key, tat in rows],
                        )
                    if self.daily_calls is not None:
                        self._count(db, now, self.daily_calls)  # raising rolls the admission back
                    self.waited += waited
                    self.admitted_at = now
                    return waited
            self._sleep(wait)
            waited += wait

    def _count(self, db: Connection, now: float, budget: int) -> None:
        """Count one call in the current hour's row, or refuse it when the last 24 hours used the budget."""
        hour = int(now // 3600)
        c = daily_calls.c
        # the upsert locks the hour's row: the processes count one after the other, each seeing the others' calls
        added = insert(daily_calls).values(connection=self.connection, hour=hour, calls=1)
        db.execute(added.on_conflict_do_update(index_elements=[c.connection, c.hour], set_={"calls": c.calls + 1}))
        used = int(
            db.execute(
                select(func.coalesce(func.sum(c.calls), 0)).where(
                    c.connection == self.connection, c.hour >= hour - DAY_HOURS
                )
            ).scalar_one()
        )
        if used > budget:
            raise QuotaExhausted(
                f"connection {self.connection}: its daily_call_budget ({budget} calls in 24 h, all workers "
                "together) is used up; the next run resumes once older calls leave the 24-hour span"
            )
        self.day_used = used
        if hour != self._hour:
            db.execute(delete(daily_calls).where(c.connection == self.connection, c.hour < hour - DAY_HOURS))
            self._hour = hour

    def _ensure(self, cells: dict[str, Cell]) -> None:
        missing = [key for key in cells if key not in self._known]
        if not missing:
            return
        with self.engine.begin() as db:
            db.execute(insert(rate_budgets).on_conflict_do_nothing(), [{"key": key, "tat": 0.0} for key in missing])
        self._known.update(missing)


def shared_clients(clients: ClientFactory, engine: Engine) -> ClientFactory:
    """``clients`` whose pacers also draw on each connection's shared budget in the store behind ``engine``."""

    def open_client(config: Config, name: str) -> CrmClient:
        daily = config.connections[name].daily_call_budget if name in config.connections else None
        with sharing(StoreBudget(engine, name, daily_calls=daily)):
            return clients(config, name)

    return open_client
