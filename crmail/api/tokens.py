"""``/tokens``: your API tokens: list them, make one (its secret answered once), revoke one.

Tokens are written by ``crmail.people.actions`` like the Account page and ``crmail token``.
Only a token's first characters (``hint``) are ever answered again; the secret is stored
as a hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from crmail.api import records
from crmail.api.auth import current_user
from crmail.api.errors import Forbidden, Invalid
from crmail.api.schemas import WRITE_ERRORS, Id, Input, errors_doc
from crmail.people import actions as people_actions
from crmail.people.models import ApiToken

router = Router(tags=["API tokens"])


class TokenOut(Schema):
    id: int
    name: str
    hint: str = Field(description="The token's first characters, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="To the minute; null: never used.")
    revoked_at: datetime | None = Field(description="Null while the token works.")


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret: answered only this once, keep it safe.")


class TokenIn(Input):
    name: str = Field("", max_length=people_actions.TOKEN_NAME_MAX)


def token_out(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.pk,
        "name": row.name,
        "hint": row.hint,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }


@router.get(
    "",
    response={200: list[TokenOut]},
    openapi_extra=errors_doc(401),
    summary="List your API tokens",
)
def list_tokens(request: HttpRequest) -> list[dict[str, Any]]:
    """Newest first, revoked ones included."""
    return [token_out(row) for row in people_actions.tokens_of(current_user(request))]


@router.post(
    "",
    response={201: NewTokenOut},
    openapi_extra=WRITE_ERRORS,
    summary="Make an API token (its secret is answered once)",
)
def create_token(request: HttpRequest, payload: TokenIn) -> dict[str, Any]:
    user = current_user(request)
    try:
        row, secret = people_actions.create_token(user, name=payload.name, by=user)
    except people_actions.Invalid as exc:
        raise Invalid(exc.errors) from None
    return {**token_out(row), "token": secret}


@router.delete(
    "/{id}",
    response={200: TokenOut},
    openapi_extra=WRITE_ERRORS,
    summary="Revoke one of your API tokens",
)
def revoke_token(request: HttpRequest, id: Id) -> dict[str, Any]:
    """It stops working at once (revoking the token that makes this request included).
    Revoking a revoked token changes nothing. Another user's token answers 404."""
    user = current_user(request)
    row = records.get_or_404(ApiToken.objects.filter(user=user), id)
    try:
        people_actions.revoke_token(row, by=user)
    except people_actions.NotAllowed as exc:
        raise Forbidden(str(exc)) from None
    return token_out(row)
