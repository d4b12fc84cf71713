"""The sandbox org's HTTP side: OAuth, REST endpoints, limits, faults, request log.

A threaded ``http.server`` on loopback, serving TLS with a throwaway CA so
that simple-salesforce (which only builds ``https://`` URLs) talks to it
unchanged. Behaviour follows the vendor (docs/salesforce.md): ``Sforce-Limit-Info`` on every
REST response, the rolling 24 h allocation ending in 403
``REQUEST_LIMIT_EXCEEDED``, 401 ``INVALID_SESSION_ID``, query locators
with ``nextRecordsUrl``, sObject collections answering HTTP 200 with
per-record results in request order.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import resource
import secrets
import socket
import ssl
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from connector.sandbox.kit import Fault, Faults, LoggedRequest, RequestLog, RollingLimit
from connector.sandbox.salesforce.org import Org, QueryResult, RecordError
from connector.sandbox.salesforce.schema import OBJECTS
from connector.sandbox.salesforce.soql import SoqlError, parse

log = logging.getLogger(__name__)

_DAY = 86_400.0
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class SandboxLimits:
    """The org's limits; every number is adjustable, defaults as on a real org."""

    daily_api_requests: int = 100_000
    """Rolling 24 h allocation of REST calls (the OAuth token endpoint does not count)."""
    page_size: int = 2_000
    """Records per query page (``Sforce-Query-Options: batchSize`` may ask for fewer)."""
    collection_max: int = 200
    """Records per sObject collections call."""
    max_cursors: int = 10
    """Open query locators per org; the oldest is dropped past it (``INVALID_QUERY_LOCATOR``)."""


