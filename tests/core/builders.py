"""Builders for common-model contacts in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connector.model import Activity, Company, Contact, Stage

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def activity(kind: str, days: float = 1, detail: str | None = None) -> Activity:
    return Activity(kind=kind, occurred_at=days_ago(days), detail=detail)


def contact(
    *activities: Activity,
    industry: str | None = "logistics",
    employees: int | None = 120,
    stage: Stage | None = None,
    **fields: Any,
) -> Contact:
    company = Company(name="Transports Martin", industry=industry, employees=employees)
    return Contact(
        email=fields.pop("email", "a.martin@example.fr"),
        company=company,
        stage=stage,
        activities=tuple(activities),
        **fields,
    )
