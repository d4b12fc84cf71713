"""The sandbox org's objects and fields, as ``describe`` shows them.

Only what crmsync reads and writes, plus the fields a real org always has
(``Id``, ``CreatedDate``, ``SystemModstamp``...). ``Lifecycle_Stage__c`` is a
restricted picklist on Lead and Contact, with the values of
``mappings/salesforce.toml``; its companions are a Date and a Text(255).
"""

from __future__ import annotations

from dataclasses import dataclass

STAGE_VALUES: tuple[str, ...] = ("Suspect", "Lead", "Prospect", "MQL", "SQL", "Meeting")
"""Active values of ``Lifecycle_Stage__c`` (the mapping's ``[stage.values]``)."""

ID_PREFIX: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "Campaign": "701",
    "CampaignMember": "00v",
}
PREFIX_OBJECT: dict[str, str] = {prefix: name for name, prefix in ID_PREFIX.items()}


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: str
    """``id``, ``reference``, ``string``, ``textarea``, ``email``, ``url``, ``picklist``,
    ``int``, ``boolean``, ``date`` or ``datetime`` (describe's spelling)."""
    label: str
    updateable: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    length: int = 0
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None

    @property
    def text(self) -> bool:
        return self.type in ("string", "textarea", "email", "url", "picklist", "phone")

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "length": self.length,
            "updateable": self.updateable,
            "createable": self.updateable,
            "nillable": self.type not in ("id", "boolean"),
            "custom": self.name.endswith("__c"),
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": value, "value": value, "validFor": None}
                for value in self.picklist
            ],
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship,
        }


def _system() -> list[FieldDef]:
    return [
        FieldDef("CreatedDate", "datetime", "Created Date"),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date"),
        FieldDef("SystemModstamp", "datetime", "System Modstamp"),
        # read-only; ``query`` hides deleted rows, ``queryAll`` returns them with ``IsDeleted = true``
        FieldDef("IsDeleted", "boolean", "Deleted"),
    ]


def _text(name: str, label: str, length: int = 255, kind: str = "string") -> FieldDef:
    return FieldDef(name, kind, label, updateable=True, length=length)


def _stage_fields() -> list[FieldDef]:
    return [
        FieldDef(
            "Lifecycle_Stage__c",
            "picklist",
            "Lifecycle Stage",
            updateable=True,
            picklist=STAGE_VALUES,
            restricted=True,
            length=255,
        ),
        FieldDef("Lifecycle_Stage_Date__c", "date", "Lifecycle Stage Date", updateable=True),
        _text("Lifecycle_Stage_Reason__c", "Lifecycle Stage Reason"),
    ]


INDUSTRIES: tuple[str, ...] = (
    "Agriculture", "Banking", "Education", "Finance", "Healthcare", "Machinery", "Manufacturing",
    "Retail", "Shipping", "Technology", "Transportation", "Wholesale", "Other",
)  # fmt: skip
"""The org's Industry picklist: the standard values plus a custom ``Wholesale``."""


LEAD_STATUSES: tuple[str, ...] = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
    "Existing Customer",
    "Partner",
)
"""The org's Lead Status picklist: the standard values plus two custom ones outside the ladder."""
ACCOUNT_TYPES: tuple[str, ...] = (
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
)
"""The standard Account Type picklist."""


def _industry() -> FieldDef:
    return FieldDef("Industry", "picklist", "Industry", updateable=True, picklist=INDUSTRIES, length=255)


