"""The kit every sandbox CRM is built from: faults, request log, rate limits, server lifecycle.

- :mod:`~connector.sandbox.kit.faults`: one seeded fault model (429 with
  ``Retry-After`` in seconds, as an HTTP date or without it; 5xx; resets;
  slow answers; partial batch failures; record faults);
- :mod:`~connector.sandbox.kit.requestlog`: what the sandbox was asked;
- :mod:`~connector.sandbox.kit.limits`: rolling-window limits;
- :mod:`~connector.sandbox.kit.server`: the :class:`Emulator` interface and
  the :class:`LoopbackSandbox` base (start on a free loopback port, stop,
  context manager, same constructor arguments);
- :mod:`~connector.sandbox.kit.process`: either sandbox in a child process.

Nothing here knows a vendor; nothing here imports the connector beyond its core.
"""

from connector.sandbox.kit.faults import Fault, FaultKind, Faults, retry_after_header
from connector.sandbox.kit.limits import RollingLimit
from connector.sandbox.kit.process import SandboxProcess, serve_until_stopped
from connector.sandbox.kit.requestlog import LoggedRequest, RequestLog
from connector.sandbox.kit.server import Emulator, LoopbackSandbox, bind_loopback

__all__ = [
    "Emulator",
    "Fault",
    "FaultKind",
    "Faults",
    "LoggedRequest",
    "LoopbackSandbox",
    "RequestLog",
    "RollingLimit",
    "SandboxProcess",
    "bind_loopback",
    "retry_after_header",
    "serve_until_stopped",
]
