"""The HubSpot sandbox's HTTP layer: a plain ASGI app served by uvicorn.

It answers the endpoints the connector uses with HubSpot's shapes,
statuses, error bodies and headers (docs/hubspot.md): bearer auth with
HubSpot's 401 body; rate limits with ``X-HubSpot-RateLimit-*`` headers and
429 bodies; list pages of 100 with inline associations; search with filter
groups, sorts, ``limit`` up to 200 and the 10,000-result cap (HTTP 400 past
it); batch read and update capped at 100 inputs, 200 vs 207 with errors
matched by id; the backwards ``lifecyclestage`` rule; associations v4
batch read; properties; forms and form submissions (50 a page, newest
first). A raw ASGI app rather than a framework, so that a fault can drop
the connection mid-response and so each request costs little.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import resource
from array import array
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from connector.sandbox.hubspot.conformance import canonical_path, missing_scopes_body
from connector.sandbox.hubspot.engagement import PORTAL_ID
from connector.sandbox.hubspot.limits import Limits, RateLimiter
from connector.sandbox.hubspot.store import (
    ASSOCIATION_TYPE,
    COMPANY_ID_BASE,
    COMPANY_PRIMARY_CONTACT,
    COMPANY_UNLABELED_CONTACT,
    FORMS,
    LIFECYCLE_ORDER,
    OBJECT_TITLE,
    PRIMARY_COMPANY,
    UNLABELED_COMPANY,
    Engagements,
    PropertyDef,
    Store,
    iso,
)
from connector.sandbox.kit import Fault, Faults, LoggedRequest, RequestLog, retry_after_header

log = logging.getLogger(__name__)

Json = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

LIST_MAX = 100
SEARCH_MAX = 200
BATCH_MAX = 100
ASSOCIATION_BATCH_MAX = 1000
FORM_PAGE_MAX = 50
LIFECYCLE_RANK = {value: rank for rank, value in enumerate(LIFECYCLE_ORDER)}
CONTACT_DEFAULTS = ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id")
COMPANY_DEFAULTS = ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id")
ENGAGEMENT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
OBJECTS = ("contacts", "meetings", "emails", "calls")
FORMS_CREATED_MS = 1_736_154_000_000
"""2025-01-06T09:00:00Z, when the sandbox's forms and properties were "created" (the v3 bodies say the same)."""


