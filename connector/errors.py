"""Errors named by what to do about them.

Each vendor client keeps one table that maps HTTP statuses and vendor error
codes to these classes; nothing outside the client looks at a status code.
Messages name the endpoint, status and record id, never a body or a secret.
"""

from __future__ import annotations


class CrmsyncError(Exception):
    """Base of every error this package raises on purpose."""

    vendor_message: str | None = None
    """What the CRM said about it, when it said something (set by :func:`with_vendor_message`).
    It may quote record content, so it is shown to the person at the terminal and never
    stored in the state store or logged; ``str(error)`` never holds it."""


def with_vendor_message(error: CrmsyncError, message: str | None, limit: int = 200) -> CrmsyncError:
    """``error`` carrying the first ``limit`` characters of what the CRM said (see ``vendor_message``)."""
    if message:
        error.vendor_message = message[:limit]
    return error


class ConfigError(CrmsyncError):
    """A person must fix a file, a setting or a credential; retrying will not help."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems: list[Problem] = problems or []


class AuthError(ConfigError):
    """The CRM refused the credentials (HubSpot 401, Salesforce INVALID_SESSION_ID after a refresh)."""


class NotFound(ConfigError):
    """The CRM has no such object, type or endpoint (HTTP 404, Salesforce ``NOT_FOUND`` / ``INVALID_TYPE``).

    A subclass of ``ConfigError``: when a mapping names it, a person must fix
    the mapping; a schema check asks for it and reports it as a problem.
    """


class Unreachable(ConfigError):
    """The first call of a run found no CRM at the URL: refused, unknown host or an untrusted certificate.

    Not retried: a wrong URL, a missing network route or a certificate does
    not fix itself within a run. Mid-run, refused connections are transient.
    """


class StoreError(CrmsyncError):
    """The state store cannot be opened or used (a damaged file, a server that refuses): a person must look."""


class TransientError(CrmsyncError):
    """A failure that is expected to pass: retry with backoff (5xx, reset, lock)."""


class RateLimited(TransientError):
    """The vendor's short-window limit was hit; wait ``retry_after`` seconds if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExhausted(CrmsyncError):
    """The daily or rolling allocation is used up: stop the run and say so, do not retry."""


class RecordRejected(CrmsyncError):
    """The CRM refused one record: skip it, report it, keep going."""

    def __init__(self, record_id: str, code: str, message: str) -> None:
        super().__init__(f"record {record_id} rejected: {code}: {message}")
        self.record_id = record_id
        self.code = code


class Problem:
    """One problem found in a file: where (file and key) and what."""

    __slots__ = ("file", "key", "message")

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self.file!r}, {self.key!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and (self.file, self.key, self.message) == (
            other.file,
            other.key,
            other.message,
        )

    def __hash__(self) -> int:
        return hash((self.file, self.key, self.message))
