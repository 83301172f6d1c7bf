"""What the API reads and writes: request bodies, query parameters and responses.

Input schemas use the field names of the record forms (crmail/crm/forms.py), except that
related records are given by id (``account_id``, ``owner_id``, …) and ``secondary_emails``
is a list. Unknown fields are refused, so a misspelt field never goes unnoticed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from django.utils import timezone
from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, field_validator

from crmail.crm.models import Contact, Lead, LeadStatus, StageKind
from crmail.mailboxes.actions import INTERRUPTED, INTERRUPTED_LABEL
from crmail.mailboxes.providers import PRESETS
from crmail.mailboxes.tasks import is_interrupted
from crmail.text import text_problem

# Database ids are signed 64-bit; larger numbers are refused before any query is made.
MAX_ID = 2**63 - 1
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_OFFSET = 10**12

Id = Annotated[int, Field(ge=1, le=MAX_ID)]


T = TypeVar("T")


def storable(value: T) -> T:
    """Refuse text no database can store (crmail.text): a lone surrogate or NUL."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def in_utc(moment: datetime) -> datetime:
    """A time as UTC; one without a zone is read in the server's zone.

    ISO 8601 allows offsets PostgreSQL does not (``+16:00``), and near the ends of the
    calendar an offset can carry a time past year 1 or 9999: refused, naming the field.
    """
    try:
        aware = timezone.make_aware(moment) if timezone.is_naive(moment) else moment
        return aware.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("Give a time between the years 1 and 9999 in UTC.") from None


# A point in time given in a request, as UTC.
Moment = Annotated[datetime, AfterValidator(in_utc)]

# Free text in query parameters: bounded and storable.
QueryText = Annotated[str, Field(max_length=200), AfterValidator(storable)]
# A tag's name in a query parameter (crmail.mail.tags: 1 to 100 characters, any case).
TagName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(storable)]
TAG_FILTER = "Only mail tagged so (a tag's name, in any case)."
TAGS_DOC = "The message's tags, by name (alphabetical)."


# ---------------------------------------------------------------------------- output


class Page(Schema, Generic[T]):
    """One page of a list: ``items`` from ``offset``, at most ``limit``, of ``count`` in all."""

    items: list[T]
    count: int = Field(description="How many items match, over all pages.")
    limit: int
    offset: int


# The error answers (crmail/api/errors.py) as JSON Schema, for the OpenAPI document.
MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
INVALID_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "description": "The request field at fault; null for the whole request.",
                    },
                    "message": {"type": "string"},
                },
                "required": ["field", "message"],
            },
        }
    },
    "required": ["detail"],
}
ERROR_MEANINGS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("The body is not JSON.", MESSAGE_SCHEMA),
    401: ("No token, or one that is unknown, revoked or of a deactivated user.", MESSAGE_SCHEMA),
    403: ("You may see this but not do this.", MESSAGE_SCHEMA),
    404: ("No such item, or one you may not see.", MESSAGE_SCHEMA),
    422: ("Invalid input; each entry names a field.", INVALID_INPUT_SCHEMA),
    409: ("Not possible in the current state; the message says why.", MESSAGE_SCHEMA),
    413: ("The body is larger than this operation takes.", MESSAGE_SCHEMA),
    502: ("A mail server refused or failed; the message says why.", MESSAGE_SCHEMA),
}


def errors_doc(*codes: int) -> dict[str, Any]:
    """The error answers of an operation, for the OpenAPI document (see errors.py).

    Given as extra OpenAPI rather than as response schemas so that each operation has one
    response schema and ninja answers with its status (201, 204) on every version.
    """
    return {
        "responses": {
            code: {  # numbers, like ninja's keys, so a code declared twice merges
                "description": ERROR_MEANINGS[code][0],
                "content": {"application/json": {"schema": ERROR_MEANINGS[code][1]}},
            }
            for code in codes
        }
    }


READ_ERRORS = errors_doc(401, 404, 422)
WRITE_ERRORS = errors_doc(400, 401, 403, 404, 422)


class UserRef(Schema):
    id: int
    name: str
    email: str


class Ref(Schema):
    id: int
    name: str


class StageOut(Schema):
    id: int
    name: str
    position: int
    probability: int = Field(description="Chance of winning, 0 to 100.")
    kind: StageKind


