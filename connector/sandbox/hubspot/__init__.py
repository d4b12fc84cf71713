"""A local HubSpot portal that the official ``hubspot-api-client`` talks to unchanged.

Usage (tests, benchmarks, ``crmsync sandbox``)::

    with HubSpotSandbox(contacts=1_000, activities=10_000) as sandbox:
        api = HubSpot(access_token=sandbox.token, host=sandbox.url)
        ...
        sandbox.log.calls("contacts.search")      # the request log
        sandbox.faults.add(Fault("rate_limit"))   # the next request gets a 429
        sandbox.store                             # the data, for assertions

``python -m connector.sandbox.hubspot --contacts N --activities M`` runs one
in its own process and prints its URL on the first line of stdout.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime
from types import TracebackType

import uvicorn

from connector.sandbox.generator import generate
from connector.sandbox.hubspot.app import HubSpotApp
from connector.sandbox.hubspot.faults import Fault, Faults
from connector.sandbox.hubspot.limits import Limits
from connector.sandbox.hubspot.requestlog import LoggedRequest, RequestLog
from connector.sandbox.hubspot.store import FORMS, UNEXPRESSED_KINDS, Store

__all__ = ["FORMS", "UNEXPRESSED_KINDS", "Fault", "Faults", "HubSpotSandbox", "Limits", "LoggedRequest", "RequestLog"]


class HubSpotSandbox:
    """A seeded sandbox portal served over loopback from a background thread."""

    def __init__(
        self,
        *,
        contacts: int = 0,
        activities: int = 0,
        seed: int = 7,
        token: str = "sandbox-token",
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
        faults: Faults | None = None,
        now: datetime | None = None,
        with_stage_property: bool = True,
        keep_log_entries: bool = True,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.limits = limits if limits is not None else Limits()
        self.faults = faults if faults is not None else Faults(seed=seed)
        self.log = RequestLog(keep_entries=keep_log_entries)
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.store = Store(with_stage_property=with_stage_property)
        if contacts:
            self.store.seed(generate(contacts, activities, seed=seed, now=self.now))
        self.app = HubSpotApp(self.store, token=token, limits=self.limits, faults=self.faults, log=self.log)
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve in a background thread; ``url`` is set when this returns."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="httptools",
            loop="asyncio",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="hubspot-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the HubSpot sandbox did not start")
            time.sleep(0.01)
        self.url = f"http://{self.host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the separate-process mode)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", http="httptools", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        print(self.url, flush=True)
        self._server.run(sockets=[sock])

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> HubSpotSandbox:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
