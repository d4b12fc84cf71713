"""The common model's unvalidated constructor stays one with the validated model (it builds pydantic's
internal state itself, so a pydantic upgrade that changes that state fails here first)."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from connector.crm import ActivityRecord
from connector.model import Activity, typed, typed_activity

AT = datetime(2026, 11, 30, 9, 15, 2, 120_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "detail", "activity_id"),
    [("form_submitted", "Pricing page <script>", "4719263811"), ("meeting_booked", None, None), ("x", "é\u202e", "1")],
)
def test_an_activity_built_unvalidated_is_the_validated_one(
    kind: str, detail: str | None, activity_id: str | None
) -> None:
    typed = typed_activity(kind, AT, detail, activity_id)
    validated = Activity(kind=kind, occurred_at=AT, detail=detail, id=activity_id)

    assert typed == validated and hash(typed) == hash(validated)
    assert typed.model_dump() == validated.model_dump() and typed.model_dump_json() == validated.model_dump_json()
    assert typed.model_fields_set == validated.model_fields_set
    assert typed.model_copy(update={"detail": "other"}).detail == "other" and typed.detail == detail
    assert pickle.loads(pickle.dumps(typed)) == validated and copy.deepcopy(typed) == validated
    assert Activity.model_validate(typed.model_dump()) == typed
    with pytest.raises(ValidationError):
        typed.kind = "changed"  # frozen, as the validated model


def test_a_record_built_unvalidated_is_the_validated_one_and_every_field_must_be_given() -> None:
    activity = typed_activity("email_open", AT, None, "00T5g00000AbCdEfGH")
    fields = {"crm_id": "00T5g00000AbCdEfGH", "activity": activity, "contact_ids": ("0035g00000XyZaBcDE",),
              "modified_at": AT}  # fmt: skip
    assert typed(ActivityRecord, **fields) == ActivityRecord(**fields)
    assert pickle.loads(pickle.dumps(typed(ActivityRecord, **fields))) == ActivityRecord(**fields)
    with pytest.raises(TypeError, match="every field"):
        typed(ActivityRecord, crm_id="1", activity=activity, contact_ids=("2",))
