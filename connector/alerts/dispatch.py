"""Sending alerts without ever holding up or failing a run.

:class:`Alerter` takes the alerts of a recorded run, drops those still in
their cool-down (the last send of each key is kept in the store, so a
``crmsync run`` from cron and several schedulers share it), and sends the
rest on a background thread: every target tried ``retries + 1`` times with
a timeout and a growing pause; a failure is logged at WARNING with the
target's name, never its URL or password. :meth:`Alerter.flush` waits (with
a bound) for the sends of a command that is about to exit.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from connector.alerts.channels import SendFailed, send_email, send_webhook
from connector.alerts.settings import AlertSettings, EmailTarget, WebhookTarget
from connector.alerts.triggers import Alert, RecordedRun, run_alerts
from connector.errors import ConfigError
from connector.store import Store
from connector.store.tables import alert_sends, dead_letters, runs

log = logging.getLogger(__name__)

Sender = Callable[[Alert], None]


def claim(store: Store, key: str, now: datetime, cooldown: timedelta) -> bool:
    """True when ``key`` may be sent now (and records the send); False inside its cool-down (counted)."""
    with store.begin() as db:
        row = db.execute(select(alert_sends.c.last_sent_at).where(alert_sends.c.key == key)).first()
        if row is None:
            try:
                with db.begin_nested():
                    db.execute(alert_sends.insert().values(key=key, last_sent_at=now, suppressed=0))
                return True
            except IntegrityError:  # another process claimed it at the same moment
                return False
        if now - row.last_sent_at < cooldown:
            db.execute(
                update(alert_sends).where(alert_sends.c.key == key).values(suppressed=alert_sends.c.suppressed + 1)
            )
            return False
        # the WHERE on the old value makes two processes racing for the same key send once
        claimed = db.execute(
            update(alert_sends)
            .where(alert_sends.c.key == key, alert_sends.c.last_sent_at == row.last_sent_at)
            .values(last_sent_at=now, suppressed=0)
        ).rowcount
        return bool(claimed)


def recorded_run(store: Store, run_id: str) -> RecordedRun | None:
    """A run as the store recorded it, with the dead letters it added."""
    from sqlalchemy import func

    with store.begin() as db:
        row = db.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            return None
        new = db.execute(
            select(func.count())
            .select_from(dead_letters)
            .where(dead_letters.c.run_id == run_id, dead_letters.c.first_seen >= row.started_at)
        ).scalar_one()
    return RecordedRun(
        id=row.id,
        job=row.job,
        status=row.status,
        finished_at=row.finished_at or row.started_at,
        dry_run=row.dry_run,
        counts=row.counts or {},
        usage=row.usage or {},
        error=row.error,
        new_dead_letters=int(new),
    )


def _webhook(alert: Alert, *, target: WebhookTarget, timeout: float) -> None:
    send_webhook(alert, target, timeout=timeout)


def _email(alert: Alert, *, target: EmailTarget, timeout: float) -> None:
    send_email(alert, target, timeout=timeout)


class Alerter:
    def __init__(
        self, settings: AlertSettings, store: Store | None, *, senders: list[tuple[str, Sender]] | None = None,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.store = store
        self.pause = pause
        self.senders = senders if senders is not None else self._targets()
        self._queue: queue.Queue[Alert] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def _targets(self) -> list[tuple[str, Sender]]:
        timeout = self.settings.timeout_seconds
        senders: list[tuple[str, Sender]] = []
        for hook in self.settings.webhooks:
            senders.append((f"webhook {hook.name}", partial(_webhook, target=hook, timeout=timeout)))
        email = self.settings.email
        if email is not None:
            senders.append((f"e-mail {email.name}", partial(_email, target=email, timeout=timeout)))
        return senders

    # -- what to send ---------------------------------------------------------------------------------------

    def after_run(self, run_id: str, *, now: datetime) -> list[Alert]:
        """Queue the alerts of the recorded run ``run_id`` (never raises); returns those queued."""
        if not self.settings.enabled or self.store is None:
            return []
        try:
            run = recorded_run(self.store, run_id)
            if run is None or run.dry_run:
                return []
            return self.submit(run_alerts(run, self.settings), now=now)
        except Exception as error:  # an alert problem must never fail the run
            log.warning("alerts not evaluated: %s", type(error).__name__, extra={"run_id": run_id})
            return []

    def submit(self, alerts: list[Alert], *, now: datetime, cooldown: bool = True) -> list[Alert]:
        """Send ``alerts`` in the background, skipping those inside their cool-down; returns those queued."""
        queued: list[Alert] = []
        for alert in alerts:
            if cooldown and self.store is not None:
                window = timedelta(minutes=self.settings.cooldown_minutes)
                try:
                    if not claim(self.store, alert.key, now, window):
                        log.info("alert held back (cool-down)", extra={"alert": alert.key})
                        continue
                except Exception as error:
                    log.warning("alert cool-down not readable: %s", type(error).__name__, extra={"alert": alert.key})
            queued.append(alert)
            with self._lock:
                if self._worker is None:
                    # a daemon: a send still stuck when the process exits never keeps it alive
                    self._worker = threading.Thread(target=self._work, name="crmsync-alerts", daemon=True)
                    self._worker.start()
            self._queue.put(alert)
        return queued

    # -- sending --------------------------------------------------------------------------------------------

    def send_now(self, alert: Alert) -> dict[str, str | None]:
        """Send ``alert`` to every target at once (``alerts test``): each target's problem, ``None`` when sent."""
        return {name: self._send_one(alert, name, sender) for name, sender in self.senders}

    def _work(self) -> None:
        while True:
            alert = self._queue.get()
            try:
                for name, sender in self.senders:
                    self._send_one(alert, name, sender)
            finally:
                self._queue.task_done()

    def _send_one(self, alert: Alert, name: str, sender: Sender) -> str | None:
        attempts = self.settings.retries + 1
        problem = ""
        for attempt in range(1, attempts + 1):
            try:
                sender(alert)
                log.info("alert sent", extra={"alert": alert.key, "target": name, "attempt": attempt})
                return None
            except ConfigError as error:
                problem = str(error)
                break
            except SendFailed as error:
                problem = str(error)
                if not error.retryable:
                    break
            except Exception as error:  # a target's bug must not stop the others
                problem = f"{name}: {type(error).__name__}"
            if attempt < attempts:
                self.pause(min(2.0 ** (attempt - 1), 30.0))
        log.warning("alert not sent: %s", problem, extra={"alert": alert.key, "target": name})
        return problem

    def flush(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (default: every try of every queued send) for the queued sends.

        Returns ``False`` (and logs it) when some were still sending.
        """
        if timeout is None:
            per_alert = (self.settings.timeout_seconds + 30.0) * (self.settings.retries + 1) * max(1, len(self.senders))
            timeout = per_alert * max(1, self._queue.unfinished_tasks)
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("alerts still sending: %d", self._queue.unfinished_tasks)
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Wait (bounded) for the queued sends; a send still running is left to its daemon thread."""
        self.flush(timeout)
