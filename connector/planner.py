"""The write planner: decision vs what the CRM shows vs policy. Pure.

Given a contact as read from a CRM, the rules' decision and the mapping,
say what to write, or why nothing. Policies (docs/rules.md):

- a value outside (or beyond) the ladder in *any* stage field of the mapping
  (including the guards it only reads, e.g. a Salesforce Lead ``Status`` of
  ``Closed - Converted`` or a custom ``Recycled - Nurture``) wins: nothing is written to any of them (a HubSpot ``customer`` in
  ``lifecyclestage`` keeps ``crmsync_lifecycle_stage`` untouched too), and the
  plan says so with ``beyond_ladder`` so the store can count the contact in
  the funnel's "beyond the ladder" row;
- rungs the mapping marks ``protected`` are never changed;
- forward only, unless the rules allow regression;
- nothing is written when the CRM already shows the value.

Secondary stage fields (HubSpot's ``lifecyclestage``) follow the same
policies field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connector.crm import ContactRecord, StageUpdate
from connector.mapping import CrmMapping, SecondaryStageField
from connector.model import LADDER, FactSource, Stage, StageDecision


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do for one record: ``update`` to write, or ``skip`` saying why not."""

    update: StageUpdate | None
    skip: str | None
    current: Stage | None
    target: Stage | None
    beyond_ladder: bool = False
    """A stage field holds a value the ladder does not know: the CRM's stage wins, nothing is written."""


BEYOND_LADDER = "beyond-ladder"
"""The rule name recorded for a contact whose CRM stage is beyond or outside the ladder."""


def beyond_ladder(record: ContactRecord, mapping: CrmMapping) -> str | None:
    """Why ``record`` is beyond the ladder (the first stage field, secondary field or guard holding a value the
    ladder does not know), or ``None``. Empty values are not beyond anything."""
    return mapping.beyond_ladder(record.stage_values)


def plan_write(
    record: ContactRecord,
    decision: StageDecision,
    mapping: CrmMapping,
    *,
    regression: bool,
    now: datetime,
) -> Plan:
    """Plan the write for one record; ``now`` dates the stage when no activity does."""
    target = decision.stage
    primary = mapping.stage.field
    current_value = record.stage_values.get(primary)
    current = mapping.stage_for_value(current_value)
    beyond = beyond_ladder(record, mapping)
    if beyond is not None:
        return Plan(None, beyond, current, target, beyond_ladder=True)
    if target is None:
        return Plan(None, "no rung", current, None)
    if current is not None and current in mapping.stage.protected:
        return Plan(None, f"{current.value} is protected", current, target)
    if current == target:
        return Plan(None, "unchanged", current, target)
    if current is not None and current.rank > target.rank and not regression:
        return Plan(None, f"forward only: CRM shows {current.value}", current, target)

    fields = {primary: mapping.value_for_stage(target)}
    for also in mapping.stage.also:
        value = _secondary_value(also, target, record.stage_values.get(also.field), regression)
        if value is not None:
            fields[also.field] = value
    if mapping.stage.reached_at_field:
        fields[mapping.stage.reached_at_field] = _reached_on(decision, now)
    if mapping.stage.reason_field:
        fields[mapping.stage.reason_field] = _clip(decision.summary(), mapping.stage.reason_max_length)
    update = StageUpdate(
        crm_id=record.crm_id,
        object_type=record.object_type,
        stage=target,
        fields=fields,
        previous_value=current_value,
        allow_regression=regression,
    )
    return Plan(update, None, current, target)


def _secondary_value(also: SecondaryStageField, target: Stage, current: str | None, regression: bool) -> str | None:
    wanted = also.values.get(target)
    if wanted is None or wanted == current:
        return None
    if current:
        order = _value_order(also)
        if order.get(current, -1) > order[wanted] and not regression:
            return None
    return wanted


def _value_order(also: SecondaryStageField) -> dict[str, int]:
    """Rank of each value: the highest rung that maps to it."""
    order: dict[str, int] = {}
    for stage in LADDER:
        value = also.values.get(stage)
        if value is not None:
            order[value] = stage.rank
    return order


def _reached_on(decision: StageDecision, now: datetime) -> str:
    dates = [fact.at for fact in decision.facts if fact.source == FactSource.ACTIVITY and fact.at is not None]
    return (max(dates) if dates else now).date().isoformat()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
