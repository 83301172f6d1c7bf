"""A local OAuth 2 authorization server: a plain one, Google's and Microsoft's endpoints.

One real HTTP server on a free loopback port serves three authorization servers:

- a plain one (``/authorize``, ``/token``, ``/introspect``), crmail's custom provider
  ``testidp``; it checks PKCE (S256), answers ``invalid_grant`` for revoked refresh tokens
  and serves the token introspection (RFC 7662) Dovecot's oauth2 passdb asks when a client
  logs in with XOAUTH2;
- Google's (``/google/o/oauth2/v2/auth`` and ``/google/token``), as Google's "Using OAuth
  2.0 for Web Server Applications" documents them: the authorization endpoint refuses a
  parameter it does not know (``400 invalid_request``, "Parameter not allowed for this
  message type"), a refresh answers without a new refresh token, errors are
  ``{"error", "error_description"}`` (``invalid_grant`` "Token has been expired or
  revoked.", ``invalid_client`` ``401``, ``unsupported_grant_type``, ``invalid_request``
  "Missing required parameter: …"), the token endpoint takes only ``POST``;
- Microsoft's v2.0 endpoints (``/microsoft/{tenant}/oauth2/v2.0/authorize`` and
  ``…/token``), as "Microsoft identity platform and OAuth 2.0 authorization code flow"
  documents them: an access token is for ONE resource, the one of the first scope asked
  (``https://graph.microsoft.com/…`` or ``https://outlook.office.com/…``; ``offline_access``,
  ``openid``, ``profile``, ``email`` name none), a refresh may ask for another resource
  the user consented to, every refresh hands out a new refresh token (the old one stays
  valid), errors carry ``error``, ``error_description`` ("AADSTS70000: …"),
  ``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id`` and ``error_uri``, and
  a ``GET`` on the token endpoint is AADSTS900561.

The user signs in and consents at once: the authorization endpoints redirect straight back
to ``redirect_uri`` with a code (or ``error=access_denied`` when ``deny`` is set), so a
browser test goes there and comes back. Access tokens are recorded with their user,
provider, resource and scopes (``issued``); ``on_issue`` callbacks let a test hand each new
token to an API stand-in (Gmail, Graph). ``fail_next`` makes the next token request answer
an error (``429`` with ``Retry-After``, ``503``), ``latency`` adds seconds to each request.

``serve()`` runs it; the fixtures ``auth_server`` (the plain provider ``testidp``) and
``oauth_server`` (Google, Microsoft and ``testidp``, crmail's settings pointed at it) start
it for a test.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.harness.serving import serve_in_thread

HOST = "127.0.0.1"
REDIRECT_URI = "http://127.0.0.1:9/mailboxes/oauth/callback"  # never fetched
CLIENT_ID = "crmail-test-client"
CLIENT_SECRET = "client-secret-for-tests"

GOOGLE = "google"
MICROSOFT = "microsoft"
PLAIN = "plain"
GRAPH_RESOURCE = "https://graph.microsoft.com"
OUTLOOK_RESOURCE = "https://outlook.office.com"
MICROSOFT_OIDC_SCOPES = frozenset({"offline_access", "openid", "profile", "email"})

# The parameters each endpoint takes (the providers' documents); Google refuses others at
# its authorization endpoint, Microsoft ignores them (``unexpected`` records them all).
GOOGLE_AUTHORIZE_PARAMS = frozenset(
    {
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "access_type",
        "state",
        "include_granted_scopes",
        "enable_granular_consent",
        "login_hint",
        "prompt",
        "code_challenge",
        "code_challenge_method",
        "hd",
        "nonce",
    }
)
GOOGLE_TOKEN_PARAMS = frozenset(
    {
        "client_id",
        "client_secret",
        "code",
        "code_verifier",
        "grant_type",
        "redirect_uri",
        "refresh_token",
    }
)
MICROSOFT_AUTHORIZE_PARAMS = frozenset(
    {
        "client_id",
        "response_type",
        "redirect_uri",
        "scope",
        "response_mode",
        "state",
        "prompt",
        "login_hint",
        "domain_hint",
        "code_challenge",
        "code_challenge_method",
        "nonce",
    }
)
MICROSOFT_TOKEN_PARAMS = frozenset(
    {
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "scope",
        "code",
        "redirect_uri",
        "grant_type",
        "code_verifier",
        "refresh_token",
    }
)
PLAIN_TOKEN_PARAMS = GOOGLE_TOKEN_PARAMS | {"scope"}


def resource_of(scope: str) -> str:
    """The resource a Microsoft scope belongs to (``""`` for the OpenID Connect ones)."""
    if scope in MICROSOFT_OIDC_SCOPES:
        return ""
    if scope.startswith(("https://", "http://")):
        parts = urllib.parse.urlsplit(scope)
        return f"{parts.scheme}://{parts.netloc}"
    return GRAPH_RESOURCE  # a bare permission name ("Mail.Read") is Microsoft Graph's


@dataclass(frozen=True)
class Issued:
    """An access token the server gave out."""

    token: str = field(repr=False)
    user: str
    provider: str  # PLAIN, GOOGLE or MICROSOFT
    resource: str  # Microsoft: the audience; others: ""
    scopes: tuple[str, ...]
    expires_at: float


@dataclass
class Grant:
    """What a refresh token stands for."""

    user: str
    provider: str
    scopes: tuple[str, ...]


class Refused(Exception):
    """An endpoint's error answer."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(body.get("error", ""))
        self.status, self.body, self.headers = status, body, headers or {}