class PipelineOut(Schema):
    id: int
    name: str
    is_default: bool
    stages: list[StageOut]

    @staticmethod
    def resolve_stages(obj: object) -> list:
        return list(obj.stages.all())  # type: ignore[attr-defined]


class RecordOut(Schema):
    id: int
    owner: UserRef
    description: str
    created_at: datetime
    modified_at: datetime


class PersonOut(RecordOut):
    name: str = Field(description="First and last name together.")
    first_name: str
    last_name: str
    email: str = Field(description="The primary address; empty when there is none.")
    secondary_emails: list[str]
    title: str
    phone: str
    mobile: str

    @staticmethod
    def resolve_name(obj: Contact | Lead) -> str:
        return obj.full_name

    @staticmethod
    def resolve_email(obj: Contact | Lead) -> str:
        return obj.primary_email


class ContactOut(PersonOut):
    account_id: int | None
    time_zone: str = Field(description="An IANA time zone name; empty: unknown.")


class LeadOut(PersonOut):
    company: str
    status: LeadStatus
    source: str


class AccountOut(RecordOut):
    name: str
    website: str
    domain: str
    phone: str
    industry: str


class DealOut(RecordOut):
    name: str
    pipeline_id: int
    stage_id: int
    stage: StageOut
    amount: Decimal | None = Field(description="A decimal number with two places, as a string.")
    closing_date: date | None
    contact_id: int | None
    account_id: int | None


class UserOut(Schema):
    id: int
    name: str
    email: str
    role: Ref | None
    profile: Ref | None
    manager_id: int | None
    is_active: bool
    is_admin: bool
    date_joined: datetime


# ----------------------------------------------------------------------------- input


