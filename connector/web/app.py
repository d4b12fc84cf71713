"""The read-only dashboard: a small Starlette app over the state store, HTML rendered on the server.

Pages: jobs and their health (``/``), runs (``/runs``) and one run
(``/runs/{id}``), the funnel (``/funnel``), dead letters by cause
(``/dead-letters``) and a contact explained (``/contacts?key=...``). Only GET
(and HEAD); nothing here writes to the store or calls a CRM. Who may read it
and the headers every answer carries are in :mod:`connector.web.security`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from connector.causes import group_by_cause
from connector.config import Config
from connector.errors import ConfigError, Problem
from connector.jobs import Job, load_jobs
from connector.report import COLUMNS, build_funnel
from connector.store import Store, queries
from connector.web import reads
from connector.web.chart import funnel_chart
from connector.web.explanation import explain_contact
from connector.web.health import job_health
from connector.web.rendering import environment
from connector.web.security import Guard

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

COUNTS = (
    ("contacts_read", "contacts read"),
    ("activities_read", "activities read"),
    ("skipped", "records skipped (could not be read)"),
    ("unmapped", "activities of no mapped kind"),
    ("contacts_changed", "contacts with new facts"),
    ("decided", "contacts decided"),
    ("changed", "stage changes planned"),
    ("written", "written"),
    ("unchanged", "already right in the CRM"),
    ("failed", "rejected (dead letters)"),
    ("deferred", "deferred (retried on a later run)"),
    ("recovered", "recovered from an interrupted run"),
)
"""The per-connection counts of a run (``ConnectionCounts.as_dict``), in pipeline order, in words."""

DEAD_LETTERS_SHOWN = 200
"""Rows listed per cause (the counts cover them all): a page stays readable with thousands."""

NAV = (
    ("jobs", "Jobs", "/"),
    ("runs", "Runs", "/runs"),
    ("funnel", "Funnel", "/funnel"),
    ("dead-letters", "Dead letters", "/dead-letters"),
    ("contacts", "Contacts", "/contacts"),
)


@dataclass(frozen=True, slots=True)
class KnownJobs:
    jobs: dict[str, Job | None]
    """Job name -> its job file or tenant (``None``: the store has runs of it but nothing defines it)."""
    problems: list[Problem]
    """Job files (and the tenants file) that did not load."""
    connections: list[str]
    """The config's connections (the tenants' included) and those the store holds data of."""
    config: Config | None
    """The config with the tenants' connections (their mappings for the funnel)."""

    def jobs_on(self, connection: str) -> list[str]:
        """The jobs that sync ``connection`` (a tenant's job is named after it and syncs it)."""
        return [name for name, job in self.jobs.items() if job is not None and connection in job.connections]