class Allocation:
    """The rolling 24 h API allocation, counted per minute."""

    def __init__(self, limits: SandboxLimits, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self._window = RollingLimit(limits.daily_api_requests, _DAY, slot=60, clock=clock)
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        with self._lock:
            return self._window.used

    @property
    def total(self) -> int:
        return self.limits.daily_api_requests

    def take(self) -> bool:
        """Count one call; ``False`` (and nothing counted) when the allocation is used up."""
        with self._lock:
            self._window.limit = self.limits.daily_api_requests  # a test may change the org's limit
            return self._window.take() is None

    def set_used(self, used: int) -> None:
        """Pretend ``used`` calls were made in the last minute (tests of the quota stop)."""
        with self._lock:
            self._window.set_used(used)


@dataclass
class Credentials:
    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str
    refresh_tokens: set[str] = field(default_factory=set)
    """Refresh tokens the org honours (``revoke_refresh_tokens`` empties it, as an admin's revoke does)."""
    certificate_key: Any = None
    """The connected app's certificate as a public key (verifies JWT assertions); ``None``: no JWT grant."""


class _Reply(Exception):
    """An error answer, raised from deep inside a handler."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, [{"message": message, "errorCode": code}])


@dataclass
class OrgService:
    """Everything the handler needs; shared by all request threads."""

    org: Org
    credentials: Credentials
    limits: SandboxLimits
    faults: Faults
    log: RequestLog
    allocation: Allocation
    instance_url: str = ""
    sessions: set[str] = field(default_factory=set)
    cursors: OrderedDict[str, QueryResult] = field(default_factory=OrderedDict)
    cursor_number: int = 0

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint and status, API usage, records held (also ``GET /_sandbox/stats``)."""
        return {
            "requests": self.log.snapshot(),
            "api_usage": {"used": self.allocation.used, "total": self.allocation.total},
            "records": {name: self.org.count(name) for name in self.org.tables},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

    # -- OAuth ---------------------------------------------------------------
    def token(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
        grant = form.get("grant_type")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
            except ValueError:
                raise _Reply(
                    400, {"error": "invalid_client", "error_description": "invalid client credentials"}
                ) from None
            client_id, _, client_secret = decoded.partition(":")
        creds = self.credentials
        if grant == JWT_GRANT:
            self._check_assertion(form.get("assertion") or "")
            return self._issue()
        if grant == "refresh_token":
            if client_id != creds.client_id:
                raise _Reply(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
            if client_secret is not None and not secrets.compare_digest(client_secret, creds.client_secret):
                raise _Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
            if form.get("refresh_token") not in creds.refresh_tokens:
                raise _Reply(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
            return self._issue()
        if grant not in ("password", "client_credentials"):
            raise _Reply(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        if client_id != creds.client_id:
            raise _Reply(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
        if not client_secret or not secrets.compare_digest(client_secret, creds.client_secret):
            raise _Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        if grant == "password":
            password = form.get("password") or ""
            accepted = (creds.password, creds.password + creds.security_token)
            if form.get("username") != creds.username or password not in accepted:
                raise _Reply(400, {"error": "invalid_grant", "error_description": "authentication failure"})
        return self._issue()

    def _check_assertion(self, assertion: str) -> None:
        """Verify a JWT bearer assertion as Salesforce does: RS256 by the app's certificate, iss, aud, sub, exp."""

        def refuse(description: str) -> _Reply:
            return _Reply(400, {"error": "invalid_grant", "error_description": description})

        creds = self.credentials
        if creds.certificate_key is None:
            raise _Reply(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        claims = verify_rs256(assertion, creds.certificate_key)
        if claims is None:
            raise refuse("invalid assertion")
        if claims.get("iss") != creds.client_id:
            raise _Reply(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
        if str(claims.get("aud", "")).rstrip("/") not in (self.instance_url, "https://login.salesforce.com"):
            raise refuse("audience is invalid")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= time.time():
            raise refuse("expired authorization code")  # Salesforce's words for an expired assertion
        if claims.get("sub") != creds.username:
            raise refuse("user hasn't approved this consumer")

    def _issue(self) -> dict[str, Any]:
        access_token = "00D5g0000000001!" + secrets.token_urlsafe(48)
        self.sessions.add(access_token)
        return {
            "access_token": access_token,
            "instance_url": self.instance_url,
            "id": f"{self.instance_url}/id/00D5g0000000001EAA/0055g0000000001AAA",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
        }

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def revoke_refresh_tokens(self) -> None:
        self.credentials.refresh_tokens.clear()

    # -- REST ----------------------------------------------------------------
    def query(self, version: str, soql: str, batch: int | None, kind: str = "query") -> dict[str, Any]:
        """``kind`` ``queryAll`` also returns deleted rows (``IsDeleted = true``, merged ones with ``MasterRecordId``)."""
        try:
            plan = parse(soql)
            with self.org.lock:
                result = self.org.run(plan, version, include_deleted=kind == "queryAll")
        except SoqlError as error:
            raise _error(400, error.code, str(error)) from None
        if batch:
            result.extra["batch"] = batch
        return self._page(version, result, None, kind)

    def query_more(self, version: str, locator: str, kind: str = "query") -> dict[str, Any]:
        """The page at ``locator``: the same locator read twice (a retry of a lost page) answers the same page."""
        cursor_id, _, position = locator.partition("-")
        result = self.cursors.get(cursor_id)
        if result is None or not position.isdigit() or int(position) > len(result.rows):
            raise _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        result.position = int(position)
        return self._page(version, result, cursor_id, kind)

    def _page(self, version: str, result: QueryResult, cursor_id: str | None, kind: str) -> dict[str, Any]:
        size = min(self.limits.page_size, int(result.extra.get("batch") or self.limits.page_size))
        start = result.position
        chunk = result.rows[start : start + size]
        with self.org.lock:
            records = [result.render(row, version) for row in chunk]
        result.position = start + len(chunk)
        page: dict[str, Any] = {"totalSize": len(result.rows), "done": result.position >= len(result.rows)}
        if page["done"]:
            if cursor_id is not None:  # kept for a re-read of its last page, first in line to be dropped
                self.cursors.move_to_end(cursor_id, last=False)
        else:
            if cursor_id is None:
                self.cursor_number += 1
                cursor_id = f"01g5g{self.cursor_number:010d}AAA"
                self.cursors[cursor_id] = result
                while len(self.cursors) > self.limits.max_cursors:
                    self.cursors.popitem(last=False)
            page["nextRecordsUrl"] = f"/services/data/v{version}/{kind}/{cursor_id}-{result.position}"
        page["records"] = records
        return page

    def describe(self, sobject: str) -> dict[str, Any]:
        fields = OBJECTS.get(sobject) or next((f for n, f in OBJECTS.items() if n.lower() == sobject.lower()), None)
        if fields is None:
            raise _error(404, "NOT_FOUND", f"The requested resource does not exist (sObject type '{sobject}')")
        name = next(n for n, f in OBJECTS.items() if f is fields)
        return {
            "name": name,
            "label": name,
            "custom": False,
            "queryable": True,
            "updateable": True,
            "fields": [f.describe() for f in fields],
        }

    def global_describe(self) -> dict[str, Any]:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": self.limits.collection_max,
            "sobjects": [{"name": name, "label": name, "queryable": True, "updateable": True} for name in OBJECTS],
        }

    def limits_body(self) -> dict[str, Any]:
        """The keys an org's ``/limits`` answers with (clients read the few they need); only API requests move."""
        used = self.allocation.used
        total = self.allocation.total
        body = {name: {"Max": most, "Remaining": most} for name, most in _OTHER_LIMITS.items()}
        body["DailyApiRequests"] = {"Max": total, "Remaining": max(0, total - used)}
        return dict(sorted(body.items()))

    def record(self, version: str, sobject: str, record_id: str) -> dict[str, Any]:
        with self.org.lock:
            if sobject not in self.org.tables:
                raise _error(404, "NOT_FOUND", "The requested resource does not exist")
            values = self.org.get(sobject, record_id)
        if values is None:
            raise _error(404, "NOT_FOUND", "The requested resource does not exist")
        if values.get("IsDeleted"):
            raise _error(404, "ENTITY_IS_DELETED", "entity is deleted")
        url = f"/services/data/v{version}/sobjects/{sobject}/{record_id}"
        return {"attributes": {"type": sobject, "url": url}, **values}

    def collections_update(self, body: Any, partial: Fault | None = None) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise _error(400, "JSON_PARSER_ERROR", "records: expected an array of sObjects")
        records: list[Any] = body["records"]
        all_or_none = bool(body.get("allOrNone", False))
        if len(records) > self.limits.collection_max:
            raise _error(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {self.limits.collection_max} records into this call",
            )
        ids = [str(item.get("id") or item.get("Id") or "") for item in records if isinstance(item, dict)]
        rejected = {i: partial.category for i in self.faults.rejected(partial, ids)} if partial is not None else {}
        checked: list[tuple[str | None, str | None, dict[str, Any], RecordError | None]] = []
        with self.org.lock:
            for item in records:
                if not isinstance(item, dict):
                    raise _error(400, "JSON_PARSER_ERROR", "each record must be an object")
                attributes = item.get("attributes") or {}
                sobject = attributes.get("type") if isinstance(attributes, dict) else None
                record_id = item.get("id") or item.get("Id")
                values = {k: v for k, v in item.items() if k not in ("attributes", "id", "Id")}
                problem: RecordError | None
                if not sobject:
                    problem = RecordError("INVALID_TYPE", "No type was specified in attributes")
                elif not record_id:
                    problem = RecordError("MISSING_ARGUMENT", "Id not specified in an update call")
                else:
                    problem = self.org.check_update(sobject, str(record_id), values)
                    if problem is None:
                        problem = self._injected(str(record_id), rejected)
                checked.append((sobject, record_id, values, problem))
            failed = any(problem is not None for *_, problem in checked)
            stamp = self.org.now_stamp()
            results: list[dict[str, Any]] = []
            for sobject, record_id, values, problem in checked:
                if problem is not None:
                    results.append({"id": record_id, "success": False, "errors": [problem.as_json()]})
                elif all_or_none and failed:
                    rolled_back = RecordError(
                        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    )
                    results.append({"id": record_id, "success": False, "errors": [rolled_back.as_json()]})
                else:
                    assert sobject is not None and record_id is not None
                    self.org.apply_update(sobject, str(record_id), values, stamp)
                    results.append({"id": record_id, "success": True, "errors": []})
        return results

    def _injected(self, record_id: str, rejected: dict[str, str]) -> RecordError | None:
        """A record fault armed on ``record_id`` or a ``partial`` fault's rejection, in Salesforce's words."""
        category = self.faults.record_fault(record_id) or rejected.get(record_id)
        if category is None:
            return None
        code, message = _RECORD_ERRORS.get(category, (category, "the record was rejected"))
        return RecordError(code, message.format(record_id=record_id))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _note: Callable[[int], None]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def date_time_string(self, timestamp: float | None = None) -> str:
        # the Date header on the org's clock, as a real org's (the client anchors its lookback on it)
        return format_datetime(self.server.service.org.now(), usegmt=True)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, limit_info: bool = True) -> None:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        self._note(status)  # logged before the answer leaves, so a caller reading the log after its call sees it
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        if limit_info:
            allocation = self.server.service.allocation
            self.send_header("Sforce-Limit-Info", f"api-usage={allocation.used}/{allocation.total}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        # RST instead of FIN: the client sees "connection reset by peer"
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.request.close()

    def _serve(self, method: str) -> None:
        started = time.perf_counter()
        service = self.server.service
        split = urlsplit(self.path)
        path = split.path.rstrip("/")
        endpoint, status = "unknown", 500
        fault_name: str | None = None
        partial: Fault | None = None
        body = self._body()
        logged = False

        def note(answered: int) -> None:
            nonlocal logged
            if not logged:
                logged = True
                seconds = time.perf_counter() - started
                service.log.add(LoggedRequest(endpoint, method, answered, split.path, fault_name, seconds))

        self._note = note
        try:
            if path.startswith("/_sandbox"):
                endpoint = "_sandbox"
                status, answer = 200, self._admin(method, path, body)
                self._send(status, answer, limit_info=False)
                return
            endpoint = _endpoint(method, path)
            fault = service.faults.take(endpoint)
            effect = fault.effect if fault is not None else None
            if fault is not None and effect == "reset":
                status = 0
                fault_name = "reset"
                self._reset()
                return
            if fault is not None and effect == "slow":
                fault_name = "slow"
                time.sleep(fault.delay)
            elif fault is not None and effect in ("rate_limit", "server_error"):
                fault_name = effect
                raise _fault_reply(fault, endpoint)
            elif fault is not None and effect == "partial":
                fault_name = "partial"
                partial = fault
            if endpoint == "oauth/token":
                if method != "POST":
                    raise _error(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed")
                form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                status, answer = 200, service.token(form, self.headers.get("Authorization"))
                self._send(status, answer, limit_info=False)
                return
            if endpoint == "versions":
                if method != "GET":
                    raise _error(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed")
                status, answer = 200, API_VERSIONS
                self._send(status, answer, limit_info=False)
                return
            if endpoint == "bulk1":
                # Bulk API 1.0 logs in with X-SFDC-Session and answers in its own shape
                if (self.headers.get("X-SFDC-Session") or "") not in service.sessions:
                    raise _Reply(401, {"exceptionCode": "InvalidSessionId", "exceptionMessage": "Invalid session id"})
                message = "Bulk API is not enabled for this Organization"
                raise _Reply(400, {"exceptionCode": "FeatureNotEnabled", "exceptionMessage": message})
            self._authorise()
            if not service.allocation.take():
                raise _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            status, answer = 200, self._rest(method, path, split.query, body, partial)
            self._send(status, answer)
        except _Reply as reply:
            status = reply.status
            self._send(reply.status, reply.body, reply.headers, limit_info=endpoint != "oauth/token")
        except (ConnectionError, ssl.SSLError, TimeoutError):
            status = 0
            self.close_connection = True
        except Exception:  # a sandbox bug must show up as a 500, like an org's UNKNOWN_EXCEPTION
            log.exception("sandbox request failed")
            status = 500
            self._send(500, [{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}])
        finally:
            note(status)

    def _authorise(self) -> None:
        header = self.headers.get("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else header.removeprefix("OAuth ")
        if not token or token not in self.server.service.sessions:
            raise _error(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def _rest(self, method: str, path: str, query: str, body: bytes, partial: Fault | None) -> Any:
        service = self.server.service
        parts = path.split("/")
        # /services/data/vNN.N/...
        if len(parts) < 4 or parts[1:3] != ["services", "data"]:
            raise _error(404, "NOT_FOUND", "The requested resource does not exist")
        version = parts[3].removeprefix("v")
        rest = parts[4:]
        match (method, rest):
            case ("GET", []):
                base = f"/services/data/v{version}"
                names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
                return {name: f"{base}/{name}" for name in names}
            case ("GET", [("query" | "queryAll") as kind]):
                params = parse_qs(query)
                soql = params.get("q", [""])[0]
                if not soql:
                    raise _error(400, "MALFORMED_QUERY", "missing query")
                return service.query(version, soql, _batch_size(self.headers.get("Sforce-Query-Options")), kind)
            case ("GET", [("query" | "queryAll") as kind, locator]):
                return service.query_more(version, unquote(locator), kind)
            case (_, ["jobs", ("ingest" | "query"), *_]):
                # an org without Bulk API 2.0 (the sandbox models none): what such an org answers
                raise _error(400, "FeatureNotEnabled", "Bulk API 2.0 isn't enabled for this organization.")
            case ("GET", ["sobjects"]):
                return service.global_describe()
            case ("GET", ["sobjects", sobject, "describe"]):
                return service.describe(sobject)
            case ("GET", ["sobjects", sobject, record_id]):
                return service.record(version, sobject, record_id)
            case ("GET", ["limits"]):
                return service.limits_body()
            case ("PATCH", ["composite", "sobjects"]):
                try:
                    payload = json.loads(body or b"null")
                except ValueError:
                    raise _error(400, "JSON_PARSER_ERROR", "body is not JSON") from None
                return service.collections_update(payload, partial)
        raise _error(404, "NOT_FOUND", "The requested resource does not exist")

    def _admin(self, method: str, path: str, body: bytes) -> Any:
        service = self.server.service
        if path == "/_sandbox/stats" and method == "GET":
            return service.stats()
        if path == "/_sandbox/faults" and method == "POST":
            service.faults.add(Fault(**json.loads(body or b"{}")))
            return {"pending": service.faults.pending}
        if path == "/_sandbox/reset-log" and method == "POST":
            service.log.clear()
            return {}
        raise _Reply(404, {"error": "unknown sandbox endpoint"})


_OTHER_LIMITS: dict[str, int] = {
    "ActiveScratchOrgs": 3,
    "ConcurrentAsyncGetReportInstances": 200,
    "ConcurrentSyncReportRuns": 20,
    "DailyAnalyticsDataflowJobExecutions": 60,
    "DailyAsyncApexExecutions": 250_000,
    "DailyAsyncApexTests": 500,
    "DailyBulkApiBatches": 15_000,
    "DailyBulkV2QueryFileStorageMB": 976_562,
    "DailyBulkV2QueryJobs": 10_000,
    "DailyDurableGenericStreamingApiEvents": 10_000,
    "DailyDurableStreamingApiEvents": 10_000,
    "DailyFunctionsApiCallLimit": 235_000,
    "DailyGenericStreamingApiEvents": 10_000,
    "DailyStandardVolumePlatformEvents": 10_000,
    "DailyStreamingApiEvents": 10_000,
    "DailyWorkflowEmails": 1_000,
    "DataStorageMB": 5_120,
    "FileStorageMB": 20_480,
    "HourlyAsyncReportRuns": 1_200,
    "HourlyDashboardRefreshes": 200,
    "HourlyDashboardResults": 5_000,
    "HourlyDashboardStatuses": 999_999_999,
    "HourlyODataCallout": 10_000,
    "HourlyPublishedPlatformEvents": 50_000,
    "HourlyPublishedStandardVolumePlatformEvents": 50_000,
    "HourlySyncReportRuns": 500,
    "HourlyTimeBasedWorkflow": 50,
    "MassEmail": 5_000,
    "MonthlyPlatformEventsUsageEntitlement": 3_000_000,
    "Package2VersionCreates": 6,
    "PermissionSets": 1_500,
    "PrivateConnectOutboundCalloutHourlyLimitMB": 0,
    "SingleEmail": 5_000,
    "StreamingApiConcurrentClients": 2_000,
}
"""The other ``/limits`` keys with an Enterprise org's usual maxima (nothing in the sandbox uses them up)."""

API_VERSIONS: list[dict[str, str]] = [
    {"label": label, "url": f"/services/data/v{version}", "version": version}
    for label, version in (
        ("Winter '24", "59.0"),
        ("Spring '24", "60.0"),
        ("Summer '24", "61.0"),
        ("Winter '25", "62.0"),
        ("Spring '25", "63.0"),
        ("Summer '25", "64.0"),
    )
]
"""``GET /services/data/``: the versions the org serves, oldest first (no session needed)."""

_RECORD_ERRORS: dict[str, tuple[str, str]] = {
    "UNABLE_TO_LOCK_ROW": (
        "UNABLE_TO_LOCK_ROW",
        "unable to obtain exclusive access to this record or 1 records: {record_id}",
    ),
    "OBJECT_NOT_FOUND": ("ENTITY_IS_DELETED", "entity is deleted"),
    "VALIDATION_ERROR": ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "the record failed a validation rule"),
}
"""The kit's record-fault categories in Salesforce's error codes."""


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_rs256(token: str, public_key: Any) -> dict[str, Any] | None:
    """The claims of a compact JWS signed RS256 by ``public_key``'s private half; ``None`` if it is not one."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64url(parts[0]))
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return None
        public_key.verify(_b64url(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        claims = json.loads(_b64url(parts[1]))
    except (ValueError, InvalidSignature):
        return None
    return claims if isinstance(claims, dict) else None


def _fault_reply(fault: Fault, endpoint: str) -> _Reply:
    """A ``rate_limit`` or ``server_error`` fault as the org would answer it."""
    status = 429 if fault.effect == "rate_limit" else fault.status
    if endpoint == "oauth/token":  # the OAuth endpoint answers in its own shape, even when it fails
        return _Reply(status, {"error": "unknown_error", "error_description": "retry your request"})
    if fault.effect == "rate_limit" and fault.policy == "DAILY":
        return _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    if fault.effect == "rate_limit":
        body = [{"message": "Too many requests", "errorCode": "TOO_MANY_REQUESTS"}]
        return _Reply(429, body, fault.retry_after_header())
    code = "SERVER_UNAVAILABLE" if status == 503 else "UNKNOWN_EXCEPTION"
    return _error(status, code, "An unexpected error occurred. Please try again.")


def _endpoint(method: str, path: str) -> str:
    """A short name for the request log: ``query``, ``query_more``, ``composite/sobjects``..."""
    if path == "/services/oauth2/token":
        return "oauth/token"
    if path.startswith("/services/async/"):
        return "bulk1"
    if path == "/services/data":
        return "versions"
    parts = path.split("/")[4:]
    if not parts:
        return "version"
    if parts[0] in ("query", "queryAll"):
        return parts[0] if len(parts) == 1 else f"{parts[0]}_more"
    if parts[0] == "sobjects":
        if len(parts) == 3 and parts[2] == "describe":
            return "describe"
        return "sobjects" if len(parts) == 1 else "sobject"
    return "/".join(parts[:2])


def _batch_size(header: str | None) -> int | None:
    if not header:
        return None
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(200, min(2000, int(value)))
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, sock: socket.socket, service: OrgService, context: ssl.SSLContext | None) -> None:
        """Serve on ``sock``, already bound (the kit picks the port)."""
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.server_activate()
        self.service = service
        self.ssl_context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # no Nagle: headers and body leave at once (else a 40 ms delayed-ACK stall per response)
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # the TLS handshake runs in the request's thread, not the accept loop
        if self.ssl_context is not None:
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("sandbox connection error from %s", client_address)