class Input(Schema):
    """A request body: unknown fields refused, every text value storable (crmail.text)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return storable(value)


class RecordPatch(Input):
    owner_id: Id | None = Field(None, description="An active user; defaults to you.")
    description: str | None = None


class PersonPatch(RecordPatch):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = Field(None, description="The primary address.")
    secondary_emails: list[str] | None = Field(
        None, max_length=100, description="Other addresses; they replace the current ones."
    )
    title: str | None = None
    phone: str | None = None
    mobile: str | None = None


class ContactPatch(PersonPatch):
    account_id: Id | None = None
    time_zone: str | None = Field(
        None, max_length=64, description="An IANA time zone name (Europe/Paris); empty: unknown."
    )


class ContactIn(ContactPatch):
    last_name: str


class LeadPatch(PersonPatch):
    company: str | None = None
    status: LeadStatus | None = None
    source: str | None = None


class LeadIn(LeadPatch):
    last_name: str
    status: LeadStatus = LeadStatus.NEW


class AccountPatch(RecordPatch):
    name: str | None = None
    website: str | None = None
    domain: str | None = Field(None, description="Taken from the website when empty.")
    phone: str | None = None
    industry: str | None = None


class AccountIn(AccountPatch):
    name: str


class DealPatch(RecordPatch):
    name: str | None = None
    pipeline_id: Id | None = Field(None, description="Defaults to the default pipeline.")
    stage_id: Id | None = Field(None, description="A stage of the deal's pipeline.")
    amount: Decimal | None = Field(None, description="Not negative; at most two decimals.")
    closing_date: date | None = None
    contact_id: Id | None = None
    account_id: Id | None = None


class DealIn(DealPatch):
    name: str
    stage_id: Id = Field(description="A stage of the deal's pipeline.")


class UserPatch(Input):
    name: str | None = None
    role_id: Id | None = None
    profile_id: Id | None = None
    manager_id: Id | None = None
    is_active: bool | None = Field(None, description="False deactivates the user.")


class UserIn(Input):
    email: str
    name: str
    password: str | None = Field(
        None, description="Optional; without one the user cannot sign in with a password."
    )
    role_id: Id | None = Field(None, description="Defaults to Sales Representative.")
    profile_id: Id | None = Field(None, description="Defaults to Standard.")
    manager_id: Id | None = Field(None, description="An active user this one reports to.")


# ------------------------------------------------------------------ query parameters


class ListParams(Schema):
    limit: int = Field(
        DEFAULT_LIMIT, ge=1, description=f"Items per page; at most {MAX_LIMIT} are returned."
    )
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Items to skip.")


class RecordFilters(ListParams):
    q: QueryText | None = Field(None, description="Words to find in the name.")
    owner: Id | None = Field(None, description="Only records owned by this user id.")
    modified_since: Moment | None = Field(
        None, description="Only records changed at or after this time (ISO 8601)."
    )


class PersonFilters(RecordFilters):
    email: QueryText | None = Field(
        None, description="Records with this address, primary or secondary, in any case."
    )


PERSON_ORDERING = Literal[
    "name", "-name", "created_at", "-created_at", "modified_at", "-modified_at",
]  # fmt: skip


ACCOUNT_ORDERING = Literal[
    "name", "-name", "domain", "-domain", "created_at", "-created_at", "modified_at",
    "-modified_at",
]  # fmt: skip
DEAL_ORDERING = Literal[
    "name", "-name", "amount", "-amount", "closing_date", "-closing_date", "created_at",
    "-created_at", "modified_at", "-modified_at",
]  # fmt: skip
ORDERING_HELP = "Sort key; a leading '-' sorts descending."


class ContactFilters(PersonFilters):
    account: Id | None = Field(None, description="Only contacts of this account id.")
    ordering: PERSON_ORDERING = Field("name", description=ORDERING_HELP)


class LeadFilters(PersonFilters):
    status: LeadStatus | None = None
    ordering: PERSON_ORDERING = Field("name", description=ORDERING_HELP)


class AccountFilters(RecordFilters):
    domain: QueryText | None = Field(None, description="Accounts with this web domain.")
    ordering: ACCOUNT_ORDERING = Field("name", description=ORDERING_HELP)


class DealFilters(RecordFilters):
    pipeline: Id | None = Field(None, description="Only deals in this pipeline id.")
    stage: Id | None = Field(None, description="Only deals in this stage id.")
    contact: Id | None = Field(None, description="Only deals of this contact id.")
    account: Id | None = Field(None, description="Only deals of this account id.")
    ordering: DEAL_ORDERING = Field("-modified_at", description=ORDERING_HELP)


class UserFilters(ListParams):
    q: QueryText | None = Field(None, description="Words to find in the name or address.")
    is_active: bool | None = None


# ------------------------------------------------------------------------- mailboxes
#
# Settings use the model's field names (crmail/mailboxes/models.py), except that the
# credentials are ``password`` and ``smtp_password``: write-only, never part of an answer.

SecurityName = Literal["tls", "starttls", "none"]
Port = Annotated[int, Field(ge=1, le=65535)]
Address = Annotated[str, Field(max_length=254)]
FolderName = Annotated[str, Field(max_length=1000)]
BOOLEAN_SETTINGS = (
    "allow_self_signed",
    "smtp_same_credentials",
    "store_sent_on_server",
    "keep_on_server",
    "customer_alerts",
    "deal_labels",
    "remove_labels",
)


class ServerOut(Schema):
    host: str
    port: int
    security: str


class PresetOut(Schema):
    key: str = Field(description="Give it as `provider` when connecting.")
    name: str
    imap: ServerOut | None
    pop3: ServerOut | None
    smtp: ServerOut | None
    app_password_hint: str | None = Field(
        description="What to do when the provider refuses a normal password (two-factor)."
    )
    oauth_configured: bool = Field(description="Signing in with the provider is set up here.")
    sent_copy_by_smtp: bool = Field(
        description="The provider files sent mail in Sent by itself (crmail adds no copy)."
    )


class MailboxOut(Schema):
    id: int
    owner: UserRef
    email: str
    provider: str
    protocol: str = Field(
        description="imap, pop3, gmail (the Gmail API) or graph (Outlook through Microsoft Graph)."
    )
    keeps_copy: bool = Field(
        description="crmail keeps a copy of the mail (search, reports). Always true for IMAP "
        "and POP3; a gmail or graph mailbox without it stores nothing of the mail and is "
        "asked live."
    )
    host: str
    port: int | None
    security: str
    allow_self_signed: bool
    auth_method: str
    login: str
    secret_stored: bool = Field(description="A password (or OAuth grant) is stored.")
    smtp_host: str
    smtp_port: int | None
    smtp_security: str
    smtp_same_credentials: bool
    smtp_login: str
    smtp_secret_stored: bool
    display_name: str = Field(description="The name on mail sent from it; empty: the user's.")
    extra_from_addresses: list[str]
    store_sent_on_server: bool
    import_folders: list[str]
    import_since: date | None
    keep_on_server: bool
    customer_alerts: bool = Field(
        description="Mail from a lead or contact reaching the Inbox notifies the owner."
    )
    deal_labels: bool = Field(
        description="Inbox mail from contacts is sorted under the labels (IMAP: folders) "
        '"Deals Closing This Month", "Open Deals" and "Customers" by their deals.'
    )
    is_active: bool = Field(description="The mailbox that fetches (one per user).")
    locked: bool = Field(description="Locked by an administrator.")
    state: str
    state_label: str
    last_error: str
    last_sync_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_secret_stored(obj: Any) -> bool:
        return bool(obj.secret)

    @staticmethod
    def resolve_smtp_secret_stored(obj: Any) -> bool:
        return bool(obj.smtp_secret)

    @staticmethod
    def resolve_state(obj: Any) -> str:
        return INTERRUPTED if is_interrupted(obj) else str(obj.state)

    @staticmethod
    def resolve_state_label(obj: Any) -> str:
        return INTERRUPTED_LABEL if is_interrupted(obj) else str(obj.get_state_display())


class MailboxStatusOut(Schema):
    id: int
    email: str
    protocol: str
    active: bool
    state: str
    state_label: str
    done: int = Field(description="Messages handled in the current (or last) sync.")
    total: int
    bytes: int
    rate_per_second: float | None = Field(description="Messages a second while syncing.")
    eta_seconds: float | None
    last_sync_at: datetime | None
    last_error: str
    messages_stored: int
    bytes_stored: int
    parse_failures: int
    parsed_with_fallbacks: int
    folders: int


class DeactivatedOut(Schema):
    mailbox: MailboxOut
    messages_removed: int = Field(description="Messages forgotten (keep_mail: false).")


class FolderOut(Schema):
    id: int
    name: str
    remote_id: str = Field(description="The server's name for it.")
    role: str = Field(description="inbox, sent, drafts, trash, junk, archive, or empty.")
    role_from_server: bool
    selectable: bool
    sync_enabled: bool
    exists_on_server: bool
    last_synced_at: datetime | None
    messages: int


class FolderRef(Schema):
    id: int
    name: str
    role: str


class MessageSummaryOut(Schema):
    id: int
    subject: str
    from_address: str
    from_name: str
    date: datetime | None
    size: int
    has_attachments: bool
    parse_state: str
    folders: list[FolderRef]
    flags: list[str] = Field(description="seen, flagged, answered, draft, deleted, keywords.")
    tags: list[str] = Field(description=TAGS_DOC)


def _preset_key(value: str) -> str:
    if value != "custom" and value not in PRESETS:
        raise ValueError(f"Unknown provider: choose one of {', '.join(PRESETS)}, or custom.")
    return value


class MailboxSettings(Input):
    """What may be changed on a connected mailbox; ``null`` empties a text setting."""

    email: Address | None = None
    host: Annotated[str, Field(max_length=253)] | None = None
    port: Port | None = None
    security: SecurityName | None = None
    allow_self_signed: bool | None = None
    login: Address | None = None
    password: Annotated[str, Field(max_length=4096)] | None = Field(
        None, description="Write-only. Empty or absent keeps the stored one."
    )
    smtp_host: Annotated[str, Field(max_length=253)] | None = None
    smtp_port: Port | None = None
    smtp_security: SecurityName | None = None
    smtp_same_credentials: bool | None = Field(
        None,
        description="Log in to the outgoing server as to the incoming one; false with no "
        "smtp_login: a relay that needs no login.",
    )
    smtp_login: Address | None = None
    smtp_password: Annotated[str, Field(max_length=4096)] | None = Field(
        None, description="Write-only. Empty or absent keeps the stored one."
    )
    display_name: Annotated[str, Field(max_length=200)] | None = Field(
        None, description="The name on mail sent from it; empty: the user's name."
    )
    extra_from_addresses: list[Address] | None = Field(
        None, max_length=50, description="Other addresses this mailbox may send as."
    )
    store_sent_on_server: bool | None = None
    import_folders: list[FolderName] | None = Field(
        None, max_length=1000, description="Folders to sync; empty for all."
    )
    import_since: date | None = Field(None, description="Import mail from this date on.")
    keep_on_server: bool | None = Field(None, description="POP3: leave messages on the server.")
    customer_alerts: bool | None = Field(
        None,
        description="Notify the owner when mail from a lead or contact reaches the Inbox "
        "(default true).",
    )
    deal_labels: bool | None = Field(
        None,
        description="Sort Inbox mail from contacts under the three labels by their deals, "
        "every ten minutes and soon after a deal changes (default false). Needs "
        "customer_alerts, and a server with folders or labels (not POP3).",
    )
    remove_labels: bool | None = Field(
        None,
        description="With deal_labels false: also take the three labels (folders) off the "
        "server, their mail back in the Inbox (a job). Absent or false: they stay.",
    )

    @field_validator(*BOOLEAN_SETTINGS, mode="after")
    @classmethod
    def _not_null(cls, value: bool | None) -> bool:
        # Runs only on values given: absent settings keep their default (None: unchanged).
        if value is None:
            raise ValueError("Give true or false.")
        return value


class MailboxIn(MailboxSettings):
    owner_id: Id | None = Field(None, description="Administrators: connect for this user.")
    provider: Annotated[str, AfterValidator(_preset_key)] = Field(
        "custom",
        description="A preset key (GET /mailboxes/presets): fills in the servers not given.",
    )
    protocol: Literal["imap", "pop3", "gmail", "graph"] = Field(
        "imap",
        description="imap or pop3 (with ``password``); gmail (the Gmail API) or graph "
        "(Outlook through Microsoft Graph), with ``oauth_refresh_token``: nothing of the "
        "mail is stored unless ``keeps_copy`` is true.",
    )
    email: Address
    login: Address | None = Field(None, description="Defaults to the email address.")
    password: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        None, description="Or app password, for imap and pop3. Write-only."
    )
    oauth_refresh_token: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        None,
        description="gmail, graph: a refresh token for this server's OAuth client at Google "
        "or Microsoft, obtained elsewhere (moving from another tool); checked with one "
        "refresh. Write-only.",
    )
    keeps_copy: bool = Field(
        False,
        description="gmail, graph: keep a copy of the mail in crmail for search and reports.",
    )

    sharing: Literal["private", "public", "custom"] | None = Field(
        None,
        description="Who sees the mail synced from this mailbox: ``private`` (the owner "
        "only), ``public`` (everyone who can access the record), ``custom`` (per record). "
        "Sets the owner's mail sharing (``/sharing``). Absent: the organisation's default "
        "for a first mailbox (``GET /sharing/default``), the owner's setting afterwards. A "
        "setting an administrator locked can only be given as it is.",
    )


class LabelMoveOut(Schema):
    id: int
    moved_at: datetime
    from_address: str = Field(description="The sender, when crmail knows it.")
    subject: str | None = Field(description="When crmail keeps a copy of the mail.")
    source: str = Field(description="The folder or label it left (the server's name).")
    source_name: str
    target: str = Field(description="The folder or label it went to.")
    target_name: str
    category: str = Field(description="closing, open, customers; empty: back to the Inbox.")
    reason: str = Field(description="sorted, recategorised or labels_removed.")
    undone_at: datetime | None
    can_undo: bool = Field(description="POST …/label-moves/{id}/undo would move it back.")


class DeactivateIn(Input):
    keep_mail: bool = Field(
        description="Keep the synced mail and folders in crmail (true) or forget them (false)."
    )
    remove_labels: bool = Field(
        False,
        description="With labels by deal state on: take the three labels off the server, "
        "their mail back in the Inbox (true), or leave them there (false, the default).",
    )


class LockIn(Input):
    locked: bool


class FolderPatch(Input):
    role: Annotated[str, Field(max_length=20)] | None = Field(
        None,
        description="crmail's role: inbox, sent, drafts, trash, junk, archive; empty for none.",
    )
    sync_enabled: bool | None = None

    @field_validator("sync_enabled", mode="after")
    @classmethod
    def _not_null(cls, value: bool | None) -> bool:
        if value is None:
            raise ValueError("Give true or false.")
        return value


class MailboxFilters(ListParams):
    owner: Id | None = Field(None, description="Only this user's mailboxes (administrators).")


class MessageFilters(ListParams):
    folder: Id | None = Field(None, description="Only messages in this folder id.")


# --------------------------------------------------------------------------- sending

RECORD_MODULE = Literal["leads", "contacts", "accounts", "deals"]


class RecordRef(Input):
    module: RECORD_MODULE
    id: Id


HTML_DESCRIPTION = (
    "The message written in HTML (optional). It is cleaned as crmail cleans mail it shows: "
    "formatting elements only, no scripts, event handlers, forms or embedded content, "
    "links only to http, https and mailto, images without a remote address. It is sent "
    "as multipart/alternative beside a text part: ``text`` when given, else the text of "
    "the cleaned HTML."
)


class SendIn(Input):
    sender: Address = Field(
        alias="from",
        description="Your mailbox's address, one of its extra from-addresses, or an "
        "organisation address you may send as (``/organisation-addresses``).",
    )
    reply_to: Address = Field(
        "",
        description="Where replies go (Reply-To): one of the addresses ``from`` takes; "
        "empty: to ``from``.",
    )
    to: list[Address] = Field(max_length=500)
    cc: list[Address] = Field(default_factory=list, max_length=500)
    bcc: list[Address] = Field(default_factory=list, max_length=500)
    subject: Annotated[str, Field(max_length=998)] | None = Field(
        None, description="Required unless ``template_id`` gives it."
    )
    text: Annotated[str, Field(max_length=5_000_000)] = Field(
        "", description="The text of the message (its text part when ``html`` is given too)."
    )
    html: Annotated[str, Field(max_length=5_000_000)] = Field("", description=HTML_DESCRIPTION)
    template_id: Id | None = Field(
        None,
        description="A template you may use: its subject and body, filled for ``record`` "
        "and you, are sent as they are (then give no subject, text or html).",
    )
    in_reply_to: Annotated[str, Field(max_length=500)] = Field(
        "", description="The Message-ID this answers (threads the reply)."
    )
    record: RecordRef | None = Field(None, description="The record the mail is sent from.")
    track: bool = Field(
        True,
        description="False: no open pixel or tracked links in this message, even while the "
        "organisation tracks mail (Email insights, ``/insights/settings``).",
    )


class ReplyIn(Input):
    all: bool = Field(False, description="Reply all: also to the original's To and Cc.")
    track: bool = Field(
        True,
        description="False: no open pixel or tracked links in this message, even while the "
        "organisation tracks mail (Email insights, ``/insights/settings``).",
    )

    text: Annotated[str, Field(max_length=5_000_000)] = Field(
        "", description="Your text; the original follows it, quoted."
    )
    html: Annotated[str, Field(max_length=5_000_000)] = Field(
        "",
        description=HTML_DESCRIPTION
        + " The original follows it in a blockquote (and quoted in the text part).",
    )
    cc: list[Address] = Field(
        default_factory=list, max_length=500, description="More addresses to copy."
    )
    bcc: list[Address] = Field(default_factory=list, max_length=500)
    quote: bool = Field(True, description="Quote the original below your text.")
    record: RecordRef | None = Field(
        None, description="The record it is answered from; it is recorded there too."
    )


class ForwardIn(Input):
    to: list[Address] = Field(max_length=500)
    track: bool = Field(
        True,
        description="False: no open pixel or tracked links in this message, even while the "
        "organisation tracks mail (Email insights, ``/insights/settings``).",
    )

    cc: list[Address] = Field(default_factory=list, max_length=500)
    bcc: list[Address] = Field(default_factory=list, max_length=500)
    text: Annotated[str, Field(max_length=5_000_000)] = Field(
        "", description="Your text; the original follows it with its attachments."
    )
    html: Annotated[str, Field(max_length=5_000_000)] = Field(
        "",
        description=HTML_DESCRIPTION
        + " The original follows it in a blockquote (and below it in the text part).",
    )
    record: RecordRef | None = Field(
        None, description="The record it is forwarded from; it is recorded there too."
    )


class SentOut(Schema):
    message_id: int = Field(description="The stored message's id.")
    message_id_header: str = Field(description="Its Message-ID, without angle brackets.")
    sent_id: int
    from_address: str
    recipients: list[str]
    sent_copy_stored: bool = Field(description="A copy was put in the server's Sent folder.")
    sent_copy_note: str = Field(description="Why not, in words; empty when it was.")
    tracked: bool = Field(
        description="Its recipients' copy carries the open pixel and tracked links."
    )


# ----------------------------------------------------------------- mail on records

EMAIL_VIEW = Literal["all", "sent", "dropbox", "imap", "pop", "user"]


SENTIMENT = Literal["positive", "neutral", "negative"]
INTENT = Literal["request", "question", "complaint", "scheduling", "unsubscribe", "other"]
INTELLIGENCE_DOC = (
    "Email intelligence (sentiment, intent, summary, reply text, signature details, meeting "
    "times), computed on the server after the mail arrived; null while it is not computed, "
    "for BCC Dropbox mail, and while the organisation's switch is off."
)


class SignatureOut(Schema):
    name: str
    title: str
    company: str
    website: str
    phones: list[str]


class MeetingOut(Schema):
    start: datetime = Field(description="The meeting's time (ISO 8601, with its offset).")
    text: str = Field(description="The words it was read from.")
    approximate: bool = Field(description="A part of a day (morning), not a clock time.")


class IntelligenceOut(Schema):
    sentiment: SENTIMENT
    sentiment_score: float = Field(description="-1 (most negative) to 1 (most positive).")
    intent: INTENT
    summary: str = Field(
        description="A long thread's short summary as of this message (empty otherwise)."
    )
    reply_text: str = Field(description="The new text: quotes and signature left out.")
    signature: SignatureOut | None = Field(description="Details read from the signature.")
    meetings: list[MeetingOut] = Field(description="Meeting times the text mentions.")
    language: str = Field(description="ISO 639-1, empty when unknown.")


class IntelligenceFilters(Schema):
    sentiment: SENTIMENT | None = Field(None, description="Only mail of this sentiment.")
    intent: INTENT | None = Field(None, description="Only mail of this intent.")
    deal: Literal["open"] | None = Field(
        None, description="open: only mail on a deal in an open stage that you may view."
    )
    period: Literal["week"] | None = Field(
        None, description="week: only mail dated this week (from Monday, organisation's time)."
    )


class EmailFilters(ListParams, IntelligenceFilters):
    view: EMAIL_VIEW = Field(
        "all",
        description="all; sent (from crmail); dropbox (received at a user's BCC Dropbox); "
        "imap / pop (lying in a mailbox synced over "
        "IMAP / POP3); user (lying in one user's mailbox or sent by them: give ``user``).",
    )
    user: Id | None = Field(None, description="The user of view=user.")
    tag: TagName | None = Field(None, description=TAG_FILTER)
    cursor: str | None = Field(
        None,
        max_length=4000,
        description="The next page of a list with live mail: the ``next_cursor`` of the "
        "page before (``offset`` is then left at 0).",
    )


class PersonAddress(Schema):
    name: str
    address: str


class LinkOut(Schema):
    """Why a message is on a record ("linked because…")."""

    module: str
    record_id: int
    reason: str = Field(
        description="address, sent_from_record, manual, bcc_dropbox, thread, workflow."
    )
    address: str = Field(description="The matching address (reason address).")
    explanation: str = Field(description="The reason in words, as the UI says it.")


class EmailOut(Schema):
    """A message in a record's Emails list: stored in crmail, or asked live from a mailbox
    that keeps no copy (``live``: then ``id`` is null, ``mailbox_id`` and ``remote_id``
    name it, and only subject, from, to, date and thread are known)."""

    id: int | None = Field(description="The stored message; null for live mail.")
    live: bool = Field(
        False, description="Asked live from its mailbox's provider; crmail keeps no copy."
    )
    mailbox_id: int | None = Field(None, description="Live mail: the mailbox it is in.")
    remote_id: str | None = Field(None, description="Live mail: the provider's id for it.")
    subject: str
    sender: PersonAddress = Field(alias="from")
    to: list[str]
    date: datetime | None
    snippet: str
    thread_id: int | str | None = Field(
        description="crmail's thread (stored mail) or the provider's (live mail)."
    )
    has_attachments: bool
    automated: bool = Field(description="Mailing-list or automated mail.")
    list_id: str
    links: list[LinkOut] = Field(description="Why the message is on this record.")
    tags: list[str] = Field(description=TAGS_DOC)
    url: str = Field(description="The message's page in crmail.")
    api_url: str | None = Field(
        None, description="Live mail: where the API reads it (GET, from the provider)."
    )
    intelligence: IntelligenceOut | None = Field(None, description=INTELLIGENCE_DOC)


class EmailPage(Page[EmailOut]):
    """A page of a record's Emails list. With live mail (``live_mailboxes`` > 0), ``count``
    counts the stored mail only, and the next page is asked with ``next_cursor``."""

    live_mailboxes: int = Field(0, description="Mailboxes asked live for this list.")
    next_cursor: str | None = Field(
        None, description="Pass as ``cursor`` for the next page; null on the last."
    )
    notices: list[str] = Field(
        default_factory=list,
        description='A provider that did not answer, in words ("Gmail did not answer…: '
        'showing stored mail only"); its mail is missing from this page.',
    )


class AttachmentOut(Schema):
    part: int
    name: str
    content_type: str
    size: int
    inline: bool = Field(description="Shown inside the HTML (a cid: image).")
    download_url: str


class HeadersOut(Schema):
    subject: str
    date: datetime | None
    sender: list[PersonAddress] = Field(alias="from")
    to: list[PersonAddress]
    cc: list[PersonAddress]
    bcc: list[PersonAddress]
    reply_to: list[PersonAddress]
    message_id: str
    in_reply_to: str
    references: list[str]


class MessageFolderOut(FolderRef):
    mailbox_id: int


class MessageState(Schema):
    """The message as your own mailbox holds it: null and empty when you hold no copy
    (you see it through a colleague's sharing, or it was sent from crmail only)."""

    seen: bool | None = Field(description="Read, on your own copy.")
    flagged: bool | None = Field(description="Flagged, on your own copy.")
    folders: list[MessageFolderOut] = Field(description="The folders of yours the message is in.")


class FetchedBodyOut(Schema):
    body_waits: bool = Field(description="Whether the body still waits on the mail server.")
    message: str = Field(description="What happened, in words.")


class MessageStateOut(MessageState):
    id: int


class MessageOut(MessageState):
    """One message as the viewer may see it; the HTML is cleaned (crmail.mail.display):
    no script, remote images removed, ``cid:`` images pointing at crmail."""

    id: int
    headers: HeadersOut
    text: str
    html: str
    attachments: list[AttachmentOut]
    thread_id: int | None
    automated: bool
    list_id: str
    readable: bool = Field(description="False when the message could not be parsed.")
    body_waits: bool = Field(
        False,
        description="True when it arrived while the organisation's storage was full: its "
        "headers, participants and links are here, its text, HTML and attachments wait on "
        "the mail server until there is room (its page in crmail fetches it on demand).",
    )
    links: list[LinkOut] = Field(description="The records you may see it on, and why.")
    tags: list[str] = Field(description=TAGS_DOC)
    sources: list[str] = Field(
        description="How its sender's copy reached crmail besides syncing: crmail (sent "
        "from crmail), dropbox (received at the sender's BCC Dropbox); empty for synced mail."
    )
    url: str = Field(description="The message's page in crmail.")
    intelligence: IntelligenceOut | None = Field(None, description=INTELLIGENCE_DOC)


class LiveAttachmentOut(Schema):
    part: int
    name: str
    content_type: str
    size: int


class LiveMessageOut(Schema):
    """A message read live from a mailbox that keeps no copy (nothing of it is stored)."""

    mailbox_id: int
    remote_id: str
    live: bool = True
    headers: HeadersOut | None = Field(description="Null when it could not be parsed.")
    text: str
    html: str = Field(description="Cleaned as crmail shows it; remote images removed.")
    attachments: list[LiveAttachmentOut]
    url: str = Field(description="Its page in crmail.")
