"""Response headers every page of the web UI carries."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, HttpResponsePermanentRedirect

from crmail.config.proxy import VIA_PROXY

# Scripts and styles only from crmail's own static files: no inline script or style, no
# eval (htmx is configured without it), nothing from other origins.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# A message's body, shown in a sandboxed iframe of the message page: no script at all,
# images only from crmail (the message's own parts and the image proxy), the mail's
# inlined styles, framed only by crmail's own pages. ``sandbox`` repeats the iframe's
# sandbox for a body opened on its own, outside the frame.
MESSAGE_BODY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "img-src 'self'",
        "style-src 'unsafe-inline'",
        "font-src 'none'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'self'",
        "sandbox allow-popups allow-popups-to-escape-sandbox",
    ]
)

# Bytes from a message have a policy of their own: mail.downloads.DOWNLOAD_POLICY.


def add_security_headers(response: HttpResponseBase) -> HttpResponseBase:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    return response


class SecurityHeadersMiddleware:
    """The policy on every response crmail renders itself, error pages included, and
    Strict-Transport-Security on every response when ``CRMAIL_HTTPS`` is on.

    The back office (/admin/) and the API's interactive docs bring scripts of their own
    and keep Django's and ninja's defaults.
    """

    EXEMPT = ("/admin/", "/api/v1/docs")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if settings.HTTPS and request.META.get(VIA_PROXY) and not request.is_secure():
            # The HTTPS proxy received this over plain http (someone typed http://): the
            # same address over https. Only through a trusted proxy, which says how it was
            # reached; a request straight to crmail says nothing, and is served as it is.
            secure = "https://" + request.build_absolute_uri().removeprefix("http://")
            response: HttpResponseBase = HttpResponsePermanentRedirect(secure)
        else:
            response = self.get_response(request)
        if not request.path.startswith(self.EXEMPT):
            add_security_headers(response)
        if settings.HTTPS:
            # Every path, the back office too. crmail behind an HTTPS proxy may see the
            # request as http (an untrusted proxy); browsers ignore the header on http.
            response.headers.setdefault(
                "Strict-Transport-Security", f"max-age={settings.HSTS_SECONDS}"
            )
        return response
