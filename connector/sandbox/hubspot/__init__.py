"""A local HubSpot portal that the official ``hubspot-api-client`` talks to unchanged.

Usage (tests, benchmarks, ``crmsync sandbox``)::

    with HubSpotSandbox(contacts=1_000, activities=10_000) as sandbox:
        api = HubSpot(access_token=sandbox.token, host=sandbox.url)
        ...
        sandbox.request_log.calls("contacts.search")  # the request log
        sandbox.faults.add(Fault("rate_limit"))        # the next request gets a 429
        sandbox.store                                  # the data, for assertions

``python -m connector.sandbox.hubspot --contacts N --activities M`` runs one
in its own process and prints its URL on the first line of stdout.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import uvicorn

from connector.sandbox.generator import generate
from connector.sandbox.hostile import DELETED_TIMES, SeededCase, hostile_corpus
from connector.sandbox.hubspot.app import HubSpotApp
from connector.sandbox.hubspot.limits import Limits
from connector.sandbox.hubspot.store import FORMS, UNEXPRESSED_KINDS, Store
from connector.sandbox.kit import Fault, Faults, LoggedRequest, LoopbackSandbox, RequestLog

__all__ = [
    "FORMS",
    "TOKEN_ENV",
    "UNEXPRESSED_KINDS",
    "Fault",
    "Faults",
    "HubSpotSandbox",
    "Limits",
    "LoggedRequest",
    "RequestLog",
]

TOKEN_ENV = "HUBSPOT_TOKEN"
"""The environment variable a HubSpot connection reads its token from by default."""


class HubSpotSandbox(LoopbackSandbox):
    """A seeded sandbox portal served over loopback (plain HTTP) from a background thread."""

    thread_name = "hubspot-sandbox"

    def __init__(
        self,
        *,
        contacts: int = 0,
        activities: int = 0,
        seed: int = 7,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
        faults: Faults | None = None,
        now: datetime | None = None,
        clock: Callable[[], datetime] | None = None,
        keep_log_entries: bool = True,
        hostile: bool = False,
        token: str = "sandbox-token",
        with_stage_property: bool = True,
        overlap: float | None = None,
    ) -> None:
        """``overlap`` makes this portal the HubSpot of a world whose Salesforce org is seeded with the same
        ``contacts``, ``activities``, ``seed``, ``now`` and ``overlap`` (``connector.sandbox.generator``)."""
        super().__init__(
            seed=seed, host=host, port=port, faults=faults, now=now, clock=clock, keep_log_entries=keep_log_entries
        )
        self.token = token
        self.limits = limits if limits is not None else Limits()
        self.store = Store(
            with_stage_property=with_stage_property, clock=(lambda: clock().timestamp()) if clock else None
        )
        if contacts:
            self.store.seed(generate(contacts, activities, seed=seed, now=self.now, crm="hubspot", overlap=overlap))
        self.hostile: list[SeededCase] = self._seed_hostile(activities) if hostile else []
        self.app = HubSpotApp(self.store, token=token, limits=self.limits, faults=self.faults, log=self.request_log)
        self._server: uvicorn.Server | None = None

    def _seed_hostile(self, activities: int) -> list[SeededCase]:
        """The hostile corpus after the ordinary people (contact ids follow theirs)."""
        first = self.store.contact_count
        cases = hostile_corpus(now=self.now, first_person=first, first_activity=activities)
        self.store.seed((case.person, case.activities) for case in cases)
        seeded = [SeededCase(case, str(self.store.contact_id(first + n)), "contacts") for n, case in enumerate(cases)]
        doomed = [s.crm_id for s in seeded if s.case.deleted]
        self.faults.reject(doomed, times=DELETED_TIMES, category="OBJECT_NOT_FOUND")
        return seeded

    # -- the interface --------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def connection_settings(self, **overrides: Any) -> dict[str, Any]:
        """A ``[connections.hubspot]`` section for this portal; the pacing follows the sandbox's limits."""
        values: dict[str, Any] = {"type": "hubspot", "base_url": self.url, "token_env": TOKEN_ENV}
        if self.limits.burst is None:
            values["burst_limit"] = 1_000_000
        else:
            values |= {"burst_limit": self.limits.burst, "burst_window_seconds": self.limits.burst_window_seconds}
        values["search_per_second"] = 1_000_000 if self.limits.search_per_second is None else 4.0
        return values | overrides

    def secrets_env(self) -> dict[str, str]:
        return {TOKEN_ENV: self.token}

    # -- the web stack ----------------------------------------------------------------
    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="httptools",
            loop="asyncio",
            timeout_keep_alive=30,
        )
        server = self._server = uvicorn.Server(config)
        threading.Thread(target=self._signal_ready, args=(server, ready), daemon=True).start()
        server.run(sockets=[sock])

    @staticmethod
    def _signal_ready(server: uvicorn.Server, ready: threading.Event) -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.005)
        ready.set()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server = None
