"""`crmsync validate` and `crmsync classify`, through the real command line."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.cli.check import input_lines

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped config, mappings and jobs."""
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    shutil.copytree(ROOT / "jobs", tmp_path / "jobs")
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.toml")
    return tmp_path


def invoke(project: Path, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--config", str(project / "config.toml"), *args], input=stdin)


def test_validate_shipped_files(project: Path) -> None:
    result = invoke(project, "validate")
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_lists_every_problem_with_file_and_key(project: Path) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text().replace("burst_limit = 190", "burst_limit = 0\nburst_limt = 3"))
    (project / "jobs" / "hubspot-lifecycle.toml").write_text(
        'name = "hubspot-lifecycle"\nconnections = ["hubspot", "pipedrive"]\nschedule = "every day"\n'
    )
    result = invoke(project, "validate")
    assert result.exit_code == 2
    assert f"{config}: connections.hubspot.burst_limit" in result.output
    assert "connections.hubspot.burst_limt: unknown key" in result.output
    assert "hubspot-lifecycle.toml: schedule" in result.output


def test_validate_checks_jobs_rules_and_mappings_together(project: Path) -> None:
    (project / "jobs" / "salesforce-lifecycle.toml").write_text(
        'name = "salesforce-lifecycle"\nconnections = ["pipedrive"]\n'
    )
    rules = project / "mappings" / "lifecycle.toml"
    rules.write_text(rules.read_text().replace('requires = "mql"', 'requires = "meeting"'))
    mapping = project / "mappings" / "salesforce.toml"
    mapping.write_text(mapping.read_text().replace('kind = "email_reply"', 'kind = "email_replied"'))
    result = invoke(project, "validate")
    assert result.exit_code == 2
    assert "salesforce-lifecycle.toml: connections.0: no connection 'pipedrive'" in result.output
    assert "lifecycle.toml: rungs.sql.requires" in result.output
    assert "salesforce.toml: activities.1.kind" in result.output


def test_validate_missing_config(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(tmp_path / "nope.toml"), "validate"])
    assert result.exit_code == 2
    assert "file not found" in result.output


CONTACTS = [
    {
        "email": "a.martin@example.fr",
        "company": {"industry": "logistics", "employees": 120},
        "activities": [{"kind": "content_download", "occurred_at": "2026-11-02T09:30:00Z", "detail": "Guide"}],
    },
    {"email": "b@example.com", "company": {"industry": "software", "employees": 3}},
    {"email": "c@example.com", "company": {"industry": "retail", "employees": 40}, "stage": "sql"},
]


def test_classify_json_lines_in_order(project: Path) -> None:
    stdin = "\n".join(json.dumps(c) for c in CONTACTS) + "\n"
    result = invoke(project, "classify", "--as-of", "2026-11-20T00:00:00Z", stdin=stdin)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["email"], line["stage"]) for line in lines] == [
        ("a.martin@example.fr", "lead"),
        ("b@example.com", None),
        ("c@example.com", "sql"),
    ]
    assert set(lines[0]) == {"email", "stage", "reasons"}
    assert lines[0]["reasons"]


def test_classify_explain_adds_rule_and_facts(project: Path) -> None:
    result = invoke(project, "classify", "--as-of", "2026-11-20", "--explain", stdin=json.dumps(CONTACTS[0]) + "\n")
    line = json.loads(result.stdout)
    assert line["rule"] == "lead"
    assert line["facts"][0] == {
        "source": "activity",
        "name": "content_download",
        "value": "Guide",
        "at": "2026-11-02T09:30:00Z",
    }


def test_classify_bad_line_is_reported_and_others_classified(project: Path) -> None:
    stdin = "\n".join([json.dumps(CONTACTS[0]), "{not json", json.dumps({"email": 3}), json.dumps(CONTACTS[1])])
    result = invoke(project, "classify", "--as-of", "2026-11-20", stdin=stdin + "\n")
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 2
    assert "line 2:" in result.stderr and "line 3: email" in result.stderr


def test_classify_with_rules_option_and_bad_rules(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[rungs.lead]\n")
    result = invoke(project, "classify", "--rules", str(bad), stdin="{}\n")
    assert result.exit_code == 2
    assert "rungs.lead" in result.stderr


def test_classify_bad_as_of(project: Path) -> None:
    result = invoke(project, "classify", "--as-of", "yesterday", stdin="{}\n")
    assert result.exit_code == 2


def test_classify_reports_a_line_over_the_limit_and_a_line_not_in_utf8_and_goes_on(project: Path) -> None:
    good = json.dumps(CONTACTS[1]).encode()
    huge = b'{"email": "' + b"x" * 1_200_000 + b'@example.com"}'
    stdin = b"\n".join([good, huge, b'{"email": "caf\xe9@example.com"}', good, b""])

    result = runner.invoke(app, ["--config", str(project / "config.toml"), "classify", "--as-of", "2026-11-20"],
                           input=stdin)  # fmt: skip

    assert result.exit_code == 1
    assert [json.loads(line)["email"] for line in result.stdout.splitlines()] == ["b@example.com", "b@example.com"]
    assert "line 2: longer than 1,000,000 bytes" in result.stderr
    assert "line 3:" in result.stderr and "2 line(s) could not be classified" in result.stderr


def test_classify_never_holds_more_than_the_limit_of_a_long_line() -> None:
    class Recording(io.BytesIO):
        largest = 0

        def readline(self, size: int | None = -1) -> bytes:
            chunk = super().readline(size)
            Recording.largest = max(Recording.largest, len(chunk))
            return chunk

    stream = Recording(b"a" * 50_000 + b"\nshort\n" + b"b" * 30_000)

    lines = list(input_lines(stream, limit=1_000))

    assert lines == [(1, None), (2, b"short\n"), (3, None)]
    assert Recording.largest <= 65_536


def test_classify_reports_a_lone_surrogate_as_a_bad_line_and_goes_on(project: Path) -> None:
    stdin = '{"email": "a@example.com", "first_name": "\\ud800"}\n' + json.dumps(CONTACTS[1]) + "\n"

    result = invoke(project, "classify", "--as-of", "2026-11-20", stdin=stdin)

    assert result.exit_code == 1
    assert "line 1:" in result.stderr
    assert json.loads(result.stdout)["email"] == "b@example.com"
