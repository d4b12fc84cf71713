"""The funnel: where contacts are, when each rung was reached, and how cohorts convert.

The dates come from the contacts' own evidence, not from when crmsync wrote:
for each stored contact the rules are replayed at each date one of its
activities happened (with the activities known by then), so the date a rung
was reached is the date of the activity that completed its evidence, the
same date crmsync writes into the mapping's ``reached_at_field``. A re-run,
a rules change or a backfill therefore does not make every contact look as
if it had reached its rung today.

Every column is defined in :data:`COLUMNS` (printed under the table, in the
HTML page, the dashboard and ``--json``):

- **on it**: contacts whose stage in the CRM is this rung now;
- **reached**: contacts that reached this rung or a higher one (by the dates
  above; contacts can skip rungs), up to the end of the date range;
- **entered**: the cohort: contacts that were *on* this rung (the rules put
  them on exactly it) and entered it within the date range; a contact that
  skipped the rung is not in its cohort, so a lead that never fit the ICP
  is not counted as a ``suspect``;
- **moved on**: of the cohort, those that later reached a higher rung;
- **conversion**: moved on / entered;
- **median days in rung**: over those that moved on, from entering the rung
  to reaching a higher one.

Contacts whose CRM stage value is outside the ladder or above it (HubSpot
``opportunity`` or ``customer``, a custom Salesforce status) get nothing
written by crmsync; they are counted on their own "beyond the ladder" row.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from connector.lifecycle.rules import Rules, decide
from connector.mapping import CrmMapping
from connector.model import LADDER, Stage
from connector.store import Store
from connector.store.queries import FunnelContact, funnel_contacts, funnel_people
from connector.sync.unify import person_evidence

if TYPE_CHECKING:
    from connector.config import Config

COLUMNS: dict[str, str] = {
    "rung": "a rung of the ladder, lowest first.",
    "on it": "contacts whose stage in the CRM is this rung now.",
    "reached": "contacts that reached this rung or a higher one (contacts can skip rungs), dated by the activity "
    "that completed the rung's evidence, up to the end of the date range.",
    "entered": "the cohort: contacts the rules put on exactly this rung, with the date they entered it in the "
    "date range (contacts that skipped the rung are not in it).",
    "moved on": "of the cohort, contacts that later reached a higher rung.",
    "conversion": "moved on ÷ entered.",
    "median days in rung": "over the contacts that moved on: days from entering this rung to reaching a higher one.",
    "beyond the ladder": "contacts whose CRM stage value is outside the ladder or above it (e.g. HubSpot "
    "opportunity, customer): crmsync writes nothing for them.",
    "no rung": "contacts that fit no rung (no ICP fit, no signal) and have no stage in the CRM.",
}


@dataclass(frozen=True, slots=True)
class RungFigures:
    stage: Stage
    on: int
    reached: int
    entered: int = 0
    converted: int = 0
    median_days: float | None = None
    """Median days in this rung, over the contacts of the cohort that moved on."""

    @property
    def conversion(self) -> float | None:
        """Share of the cohort that moved on to a higher rung (None: empty cohort, or the top rung)."""
        if self.stage.rank == LADDER[-1].rank or not self.entered:
            return None
        return self.converted / self.entered

    @property
    def moved_on(self) -> int:
        return self.converted

    def as_json(self) -> dict[str, Any]:
        return {
            "rung": self.stage.value,
            "on_it": self.on,
            "reached": self.reached,
            "entered": self.entered,
            "moved_on": self.converted,
            "conversion": None if self.conversion is None else round(self.conversion, 4),
            "median_days_in_rung": None if self.median_days is None else round(self.median_days, 2),
        }


@dataclass(frozen=True, slots=True)
class Funnel:
    rungs: list[RungFigures]
    total: int
    off_ladder: int
    """Contacts with no rung and no stage value in the CRM."""
    job: str | None
    beyond_ladder: int = 0
    """Contacts whose CRM stage value is outside or above the ladder (nothing is written for them)."""
    connections: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    as_of: datetime | None = None
    people: bool = False
    """Each count is of people (a unifying job: one person's records in several CRMs count once)."""

    @property
    def scope(self) -> str:
        parts = [f"job {self.job}" if self.job else "all jobs"]
        if self.people:
            parts.append("counting people across CRMs")
        if self.connections:
            parts.append("connection " + ", ".join(self.connections))
        if self.since or self.until:
            start = self.since.date().isoformat() if self.since else "the start"
            end = self.until.date().isoformat() if self.until else "now"
            parts.append(f"entered from {start} to {end}")
        return "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "connections": list(self.connections),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "contacts": self.total,
            "counts": "people" if self.people else "contacts",
            "no_rung": self.off_ladder,
            "beyond_the_ladder": self.beyond_ladder,
            "rungs": [rung.as_json() for rung in self.rungs],
            "definitions": COLUMNS,
        }


