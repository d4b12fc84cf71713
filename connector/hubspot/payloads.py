"""HubSpot's JSON bodies as frozen pydantic models, parsed straight from the response bytes.

The SDK's own response models cost ~125 us a record (docs/hubspot.md); the
client asks the SDK for the raw response (``_preload_content=False``) and
validates the body here in one pass. Only the keys the connector reads are
modelled; everything else is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_BODY = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
P = TypeVar("P", bound=BaseModel)


class Unreadable(BaseModel):
    """A record of a page that cannot be parsed or stored: skipped and reported, the rest of the page goes on."""

    model_config = _BODY
    crm_id: str
    reason: str


class NextPage(BaseModel):
    model_config = _BODY
    after: str


class Paging(BaseModel):
    model_config = _BODY
    next: NextPage | None = None


class ListPaging(BaseModel):
    """Only a list page's ``paging`` (the rest of the body is skipped, not built): what the thread that fetches
    a list needs to ask for the next page while the page before is parsed in full."""

    model_config = _BODY
    paging: Paging | None = None


class AssociationRef(BaseModel):
    model_config = _BODY
    id: str
    type: str | None = None
    """The v3 association type name, e.g. ``contact_to_company`` (the primary company)."""


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
    archived_at: str | None = Field(default=None, alias="archivedAt")
    """Only on an archived (deleted) record, listed with ``archived=true``."""

    def associated(self, object_type: str) -> tuple[str, ...]:
        found = (self.associations or {}).get(object_type)
        return tuple(ref.id for ref in found.results) if found else ()

    def associated_as(self, object_type: str, type_name: str) -> str | None:
        """The first associated record of ``object_type`` with the v3 type ``type_name``."""
        found = (self.associations or {}).get(object_type)
        return next((ref.id for ref in found.results if ref.type == type_name), None) if found else None


class ObjectPage(BaseModel):
    """A list page (``paging.next.after`` is an id) or a search page (``total``; ``after`` is an offset)."""

    model_config = _BODY
    results: tuple[CrmObject, ...] = ()
    paging: Paging | None = None
    total: int | None = None
    unreadable: tuple[Unreadable, ...] = ()
    """Records left out of ``results`` (never in HubSpot's JSON; see :func:`parse_page`)."""
    last_id: str | None = None
    """Id of the page's last record, readable or not (the search re-anchors after it)."""

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
    association_types: tuple[AssociationType, ...] = Field(default=(), alias="associationTypes")

    def has_type(self, type_id: int) -> bool:
        return any(t.type_id == type_id for t in self.association_types)


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
    unreadable: tuple[Unreadable, ...] = ()

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


def list_next(data: bytes) -> str | None:
    """``paging.next.after`` of a list page's body (``None``: the last page). Raises ``ValueError`` when it cannot
    be read without the full parse, which then decides."""
    paging = ListPaging.model_validate_json(data).paging
    return paging.next.after if paging and paging.next else None


def parse_page(model: type[P], data: bytes, record_id: Callable[[dict[str, Any]], str] | None = None) -> P:
    """A page of ``model`` (``results`` + paging) from a response body, skipping the records that cannot be read.

    The fast path validates the whole body at once. When that fails (a lone
    UTF-16 surrogate in one property, a value of the wrong type), the body is
    read with Python's JSON parser, which keeps such text, and each record is
    checked on its own: the bad ones go to ``unreadable`` with their id and
    reason, the others are kept. A body that is not JSON at all raises ``ValueError``.
    """
    try:
        page = model.model_validate_json(data)
    except ValidationError:
        pass
    else:
        if isinstance(page, ObjectPage) and page.results:
            return page.model_copy(update={"last_id": page.results[-1].id})
        return page
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise ValueError("the response body is not a JSON object")
    items = raw.get("results")
    items = items if isinstance(items, list) else []
    results_model = model.model_fields["results"].annotation
    good: list[Any] = []
    bad: list[Unreadable] = []
    name = record_id or _object_id
    for item in items:
        problem = _unencodable(item)
        if problem is None:
            try:
                good.append(_item_model(results_model).model_validate(item))
                continue
            except ValidationError as error:
                first = error.errors(include_url=False, include_input=False)[0]
                problem = ".".join(str(p) for p in first["loc"]) + f": {first['msg']}"
        bad.append(Unreadable(crm_id=_printable(name(item) if isinstance(item, dict) else "?"), reason=problem))
    rest = {key: value for key, value in raw.items() if key != "results" and _unencodable(value) is None}
    page = model.model_validate({**rest, "results": good, "unreadable": bad})
    if isinstance(page, ObjectPage) and items:
        last = items[-1].get("id") if isinstance(items[-1], dict) else None
        return page.model_copy(update={"last_id": str(last) if last is not None else None})
    return page


def _item_model(annotation: Any) -> type[BaseModel]:
    # tuple[CrmObject, ...] -> CrmObject
    return annotation.__args__[0]


def _object_id(item: dict[str, Any]) -> str:
    return str(item.get("id", "?"))


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:120]


def _unencodable(value: Any, where: str = "") -> str | None:
    """Where ``value`` holds text that is not valid Unicode (a lone surrogate), or ``None``."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where or 'value'}: text is not valid Unicode (a lone UTF-16 surrogate)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unencodable(key, where) or _unencodable(item, f"{where}.{key}" if where else str(key))
            if found:
                return _printable(found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unencodable(item, f"{where}.{index}" if where else str(index))
            if found:
                return found
    return None