def microsoft_error(status: int, error: str, code: int, description: str) -> Refused:
    """Microsoft identity platform's error body (``AADSTS<code>: …`` and its trace lines)."""
    now = datetime.now(UTC)
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    return Refused(
        status,
        {
            "error": error,
            "error_description": (
                f"AADSTS{code}: {description} Trace ID: {trace} Correlation ID: "
                f"{correlation} Timestamp: {stamp}"
            ),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
    )


def google_error(status: int, error: str, description: str) -> Refused:
    return Refused(status, {"error": error, "error_description": description})


class AuthServer:
    """State of the authorization servers; the handler below serves it over HTTP."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # on_issue listeners may look tokens up
        self.user = "alice"  # who signs in at the authorization endpoints
        self.deny = False  # the user declines instead of consenting
        self.expires_in = 3600
        self.rotate_refresh = False  # plain provider: a new refresh token with each refresh
        self.refresh_delay = 0.0  # seconds a refresh takes (widens races)
        self.latency = 0.0  # seconds added to every request
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, tuple[str, float]] = {}  # token -> (user, expires at)
        self.issued: dict[str, Issued] = {}
        self.refresh: dict[str, str] = {}  # live refresh token -> user
        self.grants_by_token: dict[str, Grant] = {}
        self.challenges: list[tuple[str, str]] = []  # (code_challenge, method) seen
        self.authorize_requests: list[dict[str, str]] = []  # each query, as sent
        self.grants: list[tuple[str, str]] = []  # (grant_type, "ok" or the error)
        self.token_requests: list[dict[str, str]] = []  # each form, secrets and all
        self.unexpected: list[tuple[str, str]] = []  # (endpoint, parameter) not documented
        self.introspected: list[tuple[str, bool]] = []
        self.on_issue: list[Callable[[Issued], None]] = []
        self.faults: list[Refused] = []
        self.url = ""

    # set-up and inspection ---------------------------------------------------

    def google_urls(self) -> dict[str, str]:
        return {
            "AUTHORIZE_URL": f"{self.url}/google/o/oauth2/v2/auth",
            "TOKEN_URL": f"{self.url}/google/token",
        }

    def microsoft_urls(self, tenant: str = "common") -> dict[str, str]:
        base = f"{self.url}/microsoft/{tenant}/oauth2/v2.0"
        return {"AUTHORIZE_URL": f"{base}/authorize", "TOKEN_URL": f"{base}/token"}

    def grant_refresh_token(
        self, user: str, provider: str = GOOGLE, scopes: tuple[str, ...] = ()
    ) -> str:
        """A refresh token as if ``user`` had consented to ``scopes`` at ``provider``."""
        token = self._new_refresh(provider)
        with self.lock:
            self.refresh[token] = user
            self.grants_by_token[token] = Grant(user, provider, scopes)
        return token

    def issue(
        self,
        user: str,
        *,
        refresh: bool,
        provider: str = PLAIN,
        scopes: tuple[str, ...] = ("mail",),
        resource: str = "",
    ) -> dict[str, Any]:
        """A token endpoint's success answer for ``user`` (and the tokens recorded)."""
        access = self._new_access(provider)
        expires_at = time.time() + self.expires_in
        self.access[access] = (user, expires_at)
        issued = Issued(access, user, provider, resource, scopes, expires_at)
        self.issued[access] = issued
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(scopes),
        }
        if provider == MICROSOFT:
            answer["ext_expires_in"] = self.expires_in
        if refresh:
            token = self._new_refresh(provider)
            self.refresh[token] = user
            self.grants_by_token[token] = Grant(user, provider, scopes)
            answer["refresh_token"] = token
        for listener in list(self.on_issue):
            listener(issued)
        return answer

    def revoke(self, refresh_token: str) -> None:
        with self.lock:
            self.refresh.pop(refresh_token, None)
            self.grants_by_token.pop(refresh_token, None)

    def expire(self, access_token: str) -> None:
        with self.lock:
            user, _ = self.access[access_token]
            self.access[access_token] = (user, time.time() - 1)

    def refresh_grants(self) -> list[str]:
        return [outcome for grant, outcome in self.grants if grant == "refresh_token"]

    def fail_next(
        self, status: int = 429, *, retry_after: int | None = 1, error: str = "rate_limited"
    ) -> None:
        """The next token request answers ``status`` (with ``Retry-After`` when given)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self.lock:
            self.faults.append(Refused(status, {"error": error}, headers))

    def valid(self, access_token: str, *, resource: str | None = None) -> Issued | None:
        """The live token ``access_token`` (for ``resource``, when given), else None."""
        with self.lock:
            issued = self.issued.get(access_token)
            user, expires = self.access.get(access_token, ("", 0.0))
        if issued is None or not user or expires <= time.time():
            return None
        if resource is not None and issued.resource != resource:
            return None
        return issued

    @staticmethod
    def _new_access(provider: str) -> str:
        if provider == GOOGLE:
            return "ya29." + secrets.token_urlsafe(32)
        if provider == MICROSOFT:
            return "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(32)
        return "at-" + secrets.token_urlsafe(24)

    @staticmethod
    def _new_refresh(provider: str) -> str:
        if provider == GOOGLE:
            return "1//0" + secrets.token_urlsafe(32)
        if provider == MICROSOFT:
            return "0.A" + secrets.token_urlsafe(48)
        return "rt-" + secrets.token_urlsafe(24)

    # authorization endpoints ---------------------------------------------------

    def authorize(self, provider: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """(status, headers, body): a redirect back to the client, or an error page."""
        with self.lock:
            self.authorize_requests.append(dict(query))
        known = {GOOGLE: GOOGLE_AUTHORIZE_PARAMS, MICROSOFT: MICROSOFT_AUTHORIZE_PARAMS}
        for name in query:
            if provider in known and name not in known[provider]:
                with self.lock:
                    self.unexpected.append((f"{provider} authorize", name))
                if provider == GOOGLE:
                    return (
                        400,
                        {},
                        self._page(f"Parameter not allowed for this message type: {name}"),
                    )
        if query.get("client_id") != self.client_id:
            if provider == MICROSOFT:
                return (
                    400,
                    {},
                    self._page(
                        f"AADSTS700016: Application with identifier '{query.get('client_id', '')}' "
                        "was not found in the directory."
                    ),
                )
            return 400, {}, self._page("Error 401: invalid_client. The OAuth client was not found.")
        redirect = query.get("redirect_uri", "")
        if not redirect:
            return 400, {}, self._page("Missing required parameter: redirect_uri")

        def back(params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
            if query.get("state") is not None:
                params["state"] = query["state"]
            sep = "&" if "?" in redirect else "?"
            return 302, {"Location": redirect + sep + urllib.parse.urlencode(params)}, {}

        if query.get("response_type") != "code":
            return back({"error": "unsupported_response_type"})
        scopes = tuple(query.get("scope", "").split())
        if provider in (GOOGLE, MICROSOFT) and not scopes:
            if provider == GOOGLE:
                return 400, {}, self._page("Missing required parameter: scope")
            return back(
                {
                    "error": "invalid_request",
                    "error_description": "AADSTS900144: The request body must contain the "
                    "following parameter: 'scope'.",
                }
            )
        if self.deny:
            params = {"error": "access_denied"}
            if provider == MICROSOFT:
                params["error_description"] = "AADSTS65004: User declined to consent."
            return back(params)
        challenge, method = query.get("code_challenge", ""), query.get("code_challenge_method", "")
        code = ("4/0" if provider == GOOGLE else "code-") + secrets.token_urlsafe(16)
        with self.lock:
            self.challenges.append((challenge, method))
            self.codes[code] = {
                "provider": provider,
                "challenge": challenge,
                "method": method,
                "redirect_uri": redirect,
                "user": self.user,
                "scopes": scopes or ("mail",),
            }
        return back({"code": code})

    @staticmethod
    def _page(text: str) -> str:
        return f"<!doctype html><title>Error 400</title><p>{text}</p>"

    # token endpoint ------------------------------------------------------------

    def token(
        self, provider: str, form: dict[str, str], basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.token_requests.append(dict(form))
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            return fault.status, fault.body, fault.headers
        grant = form.get("grant_type", "")
        try:
            answer = self._token(provider, form, basic)
        except Refused as refused:
            with self.lock:
                self.grants.append((grant, refused.body.get("error", "")))
            return refused.status, refused.body, refused.headers
        with self.lock:
            self.grants.append((grant, "ok"))
        return 200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"}

    def _token(
        self, provider: str, form: dict[str, str], basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        documented = {
            GOOGLE: GOOGLE_TOKEN_PARAMS,
            MICROSOFT: MICROSOFT_TOKEN_PARAMS,
            PLAIN: PLAIN_TOKEN_PARAMS,
        }[provider]
        with self.lock:
            self.unexpected.extend((f"{provider} token", n) for n in form if n not in documented)
        self._check_client(provider, form, basic)
        grant = form.get("grant_type", "")
        if not grant:
            raise self._missing(provider, "grant_type")
        if grant == "authorization_code":
            return self._code_grant(provider, form)
        if grant == "refresh_token":
            time.sleep(self.refresh_delay)
            return self._refresh_grant(provider, form)
        if provider == MICROSOFT:
            raise microsoft_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        raise google_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _missing(self, provider: str, name: str) -> Refused:
        if provider == MICROSOFT:
            return microsoft_error(
                400,
                "invalid_request",
                900144,
                f"The request body must contain the following parameter: '{name}'.",
            )
        return google_error(400, "invalid_request", f"Missing required parameter: {name}")

    def _check_client(
        self, provider: str, form: dict[str, str], basic: tuple[str, str] | None
    ) -> None:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if provider == PLAIN:
            if (client_id, secret) != (self.client_id, self.client_secret):
                raise Refused(401, {"error": "invalid_client"})
            return
        if not client_id:
            raise self._missing(provider, "client_id")
        if client_id != self.client_id:
            if provider == MICROSOFT:
                raise microsoft_error(
                    400,
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory.",
                )
            raise google_error(401, "invalid_client", "The OAuth client was not found.")
        if secret != self.client_secret:
            if provider == MICROSOFT:
                raise microsoft_error(
                    401, "invalid_client", 7000215, "Invalid client secret provided."
                )
            raise google_error(401, "invalid_client", "Unauthorized")

    def _code_grant(self, provider: str, form: dict[str, str]) -> dict[str, Any]:
        for name in ("code", "redirect_uri"):
            if provider != PLAIN and not form.get(name):
                raise self._missing(provider, name)
        with self.lock:
            issued = self.codes.pop(form.get("code", ""), None)
        if issued is None or issued["provider"] != provider:
            if provider == MICROSOFT:
                raise microsoft_error(
                    400,
                    "invalid_grant",
                    70000,
                    "The provided value for the 'code' parameter is not valid.",
                )
            raise google_error(400, "invalid_grant", "Malformed auth code.")
        if issued["redirect_uri"] != form.get("redirect_uri"):
            if provider == MICROSOFT:
                raise microsoft_error(
                    400,
                    "invalid_grant",
                    50148,
                    "The redirect_uri doesn't match the one of the authorization request.",
                )
            raise google_error(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if issued["method"] != "S256" or not verifier or expected != issued["challenge"]:
            if provider == MICROSOFT:
                raise microsoft_error(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
            if provider == GOOGLE:
                raise google_error(400, "invalid_grant", "Invalid code verifier.")
            raise Refused(400, {"error": "invalid_grant", "error_description": "PKCE check failed"})
        scopes: tuple[str, ...] = issued["scopes"]
        with self.lock:
            return self._grant_tokens(provider, issued["user"], scopes, scopes)

    def _refresh_grant(self, provider: str, form: dict[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        if provider != PLAIN and not token:
            raise self._missing(provider, "refresh_token")
        with self.lock:
            grant = self.grants_by_token.get(token)
            if token not in self.refresh or grant is None or grant.provider != provider:
                raise self._revoked(provider)
            asked = tuple(form.get("scope", "").split())
            if provider == MICROSOFT:
                if not asked:
                    raise self._missing(provider, "scope")
                granted_resources = {resource_of(s) for s in grant.scopes} - {""}
                for scope in asked:
                    resource = resource_of(scope)
                    if resource and resource not in granted_resources:
                        raise microsoft_error(
                            400,
                            "invalid_grant",
                            65001,
                            "The user or administrator has not consented to use the "
                            f"application with ID '{self.client_id}'. Send an interactive "
                            "authorization request for this user and resource.",
                        )
            if provider == PLAIN:
                answer = self.issue(grant.user, refresh=self.rotate_refresh, scopes=grant.scopes)
                if self.rotate_refresh:
                    del self.refresh[token]  # a used refresh token is spent
                    del self.grants_by_token[token]
                return answer
            return self._grant_tokens(
                provider, grant.user, grant.scopes, asked or grant.scopes, refreshed=True
            )

    def _grant_tokens(
        self,
        provider: str,
        user: str,
        granted: tuple[str, ...],
        asked: tuple[str, ...],
        *,
        refreshed: bool = False,
    ) -> dict[str, Any]:
        if provider == MICROSOFT:
            # The token is for the resource of the first scope that names one; the answer
            # lists the scopes granted for that resource (and offline_access).
            resource = next((r for r in map(resource_of, asked) if r), "")
            scopes = tuple(s for s in granted if resource_of(s) == resource)
            if "offline_access" in granted:
                scopes += ("offline_access",)
            answer = self.issue(
                user, refresh=False, provider=provider, scopes=scopes, resource=resource
            )
            if "offline_access" in granted:
                new = self._new_refresh(provider)
                self.refresh[new] = user
                self.grants_by_token[new] = Grant(user, provider, granted)
                answer["refresh_token"] = new
            return answer
        if provider == GOOGLE:
            # A refresh answers without a refresh token; the code exchange gives one.
            return self.issue(user, refresh=not refreshed, provider=provider, scopes=granted)
        return self.issue(user, refresh=True, scopes=granted)

    def _revoked(self, provider: str) -> Refused:
        if provider == MICROSOFT:
            return microsoft_error(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token "
                "is needed. The user might have changed or reset their password.",
            )
        return Refused(
            400,
            {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
        )

    # introspection (Dovecot) ---------------------------------------------------

    def introspect(self, form: dict[str, str]) -> dict[str, Any]:
        """RFC 7662 for Dovecot: a token for Microsoft Graph does not open IMAP."""
        token = form.get("token", "")
        issued = self.valid(token)
        active = issued is not None and issued.resource != GRAPH_RESOURCE
        with self.lock:
            self.introspected.append((token, active))
        return {"active": True, "username": issued.user} if issued and active else {"active": False}


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, str):
            data, kind = body.encode(), "text/html; charset=utf-8"
        else:
            data, kind = json.dumps(body).encode(), "application/json; charset=utf-8"
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, str]:
        """(provider, endpoint) for the request's path, or ("", "")."""
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/authorize", "/token", "/introspect"):
            return PLAIN, path[1:]
        if path == "/google/o/oauth2/v2/auth":
            return GOOGLE, "authorize"
        if path == "/google/token":
            return GOOGLE, "token"
        parts = path.split("/")
        if (
            len(parts) == 6
            and parts[1] == MICROSOFT
            and parts[3:5] == ["oauth2", "v2.0"]
            and parts[2]
            and parts[5] in ("authorize", "token")
        ):
            return MICROSOFT, parts[5]
        return "", ""

    def do_GET(self) -> None:
        auth = self.server.auth
        time.sleep(auth.latency)
        provider, endpoint = self._route()
        if endpoint == "authorize":
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            status, headers, body = auth.authorize(provider, query)
            self._send(status, body, headers)
        elif endpoint == "token" and provider == MICROSOFT:
            refused = microsoft_error(
                400,
                "invalid_request",
                900561,
                "The endpoint only accepts POST requests. Received a GET request.",
            )
            self._send(refused.status, refused.body)
        elif endpoint:
            self._send(
                405,
                {"error": "invalid_request", "error_description": "Method Not Allowed"},
                {"Allow": "POST"},
            )
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        auth = self.server.auth
        time.sleep(auth.latency)
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        provider, endpoint = self._route()
        if endpoint == "token":
            status, body, headers = auth.token(provider, form, self._basic())
            self._send(status, body, headers)
        elif endpoint == "introspect":
            self._send(200, auth.introspect(form))
        elif endpoint:
            self._send(405, {"error": "invalid_request"}, {"Allow": "GET"})
        else:
            self._send(404, {"error": "not_found"})

    def _basic(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return urllib.parse.unquote(user), urllib.parse.unquote(password)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, auth: AuthServer) -> None:
        super().__init__((HOST, 0), Handler)
        self.auth = auth