@dataclass
class RungDates:
    """When a contact reached each rank (first date), and when it was on each exact rung first."""

    reached: dict[int, datetime] = field(default_factory=dict)
    entered: dict[int, datetime] = field(default_factory=dict)


def rung_dates(person: FunnelContact, rules: Rules) -> RungDates:
    """Replay the rules at each date an activity happened (pure): the dates each rung was reached."""
    dates = RungDates()
    contact = person.contact.model_copy(update={"stage": None})
    acts = sorted(person.activities, key=lambda a: a.occurred_at)
    moments = sorted({a.occurred_at for a in acts})
    # firmographics alone (a suspect) count from the first moment we know of the contact
    start = min(moments[0], person.stored_at) if moments else person.stored_at
    seen = 0
    for moment in sorted({start, *moments}):
        while seen < len(acts) and acts[seen].occurred_at <= moment:
            seen += 1
        decision = decide(contact, acts[:seen], rules, now=moment, explain=False)
        if decision.stage is None:
            continue
        rank = decision.stage.rank
        dates.entered.setdefault(rank, moment)
        for stage in LADDER:
            if stage.rank <= rank:
                dates.reached.setdefault(stage.rank, moment)
    return dates


def beyond_ladder(person: FunnelContact, mapping: CrmMapping | None) -> bool:
    """True when a stage field of the contact holds a CRM value the ladder does not know (outside or above it)."""
    return mapping is not None and mapping.beyond_ladder(person.stage_values) is not None


def build_funnel(
    store: Store,
    *,
    job: str | None = None,
    config: Config | None = None,
    rules: Rules | None = None,
    connections: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    unify: bool | None = None,
) -> Funnel:
    """The funnel of the stored contacts in scope (a job's, some connections'), cohorts entered in [since, until).

    ``rules`` default to the job's (or the config's) rules file; without a
    config only the CRM's stages (``on it``) are counted. The mappings (for
    the "beyond the ladder" row) come from the config's connections. A job
    that unifies people (``unify``, by default the job file's key) counts
    people: her records' highest rung is where she is, her merged evidence
    (copies counted once) dates her rungs, and she is beyond the ladder when
    one of her records is.
    """
    chosen = tuple(sorted(connections)) if connections is not None else ()
    if rules is None and config is not None:
        rules = _rules_of(config, job)
    mappings = _mappings_of(config) if config is not None else {}
    on = dict.fromkeys((s.rank for s in LADDER), 0)
    reached = dict.fromkeys((s.rank for s in LADDER), 0)
    entered = dict.fromkeys((s.rank for s in LADDER), 0)
    durations: dict[int, list[float]] = {s.rank: [] for s in LADDER}
    total = beyond = no_rung = 0
    unifying = _unifying(config, job, unify)
    for group in _scope(store, job, config, chosen, unifying):
        total += 1
        person = group[0] if len(group) == 1 else merged_person(group, unifying or ())
        ranks = [Stage(r.stage).rank for r in group if r.stage in {s.value for s in LADDER}]
        current = LADDER[max(ranks)] if ranks else None
        if any(beyond_ladder(record, mappings.get(record.connection)) for record in group):
            beyond += 1
        elif current is not None:
            on[current.rank] += 1
        else:
            no_rung += 1
        if rules is None:
            continue
        dates = rung_dates(person, rules)
        for rank, at in dates.reached.items():
            if until is None or at < until:
                reached[rank] += 1
        for rank, at in dates.entered.items():
            if (since is not None and at < since) or (until is not None and at >= until):
                continue
            entered[rank] += 1
            later = [when for higher, when in dates.reached.items() if higher > rank]
            if later:
                durations[rank].append((min(later) - at).total_seconds() / 86_400)
    if rules is None:  # no replay: "reached" by rank of the CRM's stage now
        for stage in LADDER:
            reached[stage.rank] = sum(on[s.rank] for s in LADDER if s.rank >= stage.rank)
    rungs = [
        RungFigures(
            stage=stage,
            on=on[stage.rank],
            reached=reached[stage.rank],
            entered=entered[stage.rank],
            converted=len(durations[stage.rank]) if stage.rank != LADDER[-1].rank else 0,
            median_days=statistics.median(durations[stage.rank]) if durations[stage.rank] else None,
        )
        for stage in LADDER
    ]
    return Funnel(
        rungs=rungs, total=total, off_ladder=no_rung, job=job, beyond_ladder=beyond, connections=chosen,
        since=since, until=until, as_of=now, people=unifying is not None,
    )  # fmt: skip


