"""The lifecycle every sandbox CRM shares, and the interface callers rely on.

An emulator serves from a background thread on a loopback socket bound here
(port 0: any free port), so ``url`` is known as soon as :meth:`start`
returns. Each emulator keeps its own web stack (an ASGI app under uvicorn for
HubSpot, a threaded ``http.server`` with TLS for Salesforce, whose SDK only
speaks https) behind :meth:`LoopbackSandbox._serve` / ``_shutdown``.
"""

from __future__ import annotations

import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from connector.sandbox.kit.faults import Faults
from connector.sandbox.kit.requestlog import RequestLog


@runtime_checkable
class Emulator(Protocol):
    """What tests, benchmarks and the demo use of a sandbox CRM, whichever vendor it emulates."""

    @property
    def url(self) -> str: ...

    @property
    def request_log(self) -> RequestLog: ...

    @property
    def faults(self) -> Faults: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint and status, API usage, records held."""
        ...

    def connection_settings(self, **overrides: Any) -> dict[str, Any]:
        """The values of a ``[connections.<name>]`` config section pointing at this sandbox."""
        ...

    def secrets_env(self) -> dict[str, str]:
        """Environment variables holding this sandbox's (throwaway) credentials, as the settings name them."""
        ...


def bind_loopback(host: str, port: int = 0) -> socket.socket:
    """A listening-ready TCP socket on ``host`` (``port=0``: a free port the OS picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: without it an answer written in two parts (headers, body) waited
    # for the client's delayed ACK, ~40 ms per call on Linux loopback
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class LoopbackSandbox(ABC):
    """Constructor arguments, request log, faults and lifecycle shared by the emulators.

    Every emulator takes the same keyword arguments: ``contacts`` and
    ``activities`` to seed (from the shared generator, ``seed``), ``limits``
    (its vendor's limits), ``faults``, ``now`` (the instant the data is
    generated around), ``clock`` (the emulator's own clock, for stamps it
    writes), ``hostile`` (hostile records added to the seed), ``host``,
    ``port`` and ``keep_log_entries``.
    """

    scheme: ClassVar[str] = "http"
    thread_name: ClassVar[str] = "sandbox"

    def __init__(
        self,
        *,
        seed: int = 7,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        now: datetime | None = None,
        clock: Callable[[], datetime] | None = None,
        keep_log_entries: bool = True,
    ) -> None:
        self.seed = seed
        self.host = host
        self.port = port
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self.clock = clock
        self._faults = faults if faults is not None else Faults(seed=seed)
        self._log = RequestLog(keep_entries=keep_log_entries)
        self._thread: threading.Thread | None = None

    # -- what callers see ---------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def request_log(self) -> RequestLog:
        return self._log

    @property
    def log(self) -> RequestLog:
        """Alias of :attr:`request_log`."""
        return self._log

    @property
    def faults(self) -> Faults:
        return self._faults

    @property
    def running(self) -> bool:
        return self._thread is not None

    @abstractmethod
    def stats(self) -> dict[str, Any]: ...

    @abstractmethod
    def connection_settings(self, **overrides: Any) -> dict[str, Any]: ...

    @abstractmethod
    def secrets_env(self) -> dict[str, str]: ...

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Serve from a background thread; ``url`` is final when this returns. Idempotent."""
        if self._thread is not None:
            return
        sock = bind_loopback(self.host, self.port)
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                self._serve(sock, ready)
            except BaseException as error:  # reported to start() below
                failure.append(error)
                ready.set()

        self._thread = threading.Thread(target=serve, name=self.thread_name, daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            self._thread = None
            sock.close()
            raise RuntimeError(f"the {type(self).__name__} did not start") from (failure[0] if failure else None)

    def stop(self) -> None:
        """Stop serving (idempotent); the data stays, a later :meth:`start` serves it again on the same port."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._shutdown()
            thread.join(timeout=10)

    @abstractmethod
    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        """Serve on ``sock`` until :meth:`_shutdown`; set ``ready`` once requests are accepted."""

    @abstractmethod
    def _shutdown(self) -> None:
        """Make :meth:`_serve` return."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
