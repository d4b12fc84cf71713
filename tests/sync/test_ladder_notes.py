"""History records why a contact beyond the ladder gets nothing written: once each time it gets there.

Through ``run_job`` on every store backend, then ``crmsync history`` and
``crmsync explain``: the note is not a stage change (the change counts and
the funnel never see it), the first run notes it, later runs do not, and a
contact that comes back inside the ladder and goes beyond it again is noted
once more.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from connector.report import build_funnel
from connector.store import Store
from connector.store.tables import ladder_notes, stage_changes
from tests.fakes import FakeCrm
from tests.sync.conftest import Runner
from tests.sync.test_cli import Project, cli, setup  # noqa: F401  (the CLI fixture)

WHY = "CRM lifecyclestage is 'customer', outside the ladder: the CRM's stage wins, nothing written"


def rows(store: Store, table: object, crm_id: str) -> int:
    with store.begin() as db:
        return int(
            db.execute(select(func.count()).select_from(table).where(table.c.crm_id == crm_id)).scalar_one()  # type: ignore[attr-defined]
        )


def test_given_a_customer_when_runs_come_and_go_then_history_says_why_once_each_time_it_is_beyond(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    crm.set_value("c0004", "lifecyclestage", "customer")  # the rules alone say sql
    runner()
    runner()
    third = runner(full=True)  # every contact decided again: still beyond, no second note
    assert third.counts["hubspot"].decided >= 1
    assert rows(store, ladder_notes, "c0004") == 1
    assert rows(store, stage_changes, "c0004") == 0  # not a stage change

    # a person clears the stage: inside the ladder again, crmsync writes sql and the note is closed
    crm.set_value("c0004", "lifecyclestage", None)
    runner()
    assert crm.stage_of("c0004") == "sql"
    with store.begin() as db:
        [back] = db.execute(select(ladder_notes.c.back_at).where(ladder_notes.c.crm_id == "c0004")).scalars()
    assert back is not None
    assert rows(store, stage_changes, "c0004") == 1

    # a customer again later: noted once more, and only once
    crm.set_value("c0004", "lifecyclestage", "customer")
    runner()
    runner()
    assert rows(store, ladder_notes, "c0004") == 2
    assert rows(store, stage_changes, "c0004") == 1
    funnel = build_funnel(store, config=runner.config)
    assert funnel.beyond_ladder == 1


def test_history_and_explain_show_why_nothing_was_written_apart_from_the_stage_changes(setup: Project) -> None:  # noqa: F811
    setup.crm.set_value("c0004", "lifecyclestage", "customer")
    setup.crm.set_value("c0010", "lifecyclestage", "opportunity <script>")
    assert cli(setup, "run", "hubspot-lifecycle")[0] == 0
    assert cli(setup, "run", "hubspot-lifecycle")[0] == 0

    code, output = cli(setup, "history", "--json")
    assert code == 0
    lines = [json.loads(line) for line in output.splitlines()]
    notes = [line for line in lines if line.get("kind") == "beyond_ladder"]
    assert sorted(note["contact"] for note in notes) == ["hubspot:c0004", "hubspot:c0010"]
    assert {note["reason"] for note in notes if note["contact"] == "hubspot:c0004"} == {WHY}
    assert all(line["to"] not in (None, "") for line in lines if line.get("kind") != "beyond_ladder")
    # --stage asks for stage changes: no note is one
    code, output = cli(setup, "history", "--stage", "sql", "--json")
    assert code == 0 and "beyond_ladder" not in output
    assert "hubspot:c0004" not in output and "hubspot:c0010" not in output

    code, output = cli(setup, "explain", "person4@example.fr")
    assert code == 0, output
    assert "0 change(s), 1 time(s) beyond the ladder" in output
    assert WHY in output


def test_the_dashboard_contact_page_shows_why_nothing_was_written_escaped(
    runner: Runner, crm: FakeCrm, store: Store
) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from connector.web.app import create_app

    crm.set_value("c0004", "lifecyclestage", "<script>alert(1)</script>")
    runner()
    app = create_app(store, config=runner.config, token=None, clock=lambda: runner.now)
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        page = client.get("/contacts", params={"key": "hubspot:c0004"}).text

    assert "Beyond the ladder: why nothing was written" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
