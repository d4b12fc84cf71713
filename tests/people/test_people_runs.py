"""A unifying job over two CRMs (fakes speaking the client protocol), on SQLite and PostgreSQL: links that
survive e-mail changes, manual links and unlinks, conflicts reported once, forward only per record, and
exactly-once writes when a run is killed between any two steps."""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from connector.cli.app import app
from connector.cli.services import Services
from connector.store import Store, open_store
from connector.store.tables import leases, person_conflicts, person_links
from connector.store.values import RecordKey
from connector.sync import PageGroup
from tests.fakes import FakeCrm, SimulatedCrash
from tests.people.conftest import UNIFIED, new_crms
from tests.stores import StoreUrls
from tests.sync.conftest import ICP, NOW, REPO, Runner, history, make_config, open_dead_letters

DAY = timedelta(days=1)
HS = "70114827301"
SF = "0035g00000AbCdEAAZ"
LEAD = "00Q5g00000XyZaBEAV"
ANNE = "anne.martin@transports-martin.fr"


def anne(crms: dict[str, FakeCrm]) -> None:
    """Anne: webinar and two downloads in HubSpot (mql), nothing yet in Salesforce."""
    hs, sf = crms["hubspot"], crms["salesforce"]
    hs.add_contact(HS, ANNE, company=ICP)
    sf.add_contact(SF, ANNE.upper(), company=ICP, object_type="Contact")
    hs.add_activity("9101", "webinar_attended", NOW - 20 * DAY, [HS], "Cutting transport costs")
    hs.add_activity("9102", "content_download", NOW - 18 * DAY, [HS], "Guide")
    hs.add_activity("9103", "content_download", NOW - 15 * DAY, [HS], "Case study")


def person_of(store: Store, connection: str, crm_id: str) -> str | None:
    with store.begin() as db:
        return store.people.person_of(db, RecordKey(connection, crm_id))


def cli(runner: Runner, tmp_path: Path, *args: str) -> Any:
    config = tmp_path / "config.toml"
    if not config.exists():
        config.write_text(
            f'[store]\nurl = "{runner.config.store_url}"\n[paths]\nmappings = "{REPO / "mappings"}"\n'
            f'jobs = "jobs"\nrules = "{REPO / "mappings" / "lifecycle.toml"}"\n'
            '[connections.hubspot]\ntype = "hubspot"\ntoken_env = "CRMSYNC_TEST_HUBSPOT_TOKEN"\n'
            '[connections.salesforce]\ntype = "salesforce"\ninstance_url = "https://example.my.salesforce.com"\n'
        )
        (tmp_path / "jobs").mkdir(exist_ok=True)
    services = Services(clock=lambda: NOW)
    return CliRunner().invoke(app, ["people", *args, "--config", str(config)], obj=services)


def test_given_a_linked_person_when_her_hubspot_address_changes_then_she_stays_one_person(
    runner: Runner, crms: dict[str, FakeCrm], store: Store
) -> None:
    anne(crms)
    runner(UNIFIED)
    assert crms["hubspot"].stage_of(HS) == "mql" and crms["salesforce"].stage_of(SF) == "MQL"
    crms["hubspot"].edit_contact(HS, email="anne@new-employer.example")
    crms["salesforce"].add_activity("00T5g00000DmReQAAR", "demo_request", NOW - 2 * DAY, [SF], "Demo")

    runner(UNIFIED)

    assert person_of(store, "hubspot", HS) == person_of(store, "salesforce", SF)
    assert crms["hubspot"].stage_of(HS) == "sql" and crms["salesforce"].stage_of(SF) == "SQL"


def test_an_unlink_by_hand_is_kept_by_every_later_run_and_a_link_by_hand_joins_them_again(
    runner: Runner, crms: dict[str, FakeCrm], store: Store, tmp_path: Path
) -> None:
    anne(crms)
    runner(UNIFIED)
    unlinked = cli(runner, tmp_path, "unlink", f"salesforce:{SF}")
    assert unlinked.exit_code == 0, unlinked.output
    crms["salesforce"].add_activity("00T5g00000DmReQAAR", "demo_request", NOW - 2 * DAY, [SF], "Demo")

    runner(UNIFIED, full=True)  # everything read and matched again

    with store.begin() as db:
        assert store.people.conflicts(db) == []  # taken apart by hand: no clash to report
    assert person_of(store, "hubspot", HS) != person_of(store, "salesforce", SF)
    assert crms["hubspot"].stage_of(HS) == "mql"  # her Salesforce demo request is another person's now
    assert crms["salesforce"].stage_of(SF) == "MQL"  # forward only: alone it is a lead

    linked = cli(runner, tmp_path, "link", f"salesforce:{SF}", f"hubspot:{HS}")
    assert linked.exit_code == 0, linked.output
    runner(UNIFIED)

    assert person_of(store, "hubspot", HS) == person_of(store, "salesforce", SF)
    assert crms["hubspot"].stage_of(HS) == "sql" and crms["salesforce"].stage_of(SF) == "SQL"
    shown = cli(runner, tmp_path, "show", ANNE, "--json")
    assert shown.exit_code == 0, shown.output
    records = {r["record"]: r["how"] for r in json.loads(shown.output)["records"]}
    assert records == {f"hubspot:{HS}": "email", f"salesforce:{SF}": "manual"}  # the one moved by hand