class Pages:
    """The page handlers, over one store, an optional config (job files, rules, mappings) and a clock."""

    def __init__(self, store: Store, config: Config | None, clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.templates = Jinja2Templates(env=environment())

    # -- helpers -------------------------------------------------------------------------
    def render(self, request: Request, template: str, active: str, title: str, **context: Any) -> Response:
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "nav": NAV,
                "active": active,
                "title": title,
                "now": self.clock(),
                "base": request.scope.get("root_path", ""),
                **context,
            },
        )

    def known_jobs(self) -> KnownJobs:
        jobs: dict[str, Job | None] = {}
        problems: list[Problem] = []
        config = self.config
        if config is not None:
            loaded, problems = load_jobs(config.jobs_dir)
            jobs.update(loaded)
            config = self._with_tenants(config, jobs, problems)
        for name in reads.jobs_in_store(self.store):
            jobs.setdefault(name, None)
        connections = set(reads.connections_in_store(self.store))
        if config is not None:
            connections.update(config.connections)
        return KnownJobs(dict(sorted(jobs.items())), problems, sorted(connections), config)

    @staticmethod
    def _with_tenants(config: Config, jobs: dict[str, Job | None], problems: list[Problem]) -> Config:
        """``config`` with the tenants' connections, their jobs added to ``jobs`` (read on every page, like the job
        files: a tenant added while the dashboard runs shows up)."""
        from connector.team.tenants import expand, tenants_path

        path = tenants_path(config)
        if path is None:
            return config
        try:
            expanded, tenant_jobs = expand(config, path, frozenset(jobs))
        except ConfigError as error:
            problems.extend(error.problems or [Problem(str(path), "", str(error))])
            return config
        jobs.update(tenant_jobs)
        return expanded

    def job_filter(self, request: Request, known: KnownJobs) -> str | None:
        """The ``job`` query parameter, which must name a known job (an unknown one is an error, not an empty page)."""
        job = request.query_params.get("job") or None
        if job is not None and job not in known.jobs:
            names = ", ".join(known.jobs) or "none"
            raise HTTPException(400, f"No job named {job!r} (known: {names}).")
        return job

    def connection_filter(self, request: Request, known: KnownJobs) -> str | None:
        """The ``connection`` query parameter (a tenant's portal is its connection), which must name a known one."""
        connection = request.query_params.get("connection") or None
        if connection is not None and connection not in known.connections:
            names = ", ".join(known.connections) or "none"
            raise HTTPException(400, f"No connection named {connection!r} (known: {names}).")
        return connection

    def filters(self, request: Request, known: KnownJobs) -> dict[str, Any]:
        """The job and connection chosen (validated) and the choices, for a page's filter form."""
        return {
            "job": self.job_filter(request, known),
            "connection": self.connection_filter(request, known),
            "jobs": list(known.jobs),
            "connections": known.connections,
        }

    @staticmethod
    def limit(request: Request, default: int = 100) -> int:
        raw = request.query_params.get("limit")
        if raw is None:
            return default
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise HTTPException(400, "limit must be a whole number from 1 to 1000.")
        return int(raw)

    # -- pages ---------------------------------------------------------------------------
    def jobs(self, request: Request) -> Response:
        known = self.known_jobs()
        chosen = self.filters(request, known)
        shown = set(known.jobs_on(chosen["connection"])) if chosen["connection"] else set(known.jobs)
        if chosen["job"]:
            shown &= {chosen["job"]}
        now = self.clock()
        healths = []
        for name, job in known.jobs.items():
            if name not in shown:
                continue
            recent = queries.recent_runs(self.store, name, 1)
            sizes = queries.queue_sizes(self.store, name)
            healths.append(
                job_health(
                    name,
                    job,
                    last_run=recent[0] if recent else None,
                    last_success=reads.last_completed(self.store, name),
                    dead_letters=sizes["dead_letters"],
                    queued=sizes["queued"],
                    now=now,
                )
            )
        return self.render(
            request,
            "jobs.html",
            "jobs",
            "Jobs",
            healths=healths,
            problems=known.problems,
            has_config=self.config is not None,
            **chosen,
        )

    def runs(self, request: Request) -> Response:
        known = self.known_jobs()
        chosen = self.filters(request, known)
        status = request.query_params.get("status") or None
        if status is not None and status not in reads.RUN_STATUSES:
            raise HTTPException(400, f"No run status {status!r} (known: {', '.join(reads.RUN_STATUSES)}).")
        limit = self.limit(request)
        connection = chosen["connection"]
        on = known.jobs_on(connection) if connection else None
        rows = reads.run_list(self.store, job=chosen["job"], jobs=on, status=status, limit=limit)
        return self.render(
            request,
            "runs.html",
            "runs",
            "Runs",
            runs=rows,
            **chosen,
            status=status,
            statuses=reads.RUN_STATUSES,
            limit=limit,
        )

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        found = reads.run_by_id(self.store, run_id)
        if found is None:
            raise HTTPException(404, f"No run {run_id!r} in the store.")
        connections: dict[str, dict[str, Any]] = found.counts.get("connections") or {}
        rows = [(label, [int(counts.get(key, 0) or 0) for counts in connections.values()]) for key, label in COUNTS]
        return self.render(
            request,
            "run.html",
            "runs",
            f"Run of {found.job}",
            run=found,
            connections=list(connections),
            rows=[(label, values, sum(values)) for label, values in rows],
        )

    def funnel(self, request: Request) -> Response:
        known = self.known_jobs()
        chosen = self.filters(request, known)
        connection = chosen["connection"]
        figures = build_funnel(
            self.store,
            job=chosen["job"],
            connections=[connection] if connection else None,
            config=known.config,
            now=self.clock(),
        )
        return self.render(
            request,
            "funnel.html",
            "funnel",
            "Funnel",
            funnel=figures,
            definitions=COLUMNS,
            chart=funnel_chart(figures),
            **chosen,
        )

    def dead_letters(self, request: Request) -> Response:
        known = self.known_jobs()
        chosen = self.filters(request, known)
        include_resolved = request.query_params.get("all") == "1"
        letters = queries.dead_letter_list(self.store, job=chosen["job"], include_resolved=include_resolved)
        if chosen["connection"]:
            letters = [letter for letter in letters if letter.connection == chosen["connection"]]
        return self.render(
            request,
            "dead_letters.html",
            "dead-letters",
            "Dead letters",
            causes=group_by_cause(letters),
            total=len(letters),
            shown=DEAD_LETTERS_SHOWN,
            **chosen,
            include_resolved=include_resolved,
        )

    def contacts(self, request: Request) -> Response:
        key = (request.query_params.get("key") or "").strip()
        if not key:
            recent = queries.changes(self.store, limit=50)
            return self.render(
                request, "contacts.html", "contacts", "Contacts", key="", explanation=None, recent=recent
            )
        try:
            explanation = explain_contact(self.store, key, config=self.config, now=self.clock())
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        status = 200 if explanation.records or explanation.history else 404
        response = self.render(
            request, "contacts.html", "contacts", f"Contact {key}", key=key, explanation=explanation, recent=[]
        )
        response.status_code = status
        return response

    async def error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {400: "Not a valid request", 404: "Not found", 405: "Read-only"}
        response = self.render(
            request, "error.html", "", titles.get(exc.status_code, "Error"), message=exc.detail, status=exc.status_code
        )
        response.status_code = exc.status_code
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405
        return response


def no_icon(_request: Request) -> Response:
    return Response(status_code=204)


def create_app(store: Store, *, config: Config | None, token: SecretStr | None, clock: Clock) -> Starlette:
    """The dashboard as an ASGI app over ``store``.

    ``config`` gives the job files (schedules, next runs) and the rules for a
    contact's live explanation; without it the pages show what the store
    holds. ``token`` (``None``: loopback only) is required from every request
    when set. ``clock`` is the time the pages are "as of".
    """
    pages = Pages(store, config, clock)
    app = Starlette(
        routes=[
            Route("/", pages.jobs, methods=["GET"], name="jobs"),
            Route("/runs", pages.runs, methods=["GET"], name="runs"),
            Route("/runs/{run_id}", pages.run, methods=["GET"], name="run"),
            Route("/funnel", pages.funnel, methods=["GET"], name="funnel"),
            Route("/dead-letters", pages.dead_letters, methods=["GET"], name="dead_letters"),
            Route("/contacts", pages.contacts, methods=["GET"], name="contacts"),
            Route("/favicon.ico", no_icon, methods=["GET"]),
            Mount("/static", StaticFiles(packages=[("connector.web", "static")]), name="static"),
        ],
        middleware=[Middleware(Guard, token=token)],
        exception_handlers={HTTPException: pages.error},
    )
    app.state.requires_token = token is not None
    return app