@contextlib.contextmanager
def serve(auth: AuthServer | None = None) -> Iterator[AuthServer]:
    """Run the authorization server in a thread; ``auth.url`` is its base URL."""
    auth = auth or AuthServer()
    server = _Server(auth)
    auth.url = f"http://{HOST}:{server.server_address[1]}"
    thread = serve_in_thread(server)
    try:
        yield auth
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def environment(auth: AuthServer, *, providers: bool = True) -> dict[str, str]:
    """The settings that make crmail sign in at ``auth``: the custom provider ``testidp``
    and, with ``providers``, Google and Microsoft with their endpoints moved here."""
    env = {
        "CRMAIL_OAUTH_TESTIDP_AUTHORIZE_URL": f"{auth.url}/authorize",
        "CRMAIL_OAUTH_TESTIDP_TOKEN_URL": f"{auth.url}/token",
        "CRMAIL_OAUTH_TESTIDP_CLIENT_ID": auth.client_id,
        "CRMAIL_OAUTH_TESTIDP_CLIENT_SECRET": auth.client_secret,
        "CRMAIL_OAUTH_TESTIDP_SCOPES": "mail offline",
        "CRMAIL_OAUTH_TESTIDP_LABEL": "Test Identity",
    }
    if providers:
        for key, urls in (("GOOGLE", auth.google_urls()), ("MICROSOFT", auth.microsoft_urls())):
            env[f"CRMAIL_OAUTH_{key}_CLIENT_ID"] = auth.client_id
            env[f"CRMAIL_OAUTH_{key}_CLIENT_SECRET"] = auth.client_secret
            for name, url in urls.items():
                env[f"CRMAIL_OAUTH_{key}_{name}"] = url
    return env


@pytest.fixture
def auth_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthServer]:
    """The authorization server, configured as crmail's custom provider ``testidp``."""
    with serve() as auth:
        for name, value in environment(auth, providers=False).items():
            monkeypatch.setenv(name, value)
        yield auth


@pytest.fixture
def oauth_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthServer]:
    """The authorization server as Google, Microsoft and ``testidp``: crmail's client for
    each is set up and their authorization and token endpoints point here."""
    with serve() as auth:
        for name, value in environment(auth).items():
            monkeypatch.setenv(name, value)
        yield auth


@pytest.fixture
def oauth_dovecot(dovecot_factory: Any, auth_server: AuthServer) -> Any:
    """A Dovecot whose oauth2 passdb asks ``auth_server`` about each XOAUTH2 token."""
    return dovecot_factory(oauth2_introspection_url=f"{auth_server.url}/introspect")


def follow(url: str) -> dict[str, str]:
    """Go to an authorization URL as the browser would: the query it is sent back with."""
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["Location"]).query))
