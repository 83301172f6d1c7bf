"""An API client that signs requests with a user's token."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from crmail.people.models import User
from tests import factories as f

BASE = "/api/v1"


class ApiClient:
    """Requests to /api/v1 as one user, with their bearer token."""

    def __init__(self, user: User | None = None, token: str | None = None) -> None:
        self.client = Client()
        self.user = user
        self.token = token if token is not None else (f.token(user) if user else None)

    def _headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.get(BASE + path, params or {}, **self._headers())

    def send(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body))
        call = getattr(self.client, method.lower())
        return call(BASE + path, data=data, content_type="application/json", **self._headers())

    def post(self, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        return self.send("POST", path, body, raw)

    def patch(self, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        return self.send("PATCH", path, body, raw)

    def delete(self, path: str) -> Any:
        return self.send("DELETE", path)


def fields(response: Any) -> set[str | None]:
    """The fields a 422 answer names."""
    return {e["field"] for e in response.json()["detail"]}