def test_conflicts_are_stored_and_logged_once_with_what_was_done(
    runner: Runner, crms: dict[str, FakeCrm], store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    anne(crms)
    # the same address on an open Lead too; and a Salesforce record set to Meeting by hand for Bruno
    crms["salesforce"].add_contact(LEAD, f"  {ANNE} ", company=ICP, object_type="Lead")
    crms["hubspot"].add_contact("70114827399", "bruno@transports-martin.fr", company=ICP)
    crms["hubspot"].add_activity("9201", "content_download", NOW - 5 * DAY, ["70114827399"], "Guide")
    crms["salesforce"].add_contact(
        "0035g00000BrUnOAAZ", "bruno@transports-martin.fr", company=ICP, object_type="Contact", stage_value="Meeting"
    )
    caplog.set_level(logging.WARNING, logger="connector.sync.run")

    runner(UNIFIED)
    runner(UNIFIED, full=True)

    with store.begin() as db:
        kinds = Counter(db.execute(select(person_conflicts.c.kind)).scalars())
    assert kinds == {"duplicate_email": 1, "hand_set_higher": 1}
    logged = Counter(r.__dict__["kind"] for r in caplog.records if r.__dict__.get("event") == "person_conflict")
    assert logged == kinds
    # both Salesforce records are Anne and get her stage; Bruno's hand-set Meeting stays and is not copied
    assert crms["salesforce"].stage_of(SF) == crms["salesforce"].stage_of(LEAD) == "MQL"
    assert crms["salesforce"].stage_of("0035g00000BrUnOAAZ") == "Meeting"
    assert crms["hubspot"].stage_of("70114827399") == "lead"
    listed = cli(runner, tmp_path, "conflicts", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(row) for row in listed.output.splitlines()]
    assert sorted(row["kind"] for row in rows) == ["duplicate_email", "hand_set_higher"]
    assert any("not copied" in row["action"] for row in rows)


def test_people_commands_name_what_is_wrong(runner: Runner, crms: dict[str, FakeCrm], tmp_path: Path) -> None:
    anne(crms)
    runner(UNIFIED)
    assert cli(runner, tmp_path, "link", "hubspot", f"salesforce:{SF}").exit_code == 2
    missing = cli(runner, tmp_path, "unlink", "hubspot:99999999999")
    assert missing.exit_code == 1 and "no stored record" in missing.output
    assert cli(runner, tmp_path, "show", "nobody@example.fr").exit_code == 1
    listed = cli(runner, tmp_path, "list", "--json")
    assert [json.loads(row)["records"] for row in listed.output.splitlines()] == [2]


# -- crash safety ----------------------------------------------------------------------------------
SIZES = {"page_size": 4, "activity_page_size": 5, "write_batch_size": 3}
PAGES = PageGroup(max_pages=2, max_seconds=float("inf"))
POINTS = ("contacts_page", "activities_page", "write_before", "write_after")


def populate_people(crms: dict[str, FakeCrm]) -> None:
    """Nine people: in HubSpot interest signals, in Salesforce hand-raises and meetings, one address each."""
    hs, sf = crms["hubspot"], crms["salesforce"]
    for n in range(9):
        email = f"person{n}@transports-martin.fr"
        hs_id, sf_id = f"7011482{n:04d}", f"0035g00000Pe{n:04d}AAZ"
        hs.add_contact(hs_id, email, company=ICP)
        sf.add_contact(sf_id, email.upper(), company=ICP, object_type="Contact")
        for k in range(n % 4):
            hs.add_activity(f"91{n}{k}", "content_download", NOW - (30 - k) * DAY, [hs_id], f"Guide {k}")
        if n % 3 == 1:
            sf.add_activity(f"00T5g0000{n:04d}DAAR", "demo_request", NOW - 3 * DAY, [sf_id], "Demo")
        if n % 3 == 2:
            sf.add_activity(f"00U5g0000{n:04d}MAAR", "meeting_booked", NOW - 2 * DAY, [sf_id], "Intro")
    sf.reject[f"0035g00000Pe{5:04d}AAZ"] = ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value")


def world(tmp_path: Path, url: str) -> tuple[dict[str, FakeCrm], Store, Runner]:
    crms = new_crms(**SIZES)
    populate_people(crms)
    store = open_store(url)
    return crms, store, Runner(make_config(tmp_path, url), store, crms)


def outcome(crms: dict[str, FakeCrm], store: Store) -> tuple[Any, ...]:
    return crms["hubspot"].snapshot(), crms["salesforce"].snapshot(), history(store), open_dead_letters(store)


@pytest.mark.long
def test_a_unifying_run_killed_between_any_two_steps_then_run_again_writes_and_records_once(
    tmp_path: Path, store_urls: StoreUrls
) -> None:
    crms, store, runner = world(tmp_path, store_urls.new("clean"))
    events: list[object] = []
    runner(UNIFIED, chunk_size=4, pages=PAGES, progress=events.append)
    expected = outcome(crms, store)
    points = {name: Counter(crm._points) for name, crm in crms.items()}
    store.close()
    assert {stage for stage in expected[0].values() for stage in [stage["crmsync_lifecycle_stage"]]} >= {
        "meeting",
        "sql",
        "mql",
    }
    cases: list[tuple[str, str, int]] = [("event", "", k) for k in range(1, len(events) + 1, 2)]
    cases += [(point, name, n) for name in crms for point in POINTS for n in range(1, points[name][point] + 1)]
    failures = []
    for index, (point, name, k) in enumerate(cases):
        crms, store, runner = world(tmp_path, store_urls.new(f"crash{index}"))
        progress = None
        if point == "event":
            progress = _crash_after(k)
        else:
            crms[name].crash_at = {point: k}
        with pytest.raises(SimulatedCrash):
            runner(UNIFIED, chunk_size=4, pages=PAGES, progress=progress)
        for crm in crms.values():
            crm.crash_at = {}
        with store.begin() as db:
            db.execute(update(leases).values(expires_at=NOW - timedelta(hours=1)))
        assert runner(UNIFIED, chunk_size=4).status == "completed"
        if outcome(crms, store) != expected:
            failures.append(f"{point} {name} #{k}")
        with store.begin() as db:
            assert db.execute(text("SELECT count(*) FROM pending_writes")).scalar_one() == 0
            assert len(set(db.execute(select(person_links.c.person_id)).scalars())) == 9
        store.close()
    assert failures == []


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_unifying_run_killed_after_a_crm_applied_a_batch_records_each_change_once(
    tmp_path: Path, store_url: str, crm: str
) -> None:
    crms, store, runner = world(tmp_path, store_url)
    crms[crm].crash_at = {"write_after": 1}
    with pytest.raises(SimulatedCrash):
        runner(UNIFIED, chunk_size=4)
    applied = [u.crm_id for u in crms[crm].writes[0] if u.crm_id not in crms[crm].reject]
    crms[crm].crash_at = {}
    with store.begin() as db:
        db.execute(update(leases).values(expires_at=NOW - timedelta(hours=1)))

    result = runner(UNIFIED, chunk_size=4)

    assert result.counts[crm].recovered == len(applied) > 0
    changed = [(row[0], row[1]) for row in history(store)]
    assert len(changed) == len(set(changed))
    assert runner(UNIFIED).counts[crm].written == 0
    store.close()


def _crash_after(k: int) -> Any:
    seen = {"n": 0}

    def progress(_event: object) -> None:
        seen["n"] += 1
        if seen["n"] == k:
            raise SimulatedCrash(f"after event {k}")

    return progress


def test_explain_shows_her_person_her_records_and_which_record_each_fact_came_from(
    runner: Runner, crms: dict[str, FakeCrm], tmp_path: Path
) -> None:
    anne(crms)
    crms["salesforce"].add_activity("00U5g00000MeEtAAAR", "meeting_booked", NOW - 2 * DAY, [SF], "Intro")
    crms["hubspot"].add_activity("9104", "email_reply", NOW - 3 * DAY, [HS], "Re: pricing")
    crms["salesforce"].add_activity("00T5g00000CoPyAAAR", "email_reply", NOW - 3 * DAY, [SF], "Email: RE: Pricing")
    runner(UNIFIED)
    cli(runner, tmp_path, "list")  # writes the config file
    (tmp_path / "jobs" / "unified.toml").write_text(
        'name = "unified"\nconnections = ["hubspot", "salesforce"]\nunify = true\n'
    )
    result = CliRunner().invoke(
        app, ["explain", f"hubspot:{HS}", "--config", str(tmp_path / "config.toml")], obj=Services(clock=lambda: NOW)
    )

    assert result.exit_code == 0, result.output
    text_out = " ".join(result.output.split())
    assert "rules now on her evidence" in text_out and "meeting (rule meeting" in text_out
    assert f"salesforce:{SF}" in text_out and f"hubspot:{HS}" in text_out
    assert f"meeting_booked = Intro {(NOW - 2 * DAY).date().isoformat()} from salesforce:{SF}" in text_out
    assert (
        "left out, a copy: email_reply Email: RE: Pricing" in text_out and f"(the same as in hubspot:{HS})" in text_out
    )
    assert "history (2 change(s))" in text_out  # her two records' changes


def test_validate_names_the_job_file_and_key_of_a_unify_with_one_connection(runner: Runner, tmp_path: Path) -> None:
    cli(runner, tmp_path, "list")  # writes the config file
    (tmp_path / "jobs" / "alone.toml").write_text('name = "alone"\nconnections = ["hubspot"]\nunify = true\n')
    result = CliRunner().invoke(app, ["validate", "--config", str(tmp_path / "config.toml")], obj=Services())
    assert result.exit_code == 2
    assert "alone.toml" in result.output and "unify" in result.output and "two connections" in result.output


def test_the_funnel_and_the_history_of_a_unifying_job_count_people_not_records(
    runner: Runner, crms: dict[str, FakeCrm], store: Store, tmp_path: Path
) -> None:
    from connector.report import build_funnel

    anne(crms)
    crms["salesforce"].add_activity("00U5g00000MeEtAAAR", "meeting_booked", NOW - 2 * DAY, [SF], "Intro")
    crms["hubspot"].add_contact("70114827399", "bruno@transports-martin.fr", company=ICP)  # only in HubSpot
    runner(UNIFIED)
    cli(runner, tmp_path, "list")  # writes the config file
    (tmp_path / "jobs" / "unified.toml").write_text(
        'name = "unified"\nconnections = ["hubspot", "salesforce"]\nunify = true\n'
    )
    from connector.config import load_config

    config = load_config(tmp_path / "config.toml")

    people = build_funnel(store, job="unified", config=config, now=NOW)
    records = build_funnel(store, job="unified", config=config, now=NOW, unify=False)

    assert (people.total, records.total) == (2, 3)
    assert people.people and not records.people
    on = {rung.stage.value: rung.on for rung in people.rungs}
    assert on["meeting"] == 1 and on["suspect"] == 1  # Anne once, though both CRMs show meeting
    assert {rung.stage.value: rung.on for rung in records.rungs}["meeting"] == 2
    assert {rung.stage.value: rung.reached for rung in people.rungs}["meeting"] == 1

    shown = CliRunner().invoke(
        app, ["history", "--job", "unified", "--config", str(tmp_path / "config.toml")], obj=Services()
    )
    assert shown.exit_code == 0, shown.output
    assert "stage changes (3, 2 people)" in shown.output


def test_a_dry_run_of_a_unifying_job_plans_her_writes_in_both_crms_and_keeps_nothing(
    runner: Runner, crms: dict[str, FakeCrm], store: Store
) -> None:
    anne(crms)
    crms["salesforce"].add_activity("00U5g00000MeEtAAAR", "meeting_booked", NOW - 2 * DAY, [SF], "Intro")

    result = runner(UNIFIED, dry_run=True)

    assert sorted((w.connection, w.after) for w in result.planned) == [
        ("hubspot", "meeting"),
        ("salesforce", "Meeting"),
    ]
    assert crms["hubspot"].writes == crms["salesforce"].writes == []
    with store.begin() as db:
        assert db.execute(select(person_links.c.person_id)).all() == []


def test_people_commands_print_crm_text_visible_never_as_terminal_escapes(
    runner: Runner, crms: dict[str, FakeCrm], tmp_path: Path
) -> None:
    hostile = "eve\x1b]8;;https://evil.example\x07\u202e@transports-martin.fr"
    crms["hubspot"].add_contact("70114827355", hostile, company=ICP)
    crms["salesforce"].add_contact("0035g00000EvEeEAAZ", hostile, company=ICP, object_type="Contact")
    crms["salesforce"].add_contact("00Q5g00000EvEeEAAZ", hostile, company=ICP, object_type="Lead")
    runner(UNIFIED)

    outputs = [
        cli(runner, tmp_path, *args).output for args in (["list"], ["show", "hubspot:70114827355"], ["conflicts"])
    ]

    for output in outputs:
        assert "\x1b" not in output and "\u202e" not in output and "\x07" not in output
    assert "\\x1b" in outputs[0] and "1 record" not in outputs[0] and "3 record(s)" in outputs[0]
    assert "duplicate_email" in outputs[2]