OBJECTS: dict[str, tuple[FieldDef, ...]] = {
    "Account": (
        FieldDef("Id", "id", "Account ID", length=18),
        _text("Name", "Account Name"),
        _text("Website", "Website", kind="url"),
        FieldDef("NumberOfEmployees", "int", "Employees", updateable=True),
        _industry(),
        FieldDef("Type", "picklist", "Account Type", updateable=True, picklist=ACCOUNT_TYPES, length=255),
        _text("BillingCountry", "Billing Country", 80),
        *_system(),
    ),
    "Lead": (
        FieldDef("Id", "id", "Lead ID", length=18),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80),
        _text("Email", "Email", 80, "email"),
        _text("Title", "Title", 128),
        _text("Company", "Company"),
        _text("Website", "Website", kind="url"),
        FieldDef("NumberOfEmployees", "int", "Employees", updateable=True),
        _industry(),
        _text("Country", "Country", 80),
        FieldDef(
            "Status",
            "picklist",
            "Status",
            updateable=True,
            picklist=LEAD_STATUSES,
            length=255,
        ),
        FieldDef("IsConverted", "boolean", "Converted"),
        FieldDef(
            "ConvertedContactId",
            "reference",
            "Converted Contact ID",
            reference_to=("Contact",),
            relationship="ConvertedContact",
            length=18,
        ),
        FieldDef("ConvertedDate", "date", "Converted Date"),
        FieldDef(
            "MasterRecordId",
            "reference",
            "Master Record ID",
            reference_to=("Lead",),
            relationship="MasterRecord",
            length=18,
        ),
        *_stage_fields(),
        *_system(),
    ),
    "Contact": (
        FieldDef("Id", "id", "Contact ID", length=18),
        FieldDef(
            "AccountId",
            "reference",
            "Account ID",
            updateable=True,
            reference_to=("Account",),
            relationship="Account",
            length=18,
        ),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80),
        _text("Email", "Email", 80, "email"),
        _text("Title", "Title", 128),
        _text("MailingCountry", "Mailing Country", 80),
        FieldDef(
            "MasterRecordId",
            "reference",
            "Master Record ID",
            reference_to=("Contact",),
            relationship="MasterRecord",
            length=18,
        ),
        *_stage_fields(),
        *_system(),
    ),
    "Campaign": (
        FieldDef("Id", "id", "Campaign ID", length=18),
        _text("Name", "Name", 80),
        FieldDef(
            "Type",
            "picklist",
            "Type",
            updateable=True,
            picklist=("Webinar", "Content", "Email", "Demo Request", "Web Form", "Conference", "Other"),
            length=255,
        ),
        FieldDef("IsActive", "boolean", "Active", updateable=True),
        *_system(),
    ),
    "CampaignMember": (
        FieldDef("Id", "id", "Campaign Member ID", length=18),
        FieldDef(
            "CampaignId", "reference", "Campaign ID", reference_to=("Campaign",), relationship="Campaign", length=18
        ),
        FieldDef("LeadId", "reference", "Lead ID", reference_to=("Lead",), relationship="Lead", length=18),
        FieldDef("ContactId", "reference", "Contact ID", reference_to=("Contact",), relationship="Contact", length=18),
        FieldDef(
            "Status",
            "picklist",
            "Status",
            updateable=True,
            picklist=("Sent", "Registered", "Attended", "Responded", "Subscribed"),
            length=255,
        ),
        FieldDef("HasResponded", "boolean", "Responded"),
        FieldDef("FirstRespondedDate", "date", "First Responded Date"),
        *_system(),
    ),
    "Task": (
        FieldDef("Id", "id", "Activity ID", length=18),
        FieldDef(
            "WhoId",
            "reference",
            "Name ID",
            updateable=True,
            reference_to=("Contact", "Lead"),
            relationship="Who",
            length=18,
        ),
        _text("Subject", "Subject"),
        FieldDef("TaskSubtype", "picklist", "Task Subtype", picklist=("Task", "Email", "Call", "ListEmail"), length=40),
        FieldDef(
            "Type",
            "picklist",
            "Type",
            updateable=True,
            picklist=("Call", "Email", "Email Reply", "Email Open", "Email Click", "Web Visit", "Other"),
            length=40,
        ),
        FieldDef("Status", "picklist", "Status", updateable=True, picklist=("Not Started", "Completed"), length=40),
        FieldDef("CallDisposition", "string", "Call Result", updateable=True, length=255),
        FieldDef("ActivityDate", "date", "Due Date Only", updateable=True),
        FieldDef("CompletedDateTime", "datetime", "Completed Date/Time"),
        *_system(),
    ),
    "Event": (
        FieldDef("Id", "id", "Activity ID", length=18),
        FieldDef(
            "WhoId",
            "reference",
            "Name ID",
            updateable=True,
            reference_to=("Contact", "Lead"),
            relationship="Who",
            length=18,
        ),
        _text("Subject", "Subject"),
        FieldDef("EventSubtype", "picklist", "Event Subtype", picklist=("Event",), length=40),
        FieldDef(
            "Type",
            "picklist",
            "Type",
            updateable=True,
            picklist=("Meeting", "Meeting Held", "Call", "Other"),
            length=40,
        ),
        FieldDef("StartDateTime", "datetime", "Start Date Time", updateable=True),
        FieldDef("EndDateTime", "datetime", "End Date Time", updateable=True),
        *_system(),
    ),
}