class HttpError(Exception):
    """An error response with HubSpot's error body."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    endpoint: str
    """Request-log name; ``{0}`` is replaced by the first path group."""
    handler: str
    search: bool = False


def _route(method: str, path: str, endpoint: str, handler: str, search: bool = False) -> Route:
    return Route(method, re.compile("^" + path + "$"), endpoint, handler, search)


ROUTES: tuple[Route, ...] = (
    _route("GET", r"/crm/v3/objects/(contacts|companies|meetings|emails|calls)", "{0}.list", "list_objects"),
    _route("POST", r"/crm/v3/objects/(contacts|companies|meetings|emails|calls)/search", "{0}.search", "search", True),
    _route("POST", r"/crm/v3/objects/(contacts|companies)/batch/read", "{0}.batch_read", "batch_read"),
    _route(
        "POST",
        r"/crm/v4/associations/contacts/companies/batch/read",
        "associations.batch_read",
        "company_associations",
    ),
    _route(
        "POST",
        r"/crm/v4/associations/companies/contacts/batch/read",
        "associations.batch_read",
        "company_contacts",
    ),
    _route(
        "POST",
        r"/crm/v4/associations/contacts/contacts/batch/read",
        "associations.batch_read",
        "contact_contacts",
    ),
    _route("GET", r"/crm/v3/objects/(contacts)/([^/]+)", "{0}.get", "get_object"),
    _route("GET", r"/crm/v3/schemas/?", "schemas.list", "list_schemas"),
    _route("GET", r"/email/public/v1/events/?", "email.events", "email_events"),
    _route("GET", r"/marketing/v3/marketing-events/?", "marketing_events.list", "marketing_events"),
    _route(
        "GET",
        r"/marketing/v3/marketing-events/participations/([^/]+)/([^/]+)/breakdown",
        "marketing_events.participations",
        "participations",
    ),
    _route("POST", r"/crm/v3/objects/(contacts)/batch/update", "{0}.batch_update", "batch_update"),
    _route("POST", r"/crm/v3/objects/(contacts)/merge", "{0}.merge", "merge"),
    _route(
        "POST",
        r"/crm/v4/associations/(meetings|emails|calls)/contacts/batch/read",
        "associations.batch_read",
        "associations",
    ),
    _route(
        "GET", r"/crm/v3/properties/(contacts|companies|meetings|emails|calls)", "properties.list", "list_properties"
    ),
    _route("GET", r"/crm/v3/properties/(contacts)/([A-Za-z0-9_]+)", "properties.get", "get_property"),
    _route("POST", r"/crm/v3/properties/(contacts)", "properties.create", "create_property"),
    _route("GET", r"/marketing/v3/forms/?", "forms.list", "list_forms"),
    # the legacy APIs outside clients still read (Airbyte's HubSpot source checks its login with the first,
    # Singer's tap-hubspot finds the forms whose submissions it reads with the second); portals still answer both
    _route(
        "GET",
        r"/properties/v[12]/(contacts?|compan(?:y|ies)|meetings|emails|calls)/properties/?",
        "properties.list_legacy",
        "list_legacy_properties",
    ),
    _route("GET", r"/forms/v2/forms/?", "forms.list_legacy", "list_legacy_forms"),
    _route("GET", r"/form-integrations/v1/submissions/forms/([0-9a-fA-F-]+)", "forms.submissions", "submissions"),
)


class HubSpotApp:
    """The ASGI application. State lives in ``store``; ``faults``, ``limits`` and ``log`` steer and record it."""

    def __init__(self, store: Store, *, token: str, limits: Limits, faults: Faults, log: RequestLog) -> None:
        self.store = store
        self.token = token
        self.limits = limits
        self.limiter = RateLimiter(limits)
        self.faults = faults
        self.log = log
        self._correlation = 0
        self._search_cache: OrderedDict[tuple[Any, ...], array[int]] = OrderedDict()

    # -- ASGI --------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":  # pragma: no cover
            return
        method: str = scope["method"]
        path: str = canonical_path(scope["path"])  # contact, 0-1, company, 0-2... as the plural names
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if path.startswith("/_sandbox/"):
            await self._admin(method, path, body, send)
            return
        route, groups = self._match(method, path)
        endpoint = route.endpoint.format(*groups) if route else f"unknown {method} {path}"
        archived = b"archived=true" in scope.get("query_string", b"").lower()
        if route is not None and route.handler == "list_objects" and archived:
            endpoint += "_archived"  # the archived list: logged apart (``contacts.list_archived``)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, payload, extra_headers, fault_name = await self._respond(route, groups, scope, headers, body, endpoint)
        if fault_name == "reset":
            self.log.add(LoggedRequest(endpoint, method, 0, path, "reset"))
            # a response cut short: HubSpot's edge dropping the connection looks like this to urllib3
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"results": [', "more_body": True})
            return
        data = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""
        raw_headers = [
            (b"content-type", b"application/json;charset=utf-8"),
            (b"content-length", str(len(data)).encode()),
        ]
        raw_headers += [(k.encode(), v.encode()) for k, v in extra_headers.items()]
        # logged before the response goes out, so a test reading the log after its call sees it
        self.log.add(LoggedRequest(endpoint, method, status, path, fault_name))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": data})

    def stats(self) -> Json:
        """Requests per endpoint and status, API usage, records held (also ``GET /_sandbox/stats``)."""
        store = self.store
        with store.lock:
            records = {"contacts": store.contact_count, **{n: len(e) for n, e in store.engagements.items()}}
            records["form_submissions"] = sum(len(f.items) for f in store.forms.values())
        return {
            "requests": self.log.snapshot(),
            "api_usage": {"used": self.limiter.daily_used, "total": self.limits.daily},
            "records": records,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

    async def _admin(self, method: str, path: str, body: bytes, send: Send) -> None:
        """The sandbox's own endpoints (not HubSpot's): stats, reset the log, arm a fault; no auth, loopback only."""
        status, payload = 200, None
        if path == "/_sandbox/stats" and method == "GET":
            payload = self.stats()
        elif path == "/_sandbox/reset-log" and method == "POST":
            self.log.clear()
            payload = {}
        elif path == "/_sandbox/faults" and method == "POST":
            spec = json.loads(body or b"{}")
            self.faults.add(Fault(**spec))
            payload = {"pending": self.faults.pending}
        else:
            status, payload = 404, {"error": "unknown sandbox endpoint"}
        data = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def _match(self, method: str, path: str) -> tuple[Route | None, tuple[str, ...]]:
        for route in ROUTES:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found:
                return route, found.groups()
        return None, ()

    async def _respond(
        self,
        route: Route | None,
        groups: tuple[str, ...],
        scope: Scope,
        headers: dict[str, str],
        body: bytes,
        endpoint: str,
    ) -> tuple[int, Json | None, dict[str, str], str | None]:
        self._correlation += 1
        correlation = f"00000000-0000-4000-8000-{self._correlation:012d}"
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            return (
                401,
                _error_body(
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    correlation,
                ),
                {},
                "auth",
            )
        verdict = self.limiter.admit(search=bool(route and route.search))
        rate_headers = self._rate_headers(verdict.burst_remaining, verdict.daily_used)
        if verdict.policy is not None:
            retry = verdict.retry_after if self.limits.send_retry_after and verdict.policy != "DAILY" else None
            return (
                429,
                _rate_body(verdict.policy, correlation),
                rate_headers | retry_after_header(retry),
                verdict.policy,
            )
        fault = self.faults.take(endpoint)
        effect = fault.effect if fault is not None else None
        if fault is not None and effect == "slow":
            await asyncio.sleep(fault.delay)
        if effect == "reset":
            return 0, None, {}, "reset"
        if fault is not None and effect == "rate_limit":
            return 429, _rate_body(fault.policy, correlation), rate_headers | fault.retry_after_header(), "rate_limit"
        if fault is not None and effect == "server_error":
            return (
                fault.status,
                _error_body("INTERNAL_ERROR", "Internal error", correlation),
                rate_headers,
                "server_error",
            )
        partial = fault if effect == "partial" else None
        if route is None:
            # a portal answers an API this token has no scope for with 403, not 404: outside clients skip it on that
            return 403, missing_scopes_body(str(scope["path"]), correlation), rate_headers, None
        query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        try:
            request = json.loads(body) if body else {}
            handler = getattr(self, route.handler)
            with self.store.lock:
                status, payload = handler(*groups, query=query, body=request, partial=partial)
        except HttpError as error:
            return (
                error.status,
                _error_body(error.category, error.message, correlation, **error.extra),
                rate_headers,
                ("partial" if partial else None),
            )
        except json.JSONDecodeError:
            return 400, _error_body("VALIDATION_ERROR", "Invalid input JSON", correlation), rate_headers, None
        return status, payload, rate_headers, "partial" if partial else None

    def _rate_headers(self, burst_remaining: int | None, daily_used: int) -> dict[str, str]:
        # unpaced (a limit off), the headers still come, with the default limits: clients read them on every call
        defaults = Limits()
        daily = self.limits.daily if self.limits.daily is not None else defaults.daily
        assert daily is not None and defaults.burst is not None
        burst = self.limits.burst if self.limits.burst is not None else defaults.burst
        if self.limits.burst is None:
            burst_remaining = burst - 1
        return {
            "X-HubSpot-RateLimit-Daily": str(daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(daily - daily_used, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.limits.burst_window_seconds * 1000)),
            "X-HubSpot-RateLimit-Max": str(burst),
            "X-HubSpot-RateLimit-Remaining": str(burst_remaining if burst_remaining is not None else 0),
        }

    # -- objects: reading ---------------------------------------------------------
    def _view(self, name: str) -> ObjectView:
        if name == "contacts":
            return ContactView(self.store)
        if name == "companies":
            return CompanyView(self.store)
        return EngagementView(self.store, self.store.engagements[name])

    def list_objects(
        self, name: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        view = self._view(name)
        limit = min(_int(query.get("limit", ["10"])[0], "limit"), LIST_MAX)
        after = _int(query.get("after", ["0"])[0] or "0", "after")
        properties = _names(query.get("properties", []))
        associations = _names(query.get("associations", []))
        start = view.index_of(after) if after else 0
        if start is None:
            start = view.first_index_after(after)
        archived = query.get("archived", ["false"])[0].lower() == "true"
        gone = self.store.archived if name == "contacts" else {}
        if not gone and not archived:
            stop = min(start + max(limit, 1), view.count)
            results = [view.record(i, properties, associations) for i in range(start, stop)]
        else:
            # archived contacts are listed only with archived=true (and then only they, with archivedAt)
            results, stop = [], start
            while stop < view.count and len(results) < max(limit, 1):
                if (stop in gone) == archived:
                    record = view.record(stop, properties, associations)
                    if archived:
                        record.update(archived=True, archivedAt=iso(gone[stop]))
                    results.append(record)
                stop += 1
            while stop < view.count and (stop in gone) != archived:
                stop += 1
        page: Json = {"results": results}
        if stop < view.count:
            nxt = str(view.id_of(stop))
            page["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return 200, page

    def merge(self, name: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None) -> tuple[int, Json]:
        """``POST /crm/v3/objects/contacts/merge``: the primary keeps its id; the other is archived."""
        view = ContactView(self.store)
        ids = [str(body.get(key) or "") for key in ("primaryObjectId", "objectIdToMerge")]
        found = [view.index_of(int(raw)) if raw.isdigit() else None for raw in ids]
        if found[0] is None or found[1] is None:
            raise HttpError(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
        if found[0] == found[1]:
            raise HttpError(400, "VALIDATION_ERROR", "Cannot merge an object with itself")
        self.store.merge(found[0], found[1])
        return 200, view.record(found[0], [], [])

    def search(self, name: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None) -> tuple[int, Json]:
        view = self._view(name)
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 1 or limit > SEARCH_MAX:
            raise HttpError(400, "VALIDATION_ERROR", f"limit must be between 1 and {SEARCH_MAX}")
        after = _int(str(body.get("after") or "0"), "after")
        cap = self.limits.search_result_cap
        if after >= cap:
            raise HttpError(
                400,
                "VALIDATION_ERROR",
                f"There was a problem with the request: paging past {cap} results is not supported",
            )
        groups = body.get("filterGroups") or []
        if body.get("filters"):
            # top-level filters are ANDed, with each filter group's when there are groups too
            top = list(body["filters"])
            groups = [{"filters": [*g.get("filters", []), *top]} for g in groups] or [{"filters": top}]
        if len(groups) > 5 or any(len(g.get("filters", [])) > 6 for g in groups):
            raise HttpError(400, "VALIDATION_ERROR", "Too many filter groups or filters")
        sorts = body.get("sorts") or []
        matches = self._search_matches(name, view, groups, sorts)
        properties = list(body.get("properties") or [])
        stop = min(after + limit, len(matches), cap)
        results = [view.record(matches[i], properties, []) for i in range(after, stop)]
        page: Json = {"total": len(matches), "results": results}
        if stop < len(matches):
            page["paging"] = {"next": {"after": str(stop)}}
        return 200, page

    def _search_matches(self, name: str, view: ObjectView, groups: list[Json], sorts: list[Any]) -> array[int]:
        key = (name, self.store.version, json.dumps(groups, sort_keys=True), json.dumps(sorts, sort_keys=True))
        cached = self._search_cache.get(key)
        if cached is not None:
            return cached
        compiled = [[_compile_filter(f, view) for f in g.get("filters", [])] for g in groups]
        gone = self.store.archived if name == "contacts" else {}
        if compiled:
            found = array(
                "l",
                (i for i in range(view.count) if i not in gone and any(all(t(i) for t in g) for g in compiled)),
            )
        else:
            found = array("l", (i for i in range(view.count) if i not in gone))
        if sorts:
            sort = sorts[0]
            prop, direction = (
                (sort, "ASCENDING")
                if isinstance(sort, str)
                else (sort.get("propertyName", "hs_object_id"), sort.get("direction", "ASCENDING"))
            )
            values = view.sort_column(prop)
            order = sorted(
                found,
                key=lambda i: (values(i) is None, values(i) or 0, view.id_of(i)),
                reverse=direction == "DESCENDING",
            )
            found = array("l", order)
        self._search_cache[key] = found
        while len(self._search_cache) > 8:
            self._search_cache.popitem(last=False)
        return found

    def batch_read(
        self, name: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        view = self._view(name)
        inputs = body.get("inputs") or []
        if len(inputs) > BATCH_MAX:
            raise HttpError(400, "VALIDATION_ERROR", f"Batch input size exceeds the limit of {BATCH_MAX}")
        id_property = body.get("idProperty")
        properties = list(body.get("properties") or [])
        results, missing = [], []
        for item in inputs:
            raw = str(item.get("id", ""))
            index = (
                self.store.by_email.get(raw.lower())
                if id_property == "email"
                else _read_index(view, int(raw))
                if raw.isdigit()
                else None
            )
            if index is None:
                missing.append(raw)
                continue
            record = view.record(index, properties, [])
            if id_property == "email":
                record["id"] = str(view.id_of(index))
            results.append(record)
        payload = _batch_payload(results)
        if missing:
            payload["numErrors"] = 1
            payload["errors"] = [_not_found(missing)]
            return 207, payload
        return 200, payload

    def get_object(
        self, name: str, raw: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        """``GET /crm/v3/objects/contacts/{id}`` (``idProperty=email`` reads by e-mail), 404 as HubSpot words it."""
        view = ContactView(self.store)
        by_email = query.get("idProperty", [""])[0] == "email"
        index = (
            self.store.by_email.get(raw.lower())
            if by_email
            else view.read_index_of(int(raw))
            if raw.isdigit()
            else None
        )
        if index is None:
            raise HttpError(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
        return 200, view.record(index, _names(query.get("properties", [])), [])

    def list_schemas(self, *, query: dict[str, list[str]], body: Json, partial: Fault | None) -> tuple[int, Json]:
        """The portal's custom object schemas: none (the sandbox models HubSpot's standard objects only)."""
        return 200, {"results": []}

    # -- engagement signals outside CRM objects (engagement.py) ---------------------------
    def email_events(self, *, query: dict[str, list[str]], body: Json, partial: Fault | None) -> tuple[int, Json]:
        store = self.store
        return 200, store.signals.email_events(query, lambda i: store.get(i, "email"))

    def marketing_events(self, *, query: dict[str, list[str]], body: Json, partial: Fault | None) -> tuple[int, Json]:
        return 200, self.store.signals.marketing_events()

    def participations(
        self, account: str, event: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        store = self.store
        page = store.signals.participations(account, event, query, lambda i: store.get(i, "email"), store.contact_id)
        if page is None:
            raise HttpError(404, "OBJECT_NOT_FOUND", f"Marketing event {event} not found")
        return 200, page

    def associations(
        self, name: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        engagements = self.store.engagements[name]
        inputs = body.get("inputs") or []
        if len(inputs) > ASSOCIATION_BATCH_MAX:
            raise HttpError(400, "VALIDATION_ERROR", f"Batch input size exceeds the limit of {ASSOCIATION_BATCH_MAX}")
        type_id, _ = ASSOCIATION_TYPE[name]
        results, missing = [], []
        for item in inputs:
            raw = str(item.get("id", ""))
            index = engagements.index_of(int(raw)) if raw.isdigit() else None
            if index is None:
                missing.append(raw)
                continue
            contact = self.store.contact_id(engagements.contact[index])
            results.append(
                {
                    "from": {"id": raw},
                    "to": [
                        {
                            "toObjectId": contact,
                            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}],
                        }
                    ],
                }
            )
        payload = _batch_payload(results)
        if missing:
            payload["numErrors"] = 1
            payload["errors"] = [_not_found(missing, name.upper().rstrip("S"))]
            return 207, payload
        return 200, payload

    def company_associations(
        self, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        """Contacts to their companies (v4): the primary company carries the primary type and the unlabeled one."""
        inputs = body.get("inputs") or []
        if len(inputs) > ASSOCIATION_BATCH_MAX:
            raise HttpError(400, "VALIDATION_ERROR", f"Batch input size exceeds the limit of {ASSOCIATION_BATCH_MAX}")
        store = self.store
        results, missing = [], []
        for item in inputs:
            raw = str(item.get("id", ""))
            index = store.contact_index(int(raw)) if raw.isdigit() else None
            if index is None:
                missing.append(raw)
                continue
            company = store.contact_company[index]
            if company < 0:
                continue  # HubSpot leaves a contact without companies out of the results
            types = [
                {"category": "HUBSPOT_DEFINED", "typeId": PRIMARY_COMPANY[0], "label": "Primary"},
                {"category": "HUBSPOT_DEFINED", "typeId": UNLABELED_COMPANY[0], "label": None},
            ]
            results.append(
                {
                    "from": {"id": raw},
                    "to": [{"toObjectId": store.companies.object_id(company), "associationTypes": types}],
                }
            )
        payload = _batch_payload(results)
        if missing:
            payload["numErrors"] = 1
            payload["errors"] = [_not_found(missing)]
            return 207, payload
        return 200, payload

    def contact_contacts(self, *, query: dict[str, list[str]], body: Json, partial: Fault | None) -> tuple[int, Json]:
        """Contacts to contacts (v4; Airbyte's contacts stream reads them on incremental syncs): the sandbox's
        people have none, so every known contact is left out of the results, as for a contact without companies."""
        inputs = body.get("inputs") or []
        if len(inputs) > ASSOCIATION_BATCH_MAX:
            raise HttpError(400, "VALIDATION_ERROR", f"Batch input size exceeds the limit of {ASSOCIATION_BATCH_MAX}")
        ids = [str(item.get("id", "")) for item in inputs]
        missing = [raw for raw in ids if not raw.isdigit() or self.store.contact_index(int(raw)) is None]
        payload = _batch_payload([])
        if missing:
            payload["numErrors"] = 1
            payload["errors"] = [_not_found(missing)]
            return 207, payload
        return 200, payload

    def company_contacts(self, *, query: dict[str, list[str]], body: Json, partial: Fault | None) -> tuple[int, Json]:
        """Companies to their contacts (v4); a contact whose primary company it is has type 2 as well as 280."""
        inputs = body.get("inputs") or []
        if len(inputs) > ASSOCIATION_BATCH_MAX:
            raise HttpError(400, "VALIDATION_ERROR", f"Batch input size exceeds the limit of {ASSOCIATION_BATCH_MAX}")
        store = self.store
        wanted: dict[int, str] = {}
        missing = []
        for item in inputs:
            raw = str(item.get("id", ""))
            index = store.companies.index_of(int(raw)) if raw.isdigit() else None
            if index is None:
                missing.append(raw)
            else:
                wanted[index] = raw
        members: dict[int, list[int]] = {index: [] for index in wanted}
        for contact, company in enumerate(store.contact_company):
            if company in members:
                members[company].append(contact)
        types = [
            {"category": "HUBSPOT_DEFINED", "typeId": COMPANY_PRIMARY_CONTACT[0], "label": "Primary"},
            {"category": "HUBSPOT_DEFINED", "typeId": COMPANY_UNLABELED_CONTACT[0], "label": None},
        ]
        results = [
            {
                "from": {"id": wanted[index]},
                "to": [{"toObjectId": store.contact_id(c), "associationTypes": types} for c in contacts],
            }
            for index, contacts in members.items()
            if contacts
        ]
        payload = _batch_payload(results)
        if missing:
            payload["numErrors"] = 1
            payload["errors"] = [_not_found(missing, "COMPANY")]
            return 207, payload
        return 200, payload

    # -- contacts: writing --------------------------------------------------------
    def batch_update(
        self, name: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        store = self.store
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise HttpError(400, "VALIDATION_ERROR", "inputs must be a non-empty list")
        if len(inputs) > BATCH_MAX:
            raise HttpError(400, "VALIDATION_ERROR", f"Batch input size exceeds the limit of {BATCH_MAX}")
        ids = [str(item.get("id", "")) for item in inputs]
        if len(set(ids)) != len(ids):
            raise HttpError(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        rejected = self.faults.rejected(partial, ids) if partial else set()
        view = ContactView(store)
        errors: dict[tuple[str, str], list[str]] = {}
        results = []
        for item, raw in zip(inputs, ids, strict=True):
            index = view.index_of(int(raw)) if raw.isdigit() else None
            if index is None or (raw in rejected and partial and partial.category == "OBJECT_NOT_FOUND"):
                errors.setdefault(("OBJECT_NOT_FOUND", ""), []).append(raw)
                continue
            if raw in rejected:
                errors.setdefault(("VALIDATION_ERROR", "Property values were not valid"), []).append(raw)
                continue
            injected = self.faults.record_fault(raw)
            if injected == "OBJECT_NOT_FOUND":
                errors.setdefault(("OBJECT_NOT_FOUND", ""), []).append(raw)
                continue
            if injected is not None:
                errors.setdefault((injected, "The record could not be updated"), []).append(raw)
                continue
            values: dict[str, Any] = item.get("properties") or {}
            problem = self._invalid_property(values)
            if problem:
                errors.setdefault(("VALIDATION_ERROR", problem), []).append(raw)
                continue
            for prop, value in values.items():
                text = "" if value is None else str(value)
                if prop == "lifecyclestage" and text:
                    current = store.get(index, "lifecyclestage")
                    # HubSpot keeps the old lifecycle stage on a backwards move (no error): clear it first
                    if current and LIFECYCLE_RANK.get(text, 99) < LIFECYCLE_RANK.get(current, 99):
                        continue
                store.set(index, prop, text)
            store.touch(index)
            results.append(view.record(index, list(values), []))
        payload = _batch_payload(results)
        if errors:
            payload["numErrors"] = sum(len(v) for v in errors.values())
            payload["errors"] = [
                _not_found(bad)
                if category == "OBJECT_NOT_FOUND"
                else {
                    "status": "error",
                    "category": category,
                    "message": message,
                    "context": {"ids": bad},
                    "errors": [],
                }
                for (category, message), bad in errors.items()
            ]
            return 207, payload
        return 200, payload

    def _invalid_property(self, values: dict[str, Any]) -> str | None:
        for prop, value in values.items():
            definition = self.store.properties.get(prop)
            if definition is None or prop in ("hs_object_id", "createdate", "lastmodifieddate"):
                return f'Property "{prop}" does not exist'
            text = "" if value is None else str(value)
            if definition.type == "enumeration" and text and text not in definition.options:
                return f'{text} was not one of the allowed options for property "{prop}"'
            if definition.type == "date" and text and not re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d+", text):
                return f'{text} is not a valid date for property "{prop}"'
        return None

    # -- properties -----------------------------------------------------------------
    def list_properties(
        self, name: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        return 200, {"results": [_property_json(p) for p in self._properties(name)]}

    def _properties(self, name: str) -> list[PropertyDef]:
        """The property definitions of an object type (``contact``/``contacts``, ``company``/``companies``...)."""
        if name.startswith("compan"):
            return list(self.store.company_properties.values())
        if name in self.store.engagements:
            return _engagement_properties(self.store.engagements[name])
        return list(self.store.properties.values())

    def get_property(
        self, name: str, prop: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        definition = self.store.properties.get(prop)
        if definition is None:
            raise HttpError(404, "OBJECT_NOT_FOUND", f"Unable to find property {prop}")
        return 200, _property_json(definition)

    def create_property(
        self, name: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        prop = str(body.get("name") or "")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", prop) or not body.get("type") or not body.get("fieldType"):
            raise HttpError(400, "VALIDATION_ERROR", "name, type and fieldType are required")
        if prop in self.store.properties:
            raise HttpError(409, "OBJECT_ALREADY_EXISTS", f"A property named '{prop}' already exists.")
        options = [str(o.get("value")) for o in body.get("options") or []]
        if body["type"] == "enumeration" and not options:
            raise HttpError(400, "VALIDATION_ERROR", "enumeration properties need options")
        definition = self.store.create_property(
            PropertyDef(
                prop,
                str(body.get("label") or prop),
                str(body["type"]),
                str(body["fieldType"]),
                options,
                group=str(body.get("groupName") or "contactinformation"),
            )
        )
        return 201, _property_json(definition)

    # -- forms ------------------------------------------------------------------------
    def list_forms(self, *, query: dict[str, list[str]], body: Json, partial: Fault | None) -> tuple[int, Json]:
        return 200, {
            "results": [
                {
                    "id": form.guid,
                    "name": form.name,
                    "formType": "hubspot",
                    "archived": False,
                    "createdAt": "2025-01-06T09:00:00.000Z",
                    "updatedAt": "2025-01-06T09:00:00.000Z",
                }
                for form in FORMS
            ]
        }

    def list_legacy_properties(
        self, name: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, list[Json]]:
        """``GET /properties/v2/{contact|company}/properties`` (and v1): a bare array, dates in epoch ms."""
        return 200, [_legacy_property_json(p, n) for n, p in enumerate(self._properties(name))]

    def list_legacy_forms(
        self, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, list[Json]]:
        """``GET /forms/v2/forms``: a bare array of forms keyed by ``guid``, dates in epoch ms."""
        return 200, [
            {
                "portalId": PORTAL_ID,
                "guid": form.guid,
                "name": form.name,
                "formType": "HUBSPOT",
                "formFieldGroups": [
                    {
                        "fields": [
                            {"name": "email", "label": "Email", "type": "string", "fieldType": "text",
                             "required": True, "enabled": True, "hidden": False}
                        ],
                        "default": True,
                    }
                ],
                "createdAt": FORMS_CREATED_MS,
                "updatedAt": FORMS_CREATED_MS,
                "deletedAt": 0,
                "deletable": True,
                "editable": True,
                "cloneable": True,
            }
            for form in FORMS
        ]  # fmt: skip

    def submissions(
        self, guid: str, *, query: dict[str, list[str]], body: Json, partial: Fault | None
    ) -> tuple[int, Json]:
        form = self.store.forms.get(guid)
        if form is None:
            raise HttpError(404, "OBJECT_NOT_FOUND", f"Form {guid} not found")
        limit = min(_int(query.get("limit", ["20"])[0], "limit"), FORM_PAGE_MAX)
        after = query.get("after", [""])[0]
        start = 0
        if after:
            try:
                at, seq = (int(part) for part in after.split("-"))
            except ValueError:
                raise HttpError(400, "VALIDATION_ERROR", "invalid after token") from None
            start = form.position_after((-at, -seq))
        stop = min(start + max(limit, 1), len(form.items))
        store = self.store
        results = []
        for item in form.items[start:stop]:
            values = [{"name": "email", "value": store.get(item.contact, "email")}]
            first = store.get(item.contact, "firstname")
            if first:
                values.append({"name": "firstname", "value": first})
            results.append(
                {
                    "conversionId": f"{guid[-4:]}-{item.seq:010d}",
                    "submittedAt": item.submitted_at,
                    "values": values,
                    "pageUrl": store.details.texts[item.page],
                }
            )
        page: Json = {"results": results}
        if stop < len(form.items):
            last = form.items[stop - 1]
            token = f"{last.submitted_at}-{last.seq}"
            page["paging"] = {"next": {"after": token, "link": f"?after={token}"}}
        return 200, page


# -- views over the store ------------------------------------------------------------


class ObjectView:
    count: int

    def id_of(self, index: int) -> int:
        raise NotImplementedError

    def index_of(self, object_id: int) -> int | None:
        raise NotImplementedError

    def first_index_after(self, object_id: int) -> int:
        index = self.index_of(object_id)
        return self.count if index is None else index

    def record(self, index: int, properties: list[str], associations: list[str]) -> Json:
        raise NotImplementedError

    def sort_column(self, name: str) -> Callable[[int], Any]:
        raise NotImplementedError


class ContactView(ObjectView):
    def __init__(self, store: Store) -> None:
        self.store = store
        self.count = store.contact_count

    def id_of(self, index: int) -> int:
        return self.store.contact_id(index)

    def index_of(self, object_id: int) -> int | None:
        return self.store.contact_index(object_id)

    def read_index_of(self, object_id: int) -> int | None:
        """A read follows a merged-away id to the contact it was merged into."""
        return self.store.read_index(object_id)

    def first_index_after(self, object_id: int) -> int:
        """Where a list resumes after ``object_id``, archived or not."""
        return max(0, min(object_id - 1, self.count))

    def record(self, index: int, properties: list[str], associations: list[str]) -> Json:
        store = self.store
        names = [*properties, "createdate", "lastmodifieddate", "hs_object_id"] if properties else CONTACT_DEFAULTS
        props = {name: store.get(index, name) for name in names if name in store.properties}
        record: Json = {
            "id": str(store.contact_id(index)),
            "properties": props,
            "createdAt": iso(store.instants["createdate"][index]),
            "updatedAt": iso(store.instants["lastmodifieddate"][index]),
            "archived": False,
        }
        company = store.contact_company[index]
        if company >= 0 and ("companies" in associations or "company" in associations):
            company_id = str(store.companies.object_id(company))
            # v3 lists the primary company twice: with the primary type and with the unlabeled one
            record["associations"] = {
                "companies": {
                    "results": [
                        {"id": company_id, "type": PRIMARY_COMPANY[1]},
                        {"id": company_id, "type": UNLABELED_COMPANY[1]},
                    ]
                }
            }
        return record

    def sort_column(self, name: str) -> Callable[[int], Any]:
        store = self.store
        return lambda i: store.sort_value(i, name)


class CompanyView(ObjectView):
    def __init__(self, store: Store) -> None:
        self.store = store
        self.companies = store.companies
        self.count = len(store.companies)

    def id_of(self, index: int) -> int:
        return self.companies.object_id(index)

    def index_of(self, object_id: int) -> int | None:
        return self.companies.index_of(object_id)

    def first_index_after(self, object_id: int) -> int:
        return max(0, min(object_id - COMPANY_ID_BASE - 1, self.count))

    def record(self, index: int, properties: list[str], associations: list[str]) -> Json:
        names = [*properties, "createdate", "hs_lastmodifieddate", "hs_object_id"] if properties else COMPANY_DEFAULTS
        known = self.store.company_properties
        return {
            "id": str(self.companies.object_id(index)),
            "properties": {name: self.companies.get(index, name) for name in names if name in known},
            "createdAt": iso(self.companies.created[index]),
            "updatedAt": iso(self.companies.modified[index]),
            "archived": False,
        }

    def sort_column(self, name: str) -> Callable[[int], Any]:
        companies = self.companies
        return lambda i: companies.sort_value(i, name)


class EngagementView(ObjectView):
    def __init__(self, store: Store, engagements: Engagements) -> None:
        self.store = store
        self.e = engagements
        self.count = len(engagements)
        self.name = engagements.name
        self.title = OBJECT_TITLE[self.name]
        self.association = ASSOCIATION_TYPE[self.name][1]

    def id_of(self, index: int) -> int:
        return self.e.object_id(index)

    def index_of(self, object_id: int) -> int | None:
        return self.e.index_of(object_id)

    def first_index_after(self, object_id: int) -> int:
        return max(0, min(object_id - self.e.base - 1, self.count))

    def value(self, index: int, name: str) -> str | None:
        e = self.e
        if e.raw and (index, name) in e.raw:
            return e.raw[(index, name)]
        if name == "hs_createdate":
            return iso(e.at[index])
        if name in ("hs_timestamp", "hs_meeting_start_time"):
            # hs_timestamp is when the activity takes place (a meeting's start), not when it was logged
            if name == "hs_meeting_start_time" and self.name != "meetings":
                return None
            return iso(e.start[index])
        if name == "hs_lastmodifieddate":
            return iso(e.modified[index])
        if name == "hs_object_id":
            return str(e.object_id(index))
        if name == e.code_property:
            return e.code_values[e.code[index]]
        if name == self.title:
            return self.store.details.texts[e.detail[index]]
        if name == "hs_call_status" and self.name == "calls":
            return "COMPLETED"
        if name == "hs_meeting_end_time" and self.name == "meetings":
            return iso(e.start[index] + 1_800_000)
        return None

    def record(self, index: int, properties: list[str], associations: list[str]) -> Json:
        e = self.e
        names = [*properties, *ENGAGEMENT_DEFAULTS] if properties else ENGAGEMENT_DEFAULTS
        record: Json = {
            "id": str(e.object_id(index)),
            "properties": {name: self.value(index, name) for name in names},
            "createdAt": iso(e.at[index]),
            "updatedAt": iso(e.modified[index]),
            "archived": False,
        }
        if "contacts" in associations or "contact" in associations:
            record["associations"] = {
                "contacts": {
                    "results": [{"id": str(self.store.contact_id(e.contact[index])), "type": self.association}]
                }
            }
        return record

    def sort_column(self, name: str) -> Callable[[int], Any]:
        e = self.e
        if name == "hs_createdate":
            return lambda i: e.at[i]
        if name in ("hs_timestamp", "hs_meeting_start_time"):
            return lambda i: e.start[i]
        if name == "hs_lastmodifieddate":
            return lambda i: e.modified[i]
        if name == "hs_object_id":
            return e.object_id
        return lambda i: self.value(i, name)


# -- helpers -------------------------------------------------------------------------------


def _compile_filter(spec: Json, view: ObjectView) -> Callable[[int], bool]:
    prop = str(spec.get("propertyName", ""))
    operator = str(spec.get("operator", "EQ")).upper()
    column = view.sort_column(prop)

    def coerce(raw: Any) -> Any:
        if raw is None:
            return None
        text = str(raw).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        if re.match(r"^\d{4}-\d{2}-\d{2}", text):
            from connector.mapping import parse_instant

            return int(parse_instant(text).timestamp() * 1000)
        return text.lower()

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            return int(value) if value.lstrip("-").isdigit() else value.lower()
        return value

    value = coerce(spec.get("value"))
    values = {coerce(v) for v in spec.get("values") or []}
    high = coerce(spec.get("highValue"))
    match operator:
        case "HAS_PROPERTY":
            return lambda i: column(i) not in (None, "")
        case "NOT_HAS_PROPERTY":
            return lambda i: column(i) in (None, "")
        case "EQ":
            return lambda i: norm(column(i)) == value
        case "NEQ":
            return lambda i: norm(column(i)) != value
        case "IN":
            return lambda i: norm(column(i)) in values
        case "NOT_IN":
            return lambda i: norm(column(i)) not in values
        case "GT" | "GTE" | "LT" | "LTE" | "BETWEEN":

            def compare(i: int) -> bool:
                current = norm(column(i))
                if current is None or type(current) is not type(value):
                    return False
                if operator == "GT":
                    return bool(current > value)
                if operator == "GTE":
                    return bool(current >= value)
                if operator == "LT":
                    return bool(current < value)
                if operator == "LTE":
                    return bool(current <= value)
                return bool(value <= current <= high)

            return compare
        case "CONTAINS_TOKEN":
            return lambda i: isinstance(column(i), str) and str(value) in str(column(i)).lower()
    raise HttpError(400, "VALIDATION_ERROR", f"Unknown operator {operator}")


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise HttpError(400, "VALIDATION_ERROR", f"{name} must be a number") from None


def _names(values: list[str]) -> list[str]:
    return [name for value in values for name in value.split(",") if name]


def _batch_payload(results: list[Json]) -> Json:
    return {
        "status": "COMPLETE",
        "results": results,
        "startedAt": "2026-01-01T00:00:00.000Z",
        "completedAt": "2026-01-01T00:00:00.050Z",
    }


def _not_found(ids: list[str], kind: str = "CONTACT") -> Json:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not get some {kind} objects, they may be deleted or not exist. Check that ids are valid.",
        "context": {"ids": ids},
        "errors": [],
    }


def _error_body(category: str, message: str, correlation: str, **extra: Any) -> Json:
    return {"status": "error", "message": message, "correlationId": correlation, "category": category, **extra}


def _rate_body(policy: str, correlation: str) -> Json:
    names = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "SECONDLY": "secondly", "DAILY": "daily"}
    return {
        "status": "error",
        "message": f"You have reached your {names.get(policy, policy.lower())} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation,
        "policyName": policy,
    }


def _engagement_properties(e: Engagements) -> list[PropertyDef]:
    """What the sandbox serves on an engagement object (``EngagementView.value``), as property definitions."""
    dated = ["hs_createdate", "hs_timestamp", "hs_lastmodifieddate"]
    if e.name == "meetings":
        dated += ["hs_meeting_start_time", "hs_meeting_end_time"]
    definitions = [PropertyDef(name, name, "datetime", "date", [], group="engagement") for name in dated]
    definitions.append(PropertyDef("hs_object_id", "Record ID", "number", "number", [], group="engagement"))
    definitions.append(PropertyDef(OBJECT_TITLE[e.name], OBJECT_TITLE[e.name], "string", "text", [], group=e.name))
    definitions.append(PropertyDef(e.code_property, e.code_property, "enumeration", "select", list(e.code_values),
                                   group=e.name))  # fmt: skip
    if e.name == "calls":
        definitions.append(PropertyDef("hs_call_status", "Call status", "enumeration", "select", ["COMPLETED"],
                                       group="calls"))  # fmt: skip
    return definitions


def _legacy_property_json(p: PropertyDef, order: int) -> Json:
    """A property as the legacy v1/v2 properties APIs give it (no ``modificationMetadata``, dates in ms)."""
    return {
        "name": p.name,
        "label": p.label,
        "description": "",
        "groupName": p.group,
        "type": p.type,
        "fieldType": p.field_type,
        "options": [
            {"label": o, "value": o, "displayOrder": n, "hidden": False, "readOnly": False}
            for n, o in enumerate(p.options)
        ],
        "displayOrder": order,
        "formField": True,
        "readOnlyValue": False,
        "readOnlyDefinition": p.hubspot_defined,
        "hidden": False,
        "calculated": False,
        "externalOptions": False,
        "deleted": False,
        "hubspotDefined": p.hubspot_defined,
        "createdAt": FORMS_CREATED_MS,
        "updatedAt": FORMS_CREATED_MS,
    }


def _property_json(p: PropertyDef) -> Json:
    return {
        "name": p.name,
        "label": p.label,
        "type": p.type,
        "fieldType": p.field_type,
        "groupName": p.group,
        "options": [{"label": o, "value": o, "displayOrder": n, "hidden": False} for n, o in enumerate(p.options)],
        "hubspotDefined": p.hubspot_defined,
        "calculated": False,
        "hasUniqueValue": p.name == "email",
        "formField": True,
        "archived": False,
        "createdAt": "2025-01-06T09:00:00.000Z",
        "updatedAt": "2025-01-06T09:00:00.000Z",
    }


def _read_index(view: Any, object_id: int) -> int | None:
    """The record a batch read by id returns: contacts follow a merged-away id to its survivor."""
    follow = getattr(view, "read_index_of", None)
    return follow(object_id) if follow is not None else view.index_of(object_id)