def merged_person(group: list[FunnelContact], connections: Sequence[str]) -> FunnelContact:
    """One person's records as one contact for the funnel: her merged facts and activities (see
    :mod:`connector.sync.unify`), known from the first time one of her records was stored."""
    evidence = person_evidence(group[0].crm_id, group, connections)
    return FunnelContact(
        connection=group[0].connection,
        crm_id=group[0].crm_id,
        stage=None,
        stage_values={},
        contact=evidence.contact,
        stored_at=min(record.stored_at for record in group),
        activities=evidence.activities,
    )


def _unifying(config: Config | None, job: str | None, unify: bool | None) -> tuple[str, ...] | None:
    """The connections of ``job`` when it unifies people (the job file says so unless ``unify`` is given)."""
    if job is None or config is None or unify is False:
        return None
    from connector.jobs import find_job

    try:
        found = find_job(config.jobs_dir, job)
    except Exception:  # a job known only from the store (its file removed): records
        return None
    return tuple(found.connections) if (found.unify if unify is None else unify) else None


def _scope(
    store: Store, job: str | None, config: Config | None, chosen: tuple[str, ...], unifying: tuple[str, ...] | None
) -> Iterator[list[FunnelContact]]:
    if unifying is not None and job is not None:
        yield from funnel_people(store, job=job, connections=[c for c in unifying if not chosen or c in chosen])
        return
    for record in funnel_contacts(store, job=job, connections=list(chosen) if chosen else None):
        yield [record]


def _rules_of(config: Config, job: str | None) -> Rules:
    from pathlib import Path

    from connector.jobs import find_job
    from connector.lifecycle.rules import load_rules

    if job:
        try:
            found = find_job(config.jobs_dir, job)
        except Exception:  # a job known only from the store (its file removed): the config's rules
            return load_rules(config.rules_path)
        if found.rules:
            return load_rules(config.resolve(Path(found.rules)))
    return load_rules(config.rules_path)


def _mappings_of(config: Config) -> dict[str, CrmMapping]:
    from connector.mapping import load_mapping

    found: dict[str, CrmMapping] = {}
    for name in config.connections:
        try:
            found[name] = load_mapping(config.mapping_path(name))
        except Exception:  # a broken mapping is `validate`'s to report; its contacts are counted by their rung
            continue
    return found


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} d"


def funnel_rows(funnel: Funnel) -> list[list[str]]:
    """The table's rows as text (the terminal table, the CSV and the HTML page share them)."""
    rows = [
        [
            rung.stage.value,
            str(rung.on),
            str(rung.reached),
            str(rung.entered),
            str(rung.converted) if rung.stage.rank != LADDER[-1].rank else "–",
            _pct(rung.conversion),
            _days(rung.median_days),
        ]
        for rung in funnel.rungs
    ]
    rows.append(["beyond the ladder", str(funnel.beyond_ladder), "–", "–", "–", "–", "–"])
    rows.append(["no rung", str(funnel.off_ladder), "–", "–", "–", "–", "–"])
    return rows


