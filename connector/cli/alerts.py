"""``crmsync alerts test``: send a test message to every alert target of the config, now."""

from __future__ import annotations

import typer

from connector.cli.exits import CommandFailed, ExitCode
from connector.cli.services import services
from connector.cli.terminal import line, out, safe


def test(ctx: typer.Context) -> None:
    """Send a test alert to every webhook and e-mail address of [alerts]; exit 1 if one fails."""
    from connector.alerts.dispatch import Alerter
    from connector.alerts.triggers import Alert, Trigger

    context = services(ctx)
    config = context.config()
    context.logging()
    settings = config.alerts
    if not settings.enabled:
        raise CommandFailed("no alert target: add [[alerts.webhooks]] or [alerts.email] to the config")
    now = context.clock()
    alert = Alert(
        Trigger.TEST,
        "",
        "crmsync: test alert",
        f"This is a test of crmsync's alerts, sent {now.isoformat(timespec='seconds')} by `crmsync alerts test`. "
        "Alerts are sent on a failed run, on rejected records above the threshold, on new dead letters, "
        "on API usage near the daily allocation and when a job has not completed for a while.",
        now,
    )
    alerter = Alerter(settings, None)
    outcome = alerter.send_now(alert)
    for name, problem in outcome.items():
        out.print(line(safe(name), ": ", ("failed: ", "red") if problem else ("sent", "green"), safe(problem or "")))
    if any(outcome.values()):
        raise typer.Exit(int(ExitCode.FAILED))
