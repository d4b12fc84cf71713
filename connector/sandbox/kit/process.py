"""A sandbox CRM in its own process (benchmarks, ``crmsync sandbox``), the same way for both vendors.

``python -m connector.sandbox.hubspot`` / ``connector.sandbox.salesforce``
seed, start, print one JSON line once serving (``url``, ``port``, ``ca_file``
for the https one, what was seeded; never a credential) and stop on SIGTERM,
SIGINT or when stdin closes. :class:`SandboxProcess` wraps that for Python
callers, and reads the sandbox's ``/_sandbox`` endpoints (stats, reset the
log, arm a fault).
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict
from types import TracebackType
from typing import Any, Self

from connector.sandbox.kit.faults import Fault
from connector.sandbox.kit.server import LoopbackSandbox


def serve_until_stopped(sandbox: LoopbackSandbox, info: dict[str, Any]) -> None:
    """Start ``sandbox``, print ``info`` with its URL as one JSON line, serve until SIGTERM, SIGINT or stdin closes."""
    sandbox.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    ca_file = getattr(sandbox, "ca_file", "")
    print(json.dumps({"url": sandbox.url, "port": sandbox.port, "ca_file": ca_file, **info}), flush=True)

    def watch_stdin() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    sandbox.stop()


class SandboxProcess:
    """``python -m connector.sandbox.<vendor>`` in a child process; ``options`` are extra command-line arguments."""

    def __init__(
        self, vendor: str, *, contacts: int, activities: int, seed: int = 7, options: Sequence[str] = ()
    ) -> None:
        self.args = [
            sys.executable, "-m", f"connector.sandbox.{vendor}",
            "--contacts", str(contacts), "--activities", str(activities), "--seed", str(seed), *options,
        ]  # fmt: skip
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy()
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("{"):
            self.stop()
            raise RuntimeError("the sandbox process exited before serving")
        self.info = json.loads(line)

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def ca_file(self) -> str:
        """The CA to trust (https sandboxes), ``""`` otherwise."""
        return str(self.info.get("ca_file") or "")

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint and status, API usage and records, from the sandbox's admin endpoint."""
        return dict(self._admin("GET", "/_sandbox/stats"))

    def reset_log(self) -> None:
        self._admin("POST", "/_sandbox/reset-log")

    def add_fault(self, fault: Fault) -> int:
        """Arm ``fault`` in the child; the hits left on counted faults."""
        return int(self._admin("POST", "/_sandbox/faults", asdict(fault))["pending"])

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if self.ca_file:
            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=self.ca_file)))
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(f"{self.url}{path}", method=method, data=data)
        with urllib.request.build_opener(*handlers).open(request, timeout=30) as answer:
            return json.loads(answer.read() or b"{}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                if stream:
                    stream.close()
            self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
