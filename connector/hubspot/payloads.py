"""HubSpot's JSON bodies as frozen pydantic models, parsed straight from the response bytes.

The SDK's own response models cost ~125 us a record (CRM_FACTS.md); the
client asks the SDK for the raw response (``_preload_content=False``) and
validates the body here in one pass. Only the keys the connector reads are
modelled; everything else is ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_BODY = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class NextPage(BaseModel):
    model_config = _BODY
    after: str


class Paging(BaseModel):
    model_config = _BODY
    next: NextPage | None = None


class AssociationRef(BaseModel):
    model_config = _BODY
    id: str


class AssociationList(BaseModel):
    model_config = _BODY
    results: tuple[AssociationRef, ...] = ()


class CrmObject(BaseModel):
    """One CRM record (contact, meeting, e-mail, call): every property value is a string or null."""

    model_config = _BODY
    id: str
    properties: dict[str, str | None] = Field(default_factory=dict)
    associations: dict[str, AssociationList] | None = None
    updated_at: str | None = Field(default=None, alias="updatedAt")

    def associated(self, object_type: str) -> tuple[str, ...]:
        found = (self.associations or {}).get(object_type)
        return tuple(ref.id for ref in found.results) if found else ()


class ObjectPage(BaseModel):
    """A list page (``paging.next.after`` is an id) or a search page (``total``; ``after`` is an offset)."""

    model_config = _BODY
    results: tuple[CrmObject, ...] = ()
    paging: Paging | None = None
    total: int | None = None

    @property
    def next_after(self) -> str | None:
        return self.paging.next.after if self.paging and self.paging.next else None


class BatchError(BaseModel):
    """One error of a 207 batch response; ``context.ids`` names the inputs it concerns."""

    model_config = _BODY
    status: str | None = None
    category: str | None = None
    message: str | None = None
    context: dict[str, tuple[str, ...]] | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.context or {}).get("ids", ())


class BatchResponse(BaseModel):
    model_config = _BODY
    status: str | None = None
    results: tuple[CrmObject, ...] = ()
    errors: tuple[BatchError, ...] = ()


class AssociationType(BaseModel):
    model_config = _BODY
    type_id: int | None = Field(default=None, alias="typeId")


class AssociationTarget(BaseModel):
    model_config = _BODY
    to_object_id: int = Field(alias="toObjectId")


class AssociationSource(BaseModel):
    model_config = _BODY
    id: str


class AssociationResult(BaseModel):
    model_config = _BODY
    source: AssociationSource = Field(alias="from")
    to: tuple[AssociationTarget, ...] = ()


class AssociationBatch(BaseModel):
    model_config = _BODY
    results: tuple[AssociationResult, ...] = ()
    errors: tuple[BatchError, ...] = ()


class FormValue(BaseModel):
    model_config = _BODY
    name: str
    value: str | None = None


class FormSubmission(BaseModel):
    model_config = _BODY
    submitted_at: int = Field(alias="submittedAt")
    values: tuple[FormValue, ...] = ()
    page_url: str | None = Field(default=None, alias="pageUrl")
    conversion_id: str | None = Field(default=None, alias="conversionId")

    def value(self, name: str) -> str | None:
        for item in self.values:
            if item.name == name:
                return item.value
        return None


class SubmissionPage(BaseModel):
    model_config = _BODY
    results: tuple[FormSubmission, ...] = ()
    paging: Paging | None = None

    @property
    def next_after(self) -> str | None:
        return self.paging.next.after if self.paging and self.paging.next else None


class PropertyOption(BaseModel):
    model_config = _BODY
    value: str
    label: str | None = None


class PropertyDefinition(BaseModel):
    model_config = _BODY
    name: str
    type: str
    field_type: str | None = Field(default=None, alias="fieldType")
    options: tuple[PropertyOption, ...] = ()


class PropertyList(BaseModel):
    model_config = _BODY
    results: tuple[PropertyDefinition, ...] = ()


class Form(BaseModel):
    model_config = _BODY
    id: str
    name: str | None = None


class FormList(BaseModel):
    model_config = _BODY
    results: tuple[Form, ...] = ()
    paging: Paging | None = None


class ErrorBody(BaseModel):
    """HubSpot's error body (also its 429 body, which adds ``policyName``)."""

    model_config = _BODY
    status: str | None = None
    message: str | None = None
    category: str | None = None
    error_type: str | None = Field(default=None, alias="errorType")
    policy_name: str | None = Field(default=None, alias="policyName")
    correlation_id: str | None = Field(default=None, alias="correlationId")
