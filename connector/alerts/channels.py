"""One alert to one target: the message bodies (pure) and the two ways of sending them.

Webhooks are POSTed with the standard library (``urllib``), e-mail with
``smtplib``: no SDK, a timeout on every call. A failure raises
:class:`SendFailed`, whose message names the target and the status, never
the URL (Slack's and Teams' URLs are credentials) nor the password.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any

from connector.alerts.settings import EmailTarget, WebhookFormat, WebhookTarget
from connector.alerts.triggers import Alert


class SendFailed(Exception):
    """An alert could not be delivered to one target (``retryable``: a later try may work)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def webhook_body(alert: Alert, format: WebhookFormat) -> dict[str, Any]:
    """The JSON body for ``format``: Slack's ``text``, a Teams Adaptive Card message, or the alert itself."""
    if format is WebhookFormat.SLACK:
        return {"text": f"*{alert.title}*\n{alert.text}"}
    if format is WebhookFormat.TEAMS:
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": alert.title, "weight": "Bolder", "size": "Medium", "wrap": True},
                {"type": "TextBlock", "text": alert.text, "wrap": True},
            ],
        }
        return {
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }
    return alert.as_json()


def send_webhook(alert: Alert, target: WebhookTarget, *, timeout: float) -> None:
    body = json.dumps(webhook_body(alert, target.format), ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        target.resolved_url().get_secret_value(),
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "crmsync-alerts"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as error:
        retryable = error.code == 429 or error.code >= 500
        raise SendFailed(f"webhook {target.name!r}: HTTP {error.code}", retryable=retryable) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SendFailed(f"webhook {target.name!r}: {type(reason).__name__}") from None


def email_message(alert: Alert, target: EmailTarget) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = alert.title
    message["From"] = target.sender
    message["To"] = ", ".join(target.to)
    lines = [alert.text, "", *(f"{key}: {value}" for key, value in alert.details.items() if value is not None)]
    message.set_content("\n".join(lines) + "\n")
    return message


def send_email(alert: Alert, target: EmailTarget, *, timeout: float) -> None:
    password = target.password()
    try:
        if target.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                target.host, target.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(target.host, target.port, timeout=timeout)
        with smtp:
            if target.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if target.username and password is not None:
                smtp.login(target.username, password.get_secret_value())
            smtp.send_message(email_message(alert, target))
    except smtplib.SMTPAuthenticationError as error:
        raise SendFailed(f"e-mail {target.name!r}: login refused (SMTP {error.smtp_code})", retryable=False) from None
    except smtplib.SMTPResponseException as error:
        raise SendFailed(f"e-mail {target.name!r}: SMTP {error.smtp_code}", retryable=error.smtp_code >= 400) from None
    except (smtplib.SMTPException, OSError) as error:
        raise SendFailed(f"e-mail {target.name!r}: {type(error).__name__}") from None
