"""Dead letters grouped by cause (the vendor's error code), each cause with what to do about it (dashboard and CLI).

The hints name the vendors' codes seen in docs/operations.md, docs/hubspot.md
and docs/salesforce.md; an unknown code gets the generic hint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from connector.store.queries import DeadLetterView

RETRY = "then `crmsync dead-letters --retry`"

HINTS: dict[str, str] = {
    # Salesforce (per-record errors of sObject Collections)
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": (
        "The stage value is not an active value of the restricted picklist: add it in Setup, or fix "
        f"[stage] values in the mapping (`crmsync validate --remote` checks them), {RETRY}."
    ),
    "CANNOT_UPDATE_CONVERTED_LEAD": (
        "The Lead was converted: its Contact carries the stage from now on. Nothing to fix; "
        "the Contact is synced on its own."
    ),
    "STRING_TOO_LONG": (
        f"A companion field (the reason field) is shorter than the text written: widen the field in the CRM, {RETRY}."
    ),
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": (
        "A validation rule of the org refused the write: ask the Salesforce admin to exempt the integration "
        f"user or fix the rule, {RETRY}."
    ),
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": (
        f"The integration user may not edit this record: grant it edit access (sharing rules, profile), {RETRY}."
    ),
    "INSUFFICIENT_ACCESS_OR_READONLY": (
        f"The integration user may not edit this record or field: grant edit access to the stage fields, {RETRY}."
    ),
    "ENTITY_IS_DELETED": "The record was deleted (or merged) in the CRM: nothing to fix.",
    # HubSpot (batch update errors, by category)
    "VALIDATION_ERROR": (
        "HubSpot refused a property value: check the stage values of mappings/hubspot.toml against the "
        f"property's options (`crmsync validate --remote`), {RETRY}."
    ),
    "OBJECT_NOT_FOUND": "The record was deleted (or merged) in the CRM: nothing to fix.",
    # crmsync's own
    "retries_exhausted": (
        "The write failed transiently on 8 runs in a row (locks, 5xx, timeouts): check the CRM's status page "
        f"and its API usage, {RETRY}."
    ),
}

GENERIC_HINT = f"Read the CRM's reason below, fix the record or the mapping, {RETRY}."


@dataclass(frozen=True, slots=True)
class Cause:
    code: str | None
    hint: str
    letters: tuple[DeadLetterView, ...]

    @property
    def jobs(self) -> list[str]:
        return sorted({letter.job for letter in self.letters})


def hint_for(code: str | None) -> str:
    if code is None:
        return GENERIC_HINT
    return HINTS.get(code) or HINTS.get(code.upper()) or GENERIC_HINT


def group_by_cause(letters: Iterable[DeadLetterView]) -> list[Cause]:
    """One group per error code, the largest first (then by code); letters keep their order inside a group."""
    groups: dict[str | None, list[DeadLetterView]] = {}
    for letter in letters:
        groups.setdefault(letter.code, []).append(letter)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0] or ""))
    return [Cause(code=code, hint=hint_for(code), letters=tuple(found)) for code, found in ordered]