HEADERS = ["rung", "on it", "reached", "entered", "moved on", "conversion", "median days in rung"]


def funnel_table(funnel: Funnel) -> Table:
    # the job name is the user's input: a Text title is never read as markup
    table = Table(title=Text(f"Funnel ({funnel.scope})"))
    for index, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if index == 0 else "right")
    for row in funnel_rows(funnel):
        table.add_row(*row)
    table.caption = Text(
        f"{funnel.total} contacts. " + " ".join(f"{k}: {v}" for k, v in COLUMNS.items() if k != "rung")
    )
    return table


def funnel_csv(funnel: Funnel) -> str:
    """The rows as CSV with a header line (numbers without units: days as decimals, shares 0-1)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rung", "on_it", "reached", "entered", "moved_on", "conversion", "median_days_in_rung"])
    for rung in funnel.rungs:
        data = rung.as_json()
        writer.writerow(
            [data["rung"], data["on_it"], data["reached"], data["entered"], data["moved_on"],
             "" if data["conversion"] is None else data["conversion"],
             "" if data["median_days_in_rung"] is None else data["median_days_in_rung"]]
        )  # fmt: skip
    writer.writerow(["beyond the ladder", funnel.beyond_ladder, "", "", "", "", ""])
    writer.writerow(["no rung", funnel.off_ladder, "", "", "", "", ""])
    return buffer.getvalue()


def funnel_html(funnel: Funnel, *, generated_at: datetime) -> str:
    """A self-contained HTML page (no script, no external file) with an inline SVG funnel chart."""
    width, bar_height, gap, label = 720, 34, 10, 110
    top = max((rung.reached for rung in funnel.rungs), default=0) or 1
    bars = []
    for index, rung in enumerate(funnel.rungs):
        y = index * (bar_height + gap)
        full = (width - label - 80) * rung.reached / top
        part = (width - label - 80) * rung.on / top
        bars.append(
            f'<text x="{label - 8}" y="{y + bar_height / 2 + 5}" text-anchor="end">{html.escape(rung.stage.value)}</text>'
            f'<rect x="{label}" y="{y}" width="{full:.1f}" height="{bar_height}" fill="#c7d2fe"><title>reached: '
            f"{rung.reached}</title></rect>"
            f'<rect x="{label}" y="{y}" width="{part:.1f}" height="{bar_height}" fill="#4f46e5"><title>on it: '
            f"{rung.on}</title></rect>"
            f'<text x="{label + full + 6:.1f}" y="{y + bar_height / 2 + 5}">{rung.reached}</text>'
        )
    height = len(funnel.rungs) * (bar_height + gap)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="14" role="img" '
        f'aria-label="Funnel chart">{"".join(bars)}</svg>'
    )
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in HEADERS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in funnel_rows(funnel)
    )
    definitions = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in COLUMNS.items())
    title = html.escape(f"crmsync funnel — {funnel.scope}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2rem; color: #111; }}
table {{ border-collapse: collapse; margin-top: 1.5rem; }}
td, th {{ border: 1px solid #ddd; padding: .35rem .8rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
dt {{ font-weight: bold; margin-top: .5rem; }}
.legend span {{ display: inline-block; width: 1rem; height: 1rem; vertical-align: middle; margin: 0 .3rem 0 1rem; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{funnel.total} contacts, {funnel.beyond_ladder} beyond the ladder, {funnel.off_ladder} with no rung.
Generated {generated_at.isoformat(timespec="seconds")}.</p>
<p class="legend"><span style="background:#4f46e5"></span>on the rung now<span style="background:#c7d2fe"></span>reached it (on it or higher)</p>
{svg}
<table>
<tr>{head}</tr>
{rows}
</table>
<h2>What each column means</h2>
<dl>{definitions}</dl>
</body></html>
"""
