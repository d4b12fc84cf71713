"""Salesforce REST payloads as frozen models: the client's typed boundary.

Query pages keep their records as JSON objects only until the normaliser
flattens them (``Account.Name`` style keys) and turns them into the common
model in the same module; nothing past the client sees them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_VENDOR = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ApiError(BaseModel):
    """One element of a REST error body: ``[{"message": ..., "errorCode": ...}]``."""

    model_config = _VENDOR

    error_code: str = Field(default="UNKNOWN", alias="errorCode")
    message: str = ""


class RecordError(BaseModel):
    """A per-record error of sObject collections."""

    model_config = _VENDOR

    status_code: str = Field(alias="statusCode")
    message: str = ""
    fields: tuple[str, ...] = ()


class SaveResult(BaseModel):
    """One result of ``PATCH composite/sobjects``, in request order."""

    model_config = _VENDOR

    id: str | None = None
    success: bool
    errors: tuple[RecordError, ...] = ()


class QueryPage(BaseModel):
    """One page of ``GET query`` or of its ``nextRecordsUrl``."""

    model_config = _VENDOR

    total_size: int = Field(alias="totalSize")
    done: bool
    next_records_url: str | None = Field(default=None, alias="nextRecordsUrl")
    records: list[dict[str, Any]]


class PicklistValue(BaseModel):
    model_config = _VENDOR

    value: str
    active: bool = True


class FieldDescribe(BaseModel):
    model_config = _VENDOR

    name: str
    type: str
    updateable: bool = False
    restricted_picklist: bool = Field(default=False, alias="restrictedPicklist")
    picklist_values: tuple[PicklistValue, ...] = Field(default=(), alias="picklistValues")
    reference_to: tuple[str, ...] = Field(default=(), alias="referenceTo")
    relationship_name: str | None = Field(default=None, alias="relationshipName")
    length: int = 0


class SObjectDescribe(BaseModel):
    """``GET sobjects/{type}/describe``: the fields we check a mapping against."""

    model_config = _VENDOR

    name: str
    fields: tuple[FieldDescribe, ...]

    def field(self, name: str) -> FieldDescribe | None:
        lowered = name.lower()
        return next((f for f in self.fields if f.name.lower() == lowered), None)

    def relationship(self, name: str) -> FieldDescribe | None:
        lowered = name.lower()
        return next((f for f in self.fields if (f.relationship_name or "").lower() == lowered), None)


def flatten(record: dict[str, Any], parents: tuple[str, ...] = ()) -> dict[str, Any]:
    """A query record's values keyed by SOQL path (``{"Account.Name": ...}``), in place.

    ``parents`` are the relationship names the query selected fields of;
    records of queries without parent fields are left as they are (the
    ``attributes`` key is never read).
    """
    for relationship in parents:
        nested = record.pop(relationship, None)
        if isinstance(nested, dict):
            for name, value in nested.items():
                if name != "attributes":
                    record[f"{relationship}.{name}"] = value
    return record
