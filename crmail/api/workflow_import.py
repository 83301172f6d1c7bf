"""``POST /workflows/import``: a Gmail filters export or a Sieve script as the caller's own
rules (decision 037), sent as multipart (``file``) or JSON (``{"text"}``); ``?dry_run=true``
says what would be made and makes nothing. Its own router, mounted before the rules' own
(``/workflows/{id}`` would take the path otherwise)."""

from __future__ import annotations

import json
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field
from pydantic import ValidationError as PydanticError

from crmail.api.auth import current_user
from crmail.api.errors import Invalid, convert_validation_errors
from crmail.api.schemas import Input, errors_doc
from crmail.api.workflows import SPEC_DOC
from crmail.workflows import actions
from crmail.workflows.imports import MAX_BYTES, FilterImportError, read_file
from crmail.workflows.models import Workflow

router = Router(tags=["Workflows"])


IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "Gmail's mailFilters.xml or a Sieve script, UTF-8, "
                            "up to 1 MB.",
                        }
                    },
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "text": {
                            "type": "string",
                            "maxLength": MAX_BYTES,
                            "description": "The file's text: Gmail's export or a Sieve script.",
                        }
                    },
                    "required": ["text"],
                    "additionalProperties": False,
                }
            },
        },
    }
}
IMPORT_DOC = {**IMPORT_BODY, **errors_doc(400, 401, 413, 422)}


class ImportIn(Input):
    text: str = Field(max_length=MAX_BYTES)


class ImportedRuleOut(Schema):
    name: str
    spec: dict[str, Any] = Field(description=SPEC_DOC)
    lines: list[int] = Field(description="The lines of the file it comes from.")
    notes: list[str] = Field(description="Where its meaning differs from the original's.")
    workflow_id: int | None = Field(description="The rule made; null in a dry run.")


class ImportProblemOut(Schema):
    line: int
    text: str = Field(description="The line as it is in the file (shortened past 300 characters).")
    reason: str


class SkippedFilterOut(Schema):
    name: str
    lines: list[int]
    problems: list[ImportProblemOut] = Field(description="Every reason it cannot be imported.")


class ImportOut(Schema):
    source: Literal["gmail", "sieve"]
    dry_run: bool
    imported: int = Field(description="How many rules were made (0 in a dry run).")
    rules: list[ImportedRuleOut] = Field(description="The rules the file makes, in its order.")
    skipped: list[SkippedFilterOut] = Field(
        description="The filters not imported, whole: a filter with any part crmail cannot "
        "do is not imported at all."
    )


def _import_body(request: HttpRequest) -> tuple[str, bytes]:
    """The file's bytes, and the request field they came in."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BYTES + 64 * 1024:  # a file past the limit, with room for multipart's parts
        raise HttpError(
            413, "The file is larger than 1 MB; filters up to that size can be imported."
        )
    if request.content_type == "multipart/form-data":
        upload = request.FILES.get("file")
        if upload is None:
            raise Invalid.one("file", "Send the filters file in the field 'file'.")
        if upload.size is not None and upload.size > MAX_BYTES:
            raise Invalid.one("file", "The file is larger than 1 MB.")
        return "file", upload.read()
    if request.content_type != "application/json":
        raise Invalid.one(
            None, "Send the file as multipart/form-data ('file') or JSON ({\"text\": …})."
        )
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "The request body is not valid JSON.") from None
    try:
        payload = ImportIn.model_validate(data)
    except PydanticError as exc:
        located = [e | {"loc": ("body", "payload", *e["loc"])} for e in exc.errors()]
        raise Invalid(convert_validation_errors(located)) from None
    return "text", payload.text.encode("utf-8")


@router.post(
    "/import",
    response={200: ImportOut, 201: ImportOut},
    openapi_extra=IMPORT_DOC,
    summary="Import filters (Gmail, Sieve)",
)
def import_filters(
    request: HttpRequest,
    dry_run: bool = Query(False, description="Only say what would be imported."),
) -> Status:
    """A Gmail filters export (``mailFilters.xml``) or a Sieve script becomes your own
    rules, all in one transaction, off until you turn them on (try them on past mail
    first). What cannot be imported is listed line by line with the reason;
    ``?dry_run=true`` answers the same without making anything."""
    user = current_user(request)
    field, data = _import_body(request)
    try:
        result = read_file(data)
    except FilterImportError as exc:
        raise Invalid.one(field, str(exc)) from None
    made: list[Workflow] = []
    if not dry_run:
        try:
            made = actions.import_rules(result, by=user)
        except actions.Invalid as exc:
            raise Invalid(exc.errors) from None
    ids = [w.pk for w in made] or [None] * len(result.rules)
    body = {
        "source": result.source,
        "dry_run": dry_run,
        "imported": len(made),
        "rules": [
            {
                "name": rule.name,
                "spec": rule.dump(),
                "lines": [line.number for line in rule.lines],
                "notes": list(rule.notes),
                "workflow_id": pk,
            }
            for rule, pk in zip(result.rules, ids, strict=True)
        ],
        "skipped": [
            {
                "name": s.name,
                "lines": [line.number for line in s.lines],
                "problems": [
                    {"line": p.line, "text": p.text, "reason": p.reason} for p in s.problems
                ],
            }
            for s in result.skipped
        ],
    }
    return Status(200 if dry_run else 201, body)
