"""Alerts: tell a person when a sync goes wrong (webhooks for Slack, Teams or anything, and e-mail).

``settings`` is the ``[alerts]`` section of the config; ``triggers`` (pure)
turns a recorded run, or a job's last completion, into :class:`Alert`
values; ``channels`` formats and sends one message to one target;
``dispatch`` applies the cool-down (kept in the store), retries each send
with a timeout and never lets a failed send reach the run.
"""

from connector.alerts.settings import AlertSettings, EmailTarget, WebhookTarget
from connector.alerts.triggers import Alert, Trigger, run_alerts, stale_alert

__all__ = ["Alert", "AlertSettings", "EmailTarget", "Trigger", "WebhookTarget", "run_alerts", "stale_alert"]
