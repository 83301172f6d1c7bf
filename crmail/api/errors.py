"""How the API answers when something goes wrong: always JSON, always ``{"detail": …}``.

- 400 ``{"detail": "message"}``: the body is not JSON.
- 401 ``{"detail": "message"}``: no token, or a token that is unknown, revoked or whose
  user is deactivated.
- 403 ``{"detail": "message"}``: the record is visible but the user may not do this to it.
- 404 ``{"detail": "Not found."}``: no such record, or one the user may not see.
- 413 ``{"detail": "message"}``: the body is larger than the server accepts.
- 422 ``{"detail": [{"field": "email", "message": "…"}]}``: invalid input, one entry per
  problem; ``field`` is the name used in the request (body field or query parameter), or
  null when the problem is with the request as a whole.
- 500 ``{"detail": "Internal error"}``: a bug; logged without request bodies or tokens.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError

from crmail.crm.actions import NotAllowed, RecordInvalid

if TYPE_CHECKING:
    from ninja import NinjaAPI

logger = logging.getLogger("crmail.api")

NOT_FOUND = "Not found."
MISSING_CREDENTIALS = "Authentication required: send the header 'Authorization: Bearer <token>'."

# Where ninja says a value came from; the first part of every validation error's ``loc``.
PARAM_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}


# Form fields that the API names differently: related records are given by id.
API_NAMES = {
    "account": "account_id",
    "contact": "contact_id",
    "owner": "owner_id",
    "pipeline": "pipeline_id",
    "stage": "stage_id",
    "role": "role_id",
    "profile": "profile_id",
    "manager": "manager_id",
    "users": "user_ids",
    "roles": "role_ids",
}


def api_field_name(form_field: str) -> str | None:
    """The request field for a form or model field (None for the record as a whole)."""
    if form_field in ("__all__", "", None):
        return None
    return API_NAMES.get(form_field, form_field)


class Invalid(Exception):
    """Input the API itself refuses (outside a record form), naming the fields."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors

    @classmethod
    def one(cls, field: str | None, message: str) -> Invalid:
        return cls([{"field": field, "message": message}])


class Forbidden(Exception):
    """The user may see the record but not do this to it; the message says what."""


def field_of(loc: list[Any] | tuple[Any, ...], single_attr: set[str]) -> str | None:
    """The request field a pydantic/ninja error location points at.

    ``("body", "payload", "amount")`` → ``"amount"``; ``("query", "limit")`` → ``"limit"``;
    ``("body", "payload", "secondary_emails", 2)`` → ``"secondary_emails"``;
    ``("body", "payload")`` (the body as a whole) → None.
    """
    parts = list(loc)
    if parts and parts[0] in PARAM_SOURCES:
        source = parts.pop(0)
        # A body schema is read into one named argument ("payload"); drop that name.
        if source == "body" and parts and parts[0] in single_attr:
            parts.pop(0)
    names = [p for p in parts if isinstance(p, str)]
    return names[0] if names else None


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "Unknown field."
    if kind == "missing":
        return "This field is required."
    message = str(error.get("msg", "Invalid value."))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def convert_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ninja's errors as ``[{"field", "message"}]``, one per problem."""
    out: list[dict[str, Any]] = []
    for error in errors:
        field = field_of(error.get("loc", ()), {"payload"})
        message = _message(error)
        if field is None and error.get("loc", ("",))[0] == "body":
            message = (
                "A JSON object is required as the request body."
                if error.get("type") == "missing"
                else "The request body must be a JSON object."
            )
        entry = {"field": field, "message": message}
        if entry not in out:
            out.append(entry)
    return out


def install(api: NinjaAPI) -> None:
    """Register the handlers that give every error the shapes described above."""

    def respond(request: HttpRequest, status: int, detail: Any) -> HttpResponse:
        return api.create_response(request, {"detail": detail}, status=status)

    @api.exception_handler(ValidationError)
    def schema_invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return respond(request, 422, convert_validation_errors(exc.errors))

    @api.exception_handler(RecordInvalid)
    def record_invalid(request: HttpRequest, exc: RecordInvalid) -> HttpResponse:
        detail = [
            {"field": api_field_name(e["field"]), "message": e["message"]} for e in exc.errors
        ]
        return respond(request, 422, detail)

    @api.exception_handler(Invalid)
    def invalid(request: HttpRequest, exc: Invalid) -> HttpResponse:
        return respond(request, 422, exc.errors)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        message = exc.message if exc.message != "Unauthorized" else MISSING_CREDENTIALS
        response = respond(request, 401, message)
        response["WWW-Authenticate"] = 'Bearer realm="crmail"'
        return response

    @api.exception_handler(NotAllowed)
    def not_allowed(request: HttpRequest, exc: NotAllowed) -> HttpResponse:
        return respond(request, 403, str(exc) or "You may not do this.")

    @api.exception_handler(Forbidden)
    def forbidden(request: HttpRequest, exc: Forbidden) -> HttpResponse:
        return respond(request, 403, str(exc) or "You may not do this.")

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, NOT_FOUND)

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        message = exc.message
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            message = "The request body is not valid JSON."
        elif exc.status_code == 403 and message.startswith("CSRF"):
            message = "The CSRF check failed: send the X-CSRFToken header with session requests."
        return respond(request, exc.status_code, message)

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return respond(request, 413, "The request body is too large.")

    @api.exception_handler(SuspiciousOperation)
    def suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
        return respond(request, 400, "Bad request.")

    @api.exception_handler(Exception)
    def internal_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        # The path only: query strings can hold addresses, bodies and headers secrets.
        logger.error(
            "API error on %s %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            exc_info=exc,
        )
        return respond(request, 500, "Internal error")
