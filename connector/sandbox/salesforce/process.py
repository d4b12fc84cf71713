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
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import urllib.request
from dataclasses import asdict
from types import TracebackType
from typing import Any

from connector.sandbox.salesforce import SalesforceSandbox, SandboxLimits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m connector.sandbox.salesforce", description=__doc__)
    parser.add_argument("--contacts", "--people", dest="people", type=int, default=1_000)
    parser.add_argument("--activities", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--daily-api-requests", type=int, default=SandboxLimits.daily_api_requests)
    args = parser.parse_args(argv)
    sandbox = SalesforceSandbox(
        contacts=args.people,
        activities=args.activities,
        seed=args.seed,
        host=args.host,
        port=args.port,
        limits=SandboxLimits(daily_api_requests=args.daily_api_requests),
        keep_log_entries=False,
    )
    # a million long-lived records would make every full GC pass of this process walk them all
    gc.collect()
    gc.freeze()
    sandbox.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(
        json.dumps(
            {"url": sandbox.url, "port": sandbox.port, "ca_file": sandbox.ca_file, "seeded": asdict(sandbox.summary)}
        ),
        flush=True,
    )

    def watch_stdin() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    sandbox.stop()


class SandboxProcess:
    """A sandbox org in a child process; the default credentials of :class:`SalesforceSandbox` apply."""

    def __init__(
        self,
        *,
        contacts: int = 0,
        activities: int,
        seed: int = 7,
        daily_api_requests: int = 1_000_000,
        people: int | None = None,
    ) -> None:
        """``people`` is the former name of ``contacts``."""
        self.args = [
            sys.executable, "-m", "connector.sandbox.salesforce",
            "--contacts", str(people if people is not None else contacts), "--activities", str(activities), "--seed", str(seed),
            "--daily-api-requests", str(daily_api_requests),
        ]  # fmt: skip
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy()
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process exited before serving")
        self.info = json.loads(line)

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def ca_file(self) -> str:
        return str(self.info["ca_file"])

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint and API usage, from the sandbox's admin endpoint."""
        return dict(self._admin("GET", "/_sandbox/stats"))

    def reset_log(self) -> None:
        self._admin("POST", "/_sandbox/reset-log")

    def _admin(self, method: str, path: str) -> Any:
        context = ssl.create_default_context(cafile=self.ca_file)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        request = urllib.request.Request(f"{self.url}{path}", method=method, data=b"" if method == "POST" else None)
        with opener.open(request, timeout=30) as answer:
            return json.loads(answer.read() or b"{}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stdin:
                self.process.stdin.close()
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None

    def __enter__(self) -> SandboxProcess:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
