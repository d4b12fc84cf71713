"""The funnel: contacts per rung, conversion between rungs, median time in each rung.

"On" a rung is where the CRM shows the contact now; "reached" counts the
contacts on that rung or higher (contacts can skip rungs, so the ladder is
read by rank). Conversion from one rung to the next is reached(next) /
reached(this). Time in a rung comes from the history: from the change that
put a contact on it to the change that moved it on (contacts still on it are
not counted).
"""

from __future__ import annotations

import html
import statistics
from dataclasses import dataclass
from datetime import datetime

from rich.table import Table
from rich.text import Text
from sqlalchemy import and_, func, select

from connector.model import LADDER, Stage
from connector.store import Store
from connector.store.tables import contacts, job_contacts, stage_changes


@dataclass(frozen=True, slots=True)
class RungFigures:
    stage: Stage
    on: int
    reached: int
    conversion: float | None
    """Share of those who reached this rung that reached the next one (None for the top rung)."""
    median_days: float | None
    moved_on: int
    """Contacts whose time in this rung is known (they left it)."""


@dataclass(frozen=True, slots=True)
class Funnel:
    rungs: list[RungFigures]
    total: int
    off_ladder: int
    """Contacts with no rung (or a CRM value outside the ladder)."""
    job: str | None


def build_funnel(store: Store, *, job: str | None = None) -> Funnel:
    with store.begin() as db:
        query = select(contacts.c.stage, func.count()).group_by(contacts.c.stage)
        if job:
            query = query.select_from(
                contacts.join(
                    job_contacts,
                    and_(
                        job_contacts.c.connection == contacts.c.connection,
                        job_contacts.c.crm_id == contacts.c.crm_id,
                        job_contacts.c.job == job,
                    ),
                )
            )
        on = {stage: int(count) for stage, count in db.execute(query).all()}
        durations: dict[str, list[float]] = {}
        changes = select(
            stage_changes.c.connection,
            stage_changes.c.crm_id,
            stage_changes.c.from_stage,
            stage_changes.c.to_stage,
            stage_changes.c.changed_at,
        ).order_by(stage_changes.c.connection, stage_changes.c.crm_id, stage_changes.c.changed_at, stage_changes.c.id)
        if job:
            changes = changes.where(stage_changes.c.job == job)
        previous: tuple[str, str, str, datetime] | None = None
        for row in db.execution_options(stream_results=True, yield_per=2000).execute(changes):
            key = (row.connection, row.crm_id)
            if previous and previous[:2] == key and previous[2] == row.from_stage:
                days = (row.changed_at - previous[3]).total_seconds() / 86_400
                durations.setdefault(row.from_stage, []).append(days)
            previous = (row.connection, row.crm_id, row.to_stage, row.changed_at)
    total = sum(on.values())
    reached = []
    for stage in LADDER:
        reached.append(sum(on.get(s.value, 0) for s in LADDER if s.rank >= stage.rank))
    rungs = []
    for index, stage in enumerate(LADDER):
        nxt = reached[index + 1] if index + 1 < len(LADDER) else None
        spent = durations.get(stage.value, [])
        rungs.append(
            RungFigures(
                stage=stage,
                on=on.get(stage.value, 0),
                reached=reached[index],
                conversion=(nxt / reached[index]) if nxt is not None and reached[index] else None,
                median_days=statistics.median(spent) if spent else None,
                moved_on=len(spent),
            )
        )
    return Funnel(rungs=rungs, total=total, off_ladder=total - reached[0], job=job)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} d"


def funnel_table(funnel: Funnel) -> Table:
    # the job name is the user's input: a Text title is never read as markup
    title = Text(f"Funnel ({funnel.job})" if funnel.job else "Funnel (all jobs)")
    table = Table(title=title)
    table.add_column("rung")
    table.add_column("on it", justify="right")
    table.add_column("reached", justify="right")
    table.add_column("→ next", justify="right")
    table.add_column("median time in rung", justify="right")
    for rung in funnel.rungs:
        table.add_row(
            rung.stage.value,
            str(rung.on),
            str(rung.reached),
            _pct(rung.conversion),
            f"{_days(rung.median_days)} (n={rung.moved_on})" if rung.moved_on else "–",
        )
    table.caption = f"{funnel.total} contacts, {funnel.off_ladder} with no rung"
    return table


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
    rows = "".join(
        f"<tr><td>{rung.stage.value}</td><td>{rung.on}</td><td>{rung.reached}</td>"
        f"<td>{_pct(rung.conversion)}</td><td>{_days(rung.median_days)}</td><td>{rung.moved_on}</td></tr>"
        for rung in funnel.rungs
    )
    title = html.escape(f"crmsync funnel — {funnel.job}" if funnel.job else "crmsync funnel — all jobs")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2rem; color: #111; }}
table {{ border-collapse: collapse; margin-top: 1.5rem; }}
td, th {{ border: 1px solid #ddd; padding: .35rem .8rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.legend span {{ display: inline-block; width: 1rem; height: 1rem; vertical-align: middle; margin: 0 .3rem 0 1rem; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{funnel.total} contacts, {funnel.off_ladder} with no rung. Generated {generated_at.isoformat(timespec="seconds")}.</p>
<p class="legend"><span style="background:#4f46e5"></span>on the rung now<span style="background:#c7d2fe"></span>reached it (on it or higher)</p>
{svg}
<table>
<tr><th>rung</th><th>on it</th><th>reached</th><th>conversion to next</th><th>median time in rung</th><th>moved on</th></tr>
{rows}
</table>
</body></html>
"""
