"""Alerts reach a webhook receiver and an SMTP server for each trigger, once per cool-down, with no secret."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.alerts.dispatch import Alerter
from connector.alerts.settings import AlertSettings, EmailTarget, WebhookTarget
from connector.alerts.triggers import RecordedRun, Trigger, run_alerts, stale_alert
from connector.cli.app import app
from connector.cli.services import Services
from connector.config import Config
from connector.errors import QuotaExhausted
from connector.jobs import Job
from connector.scheduler import Scheduler
from connector.store import open_store
from tests.alerts.conftest import Mailbox, WebhookReceiver
from tests.sync.conftest import JOB, NOW, REPO, Runner, make_config, new_crm, populate

TOKEN = "pat-na1-SECRET-token-0000"
HOOK_SECRET = "T000/B000/SECRETHOOKPATH"
SMTP_PASSWORD = "smtp-SECRET-pw"


def settings_for(webhook: WebhookReceiver, smtp: Mailbox | None = None, **options: object) -> AlertSettings:
    return AlertSettings(
        webhooks=[
            WebhookTarget(name="generic", format="generic", url=f"{webhook.url}/generic"),
            WebhookTarget(name="slack", format="slack", url_env="CRMSYNC_TEST_SLACK_URL"),
            WebhookTarget(name="teams", format="teams", url=f"{webhook.url}/teams"),
        ],
        email=EmailTarget(
            host="127.0.0.1", port=smtp.port, security="none", username="crmsync", password_env="CRMSYNC_TEST_SMTP",
            sender="crmsync@example.fr", to=["ops@example.fr"],
        )
        if smtp
        else None,
        retries=1,
        **options,
    )  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch, webhook: WebhookReceiver) -> None:
    monkeypatch.setenv("CRMSYNC_TEST_HUBSPOT_TOKEN", TOKEN)
    monkeypatch.setenv("CRMSYNC_TEST_SLACK_URL", f"{webhook.url}/services/{HOOK_SECRET}")
    monkeypatch.setenv("CRMSYNC_TEST_SMTP", SMTP_PASSWORD)


@pytest.fixture
def runner(tmp_path: Path, store_url: str, webhook: WebhookReceiver, smtp: Mailbox):
    config = make_config(tmp_path, store_url).model_copy(update={"alerts": settings_for(webhook, smtp)})
    crm = new_crm()
    populate(crm, 24)
    store = open_store(store_url)
    yield Runner(config, store, {"hubspot": crm})
    store.close()


def everything_sent(webhook: WebhookReceiver, smtp: Mailbox) -> str:
    return json.dumps(webhook.bodies) + "".join(message.as_string() for message in smtp.messages)


def test_rejected_records_alert_every_target_once_per_cool_down(
    runner: Runner, webhook: WebhookReceiver, smtp: Mailbox
) -> None:
    crm = runner.crms["hubspot"]
    for crm_id in ("c0003", "c0009", "c0015"):
        crm.reject[crm_id] = ("INVALID_OPTION", f"{TOKEN} is not a valid option")  # a secret echoed by a vendor
    result = runner()
    alerter = Alerter(runner.config.alerts, runner.store, pause=lambda _s: None)

    sent = alerter.after_run(result.run_id, now=NOW)
    alerter.flush()

    assert [a.trigger for a in sent] == [Trigger.REJECTED, Trigger.DEAD_LETTERS]
    generic = [b for b, p in zip(webhook.bodies, webhook.paths, strict=True) if p == "/generic"]
    assert [b["trigger"] for b in generic] == ["rejected", "dead_letters"]
    assert generic[0]["details"]["rejected"] == 3 and generic[1]["details"]["new_dead_letters"] == 3
    slack = [b for b, p in zip(webhook.bodies, webhook.paths, strict=True) if p.startswith("/services/")]
    assert len(slack) == 2 and set(slack[0]) == {"text"} and "3 record(s) rejected" in slack[0]["text"]
    teams = [b for b, p in zip(webhook.bodies, webhook.paths, strict=True) if p == "/teams"]
    assert teams[0]["type"] == "message"
    assert teams[0]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert [m["Subject"] for m in smtp.messages] == [a.title for a in sent]
    assert set(smtp.logins) == {("crmsync", SMTP_PASSWORD)}
    body = everything_sent(webhook, smtp)
    assert TOKEN not in body and HOOK_SECRET not in body and SMTP_PASSWORD not in body

    # the same run again, within the cool-down: nothing; after it: sent again
    assert alerter.after_run(result.run_id, now=NOW + timedelta(minutes=59)) == []
    assert len(alerter.after_run(result.run_id, now=NOW + timedelta(minutes=61))) == 2
    alerter.close()
    assert len(smtp.messages) == 4


def test_a_failed_run_alerts_with_its_stored_error(runner: Runner, webhook: WebhookReceiver, smtp: Mailbox) -> None:
    runner.crms["hubspot"].raise_on_write = QuotaExhausted("daily limit reached")
    started = NOW
    with pytest.raises(QuotaExhausted):
        runner()
    from connector.store import queries

    failed = queries.latest_run_since(runner.store, JOB.name, started)
    assert failed is not None
    alerter = Alerter(runner.config.alerts, runner.store, pause=lambda _s: None)
    sent = alerter.after_run(failed.id, now=NOW)
    alerter.close()

    assert [a.trigger for a in sent] == [Trigger.RUN_FAILED]
    assert "daily limit reached" in webhook.bodies[0]["text"]
    assert smtp.messages[0]["Subject"] == "crmsync: job hubspot-lifecycle failed"


def test_a_webhook_that_fails_is_retried_and_never_fails_the_caller(
    runner: Runner, webhook: WebhookReceiver, smtp: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.answer = [503, 503, 503, 503, 503, 503]  # every try of the three hooks refused once or more
    crm = runner.crms["hubspot"]
    crm.reject["c0003"] = ("INVALID_OPTION", "not a valid option")
    result = runner()
    alerter = Alerter(runner.config.alerts, runner.store, pause=lambda _s: None)

    alerter.after_run(result.run_id, now=NOW)
    alerter.close()

    assert "alert not sent" in caplog.text and "HTTP 503" in caplog.text
    assert HOOK_SECRET not in caplog.text and "127.0.0.1" not in caplog.text
    assert [m["Subject"] for m in smtp.messages] == ["crmsync: job hubspot-lifecycle: 1 new dead letter(s)"], (
        "the e-mail target is not held up by the failing hooks"
    )


@pytest.mark.parametrize(
    ("usage", "alerted"),
    [
        pytest.param({"hubspot": {"quota_used": 81, "quota_total": 100}}, True, id="over-80%"),
        pytest.param({"hubspot": {"quota_used": 80, "quota_total": 100}}, False, id="at-80%"),
        pytest.param({"hubspot": {"quota_used": None, "quota_total": None}}, False, id="unknown"),
    ],
)
def test_api_usage_over_its_share_of_the_daily_allocation(usage: dict, alerted: bool) -> None:
    run = RecordedRun("r1", "job", "completed", NOW, False, {"written": 3, "failed": 0}, usage, None)

    alerts = run_alerts(run, AlertSettings(api_usage_share=0.8))

    assert [a.trigger for a in alerts] == ([Trigger.API_USAGE] if alerted else [])
    if alerted:
        assert alerts[0].key == "job:api_usage:hubspot"


@pytest.mark.parametrize(
    ("failed", "written", "settings", "alerted"),
    [
        pytest.param(5, 95, {"rejected_share": 0.05}, False, id="5%-is-not-over-5%"),
        pytest.param(6, 94, {"rejected_share": 0.05}, True, id="6%-over-5%"),
        pytest.param(6, 994, {"rejected_share": 0.05, "rejected_count": 5}, True, id="count-over"),
        pytest.param(6, 994, {"rejected_share": None, "rejected_count": None}, False, id="both-off"),
    ],
)
def test_rejected_threshold_by_share_or_count(failed: int, written: int, settings: dict, alerted: bool) -> None:
    run = RecordedRun("r1", "job", "completed", NOW, False, {"written": written, "failed": failed}, {}, None)

    alerts = run_alerts(run, AlertSettings(dead_letters=False, **settings))

    assert [a.trigger for a in alerts] == ([Trigger.REJECTED] if alerted else [])


def test_stale_after_n_intervals_counted_from_the_last_completion() -> None:
    settings = AlertSettings(stale_intervals=3)
    hour = timedelta(hours=1)

    assert stale_alert("j", interval=hour, last_completed=NOW, since=NOW, now=NOW + 2 * hour, settings=settings) is None
    alert = stale_alert("j", interval=hour, last_completed=NOW, since=NOW, now=NOW + 3 * hour, settings=settings)
    assert alert is not None and alert.trigger is Trigger.STALE and "3 of its intervals" in alert.text
    never = stale_alert("j", interval=hour, last_completed=None, since=NOW, now=NOW + hour, settings=settings)
    assert never is None, "a job the scheduler just started watching has had no chance yet"


def test_the_scheduler_alerts_once_when_a_job_stops_completing(
    tmp_path: Path, store_url: str, webhook: WebhookReceiver
) -> None:
    config = make_config(tmp_path, store_url).model_copy(
        update={"alerts": settings_for(webhook, None, stale_intervals=2, cooldown_minutes=600)}
    )
    store = open_store(store_url)
    clock = [NOW]
    job = Job(name="hourly", connections=["hubspot"], schedule="0 * * * *")
    alerter = Alerter(config.alerts, store, pause=lambda _s: None)
    scheduler = Scheduler(
        config, store, jobs={"hourly": job}, clients=lambda _c, _n: new_crm().client(), clock=lambda: clock[0],
        alerter=alerter,
    )  # fmt: skip
    try:
        scheduler.check_stale()
        clock[0] = NOW + timedelta(hours=2, minutes=1)
        scheduler.check_stale()
        clock[0] = NOW + timedelta(hours=3)
        scheduler.check_stale()  # within the cool-down
        alerter.flush()
    finally:
        alerter.close()
        store.close()

    generic = [b for b, p in zip(webhook.bodies, webhook.paths, strict=True) if p == "/generic"]
    assert [b["trigger"] for b in generic] == ["stale"]
    assert generic[0]["job"] == "hourly"


def write_config(tmp_path: Path, store_url: str, alerts: str) -> Path:
    (tmp_path / "jobs").mkdir(exist_ok=True)
    (tmp_path / "jobs" / "hubspot-lifecycle.toml").write_text((REPO / "jobs" / "hubspot-lifecycle.toml").read_text())
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n[paths]\nmappings = "{REPO / "mappings"}"\njobs = "jobs"\n'
        f'rules = "{REPO / "mappings" / "lifecycle.toml"}"\n'
        '[connections.hubspot]\ntype = "hubspot"\ntoken_env = "CRMSYNC_TEST_HUBSPOT_TOKEN"\n' + alerts
    )
    return config


def test_alerts_test_sends_to_every_target_and_names_a_failing_one(
    tmp_path: Path, store_url: str, webhook: WebhookReceiver
) -> None:
    config = write_config(
        tmp_path, store_url,
        f'[alerts]\nretries = 0\n[[alerts.webhooks]]\nname = "ops"\nformat = "slack"\nurl_env = "CRMSYNC_TEST_SLACK_URL"\n'
        f'[[alerts.webhooks]]\nname = "broken"\nurl = "{webhook.url}/missing"\n',
    )  # fmt: skip
    webhook.answer = [200, 404]

    result = CliRunner().invoke(app, ["alerts", "test", "--config", str(config)])

    assert result.exit_code == 1, result.output
    assert "webhook ops: sent" in result.stdout
    assert "webhook broken: failed: webhook 'broken': HTTP 404" in result.stdout
    assert webhook.bodies[0]["text"].startswith("*crmsync: test alert*")
    assert HOOK_SECRET not in result.output


def test_run_fails_on_rejected_share_and_alerts_after_the_run(
    tmp_path: Path, store_url: str, webhook: WebhookReceiver
) -> None:
    config = write_config(tmp_path, store_url, f'[alerts]\n[[alerts.webhooks]]\nurl = "{webhook.url}/generic"\n')
    crm = new_crm()
    populate(crm, 24)
    for crm_id in ("c0003", "c0009"):
        crm.reject[crm_id] = ("INVALID_OPTION", "not a valid option")
    services = Services(clients=lambda _c, _n: crm.client(), clock=lambda: NOW)

    result = CliRunner().invoke(
        app, ["run", "hubspot-lifecycle", "--fail-on-rejected", "0.05", "--json", "--config", str(config)], obj=services
    )

    assert result.exit_code == 7, result.output
    summary = json.loads(result.stdout)
    assert summary["failed"] == 2 and summary["rejected_share"] > 0.05
    assert [b["trigger"] for b in webhook.bodies] == ["rejected", "dead_letters"]


def test_alert_settings_reject_a_webhook_without_exactly_one_url() -> None:
    with pytest.raises(ValueError, match="exactly one of url and url_env"):
        WebhookTarget(name="x", url="https://example.com/h", url_env="X")
    config = Config()
    assert not config.alerts.enabled, "no target, no alert"


def test_cool_down_is_shared_through_the_store(store_url: str) -> None:
    from connector.alerts.dispatch import claim

    first, second = open_store(store_url), open_store(store_url)
    try:
        assert claim(first, "job:rejected", NOW, timedelta(hours=1))
        assert not claim(second, "job:rejected", NOW + timedelta(minutes=5), timedelta(hours=1))
        assert claim(second, "job:rejected", NOW + timedelta(hours=1), timedelta(hours=1))
    finally:
        first.close()
        second.close()





def test_a_job_whose_rules_file_broke_alerts_once_from_the_scheduler(
    tmp_path: Path, store_url: str, webhook: WebhookReceiver
) -> None:
    (tmp_path / "broken.toml").write_text("this is not [toml")
    config = make_config(tmp_path, store_url).model_copy(update={"alerts": settings_for(webhook, None)})
    store = open_store(store_url)
    job = Job(name="hubspot-lifecycle", connections=["hubspot"], rules=str(tmp_path / "broken.toml"))
    alerter = Alerter(config.alerts, store, pause=lambda _s: None)
    scheduler = Scheduler(
        config, store, jobs={job.name: job}, clients=lambda _c, _n: new_crm().client(), clock=lambda: NOW,
        alerter=alerter,
    )  # fmt: skip
    try:
        assert scheduler.run_now(job) is None
        assert scheduler.run_now(job) is None  # the next tick: same failure, inside the cool-down
        alerter.flush()
    finally:
        alerter.close()
        store.close()

    generic = [b for b, p in zip(webhook.bodies, webhook.paths, strict=True) if p == "/generic"]
    assert [b["trigger"] for b in generic] == ["run_failed"]
    assert "broken.toml" in generic[0]["text"]
