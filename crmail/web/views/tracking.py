"""The addresses tracked mail points at (SPEC F9, decision 057): the open pixel
(``/t/o/<token>``) and tracked links (``/t/c/<token>``). Recipients' mail programs reach
them, signed in to nothing: no login, no cookie, no session.

Each answer is decided by the token's signature alone (``insights.tokens``: HMAC, compared
in constant time), with no database work, so it takes the same time for any token:

- the pixel: the same 1x1 GIF with the same headers (``no-store``) for every token,
  valid, forged, altered or absent;
- a link: a redirect to the http(s) address signed into the token, and nowhere else; any
  other token gets a plain page saying the link cannot be followed (never a redirect).

The open or click is recorded after the answer has gone out (``AfterAnswer.close``, which
the WSGI server calls once the body is sent), and only for a token crmail signed
(``insights.recording``): a forged or altered token records nothing.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_safe

from crmail.insights import recording, tokens

log = logging.getLogger(__name__)

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0, private"
NOT_FOLLOWED = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Link not followed</title>"
    "<p>This link cannot be followed: it was changed on its way, or it is not a link crmail "
    "made. Ask the sender for the address.</p></html>"
)


class _AfterAnswer:
    """A response that runs ``after`` once it has been sent (WSGI calls ``close`` then)."""

    after: Callable[[], None] | None = None

    def close(self) -> None:
        try:
            if self.after is not None:
                self.after()
        except Exception:  # recording must never break the answer
            log.exception("insights: an open or click could not be recorded")
        finally:
            super().close()  # type: ignore[misc]


class PixelResponse(_AfterAnswer, HttpResponse):
    pass


class ClickRedirect(_AfterAnswer, HttpResponseRedirect):
    pass


class NotFollowed(_AfterAnswer, HttpResponse):
    pass


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = NO_STORE
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _recorder(found: tokens.Token | None, request: HttpRequest) -> Callable[[], None]:
    facts: dict[str, Any] = {
        "user_agent": request.META.get("HTTP_USER_AGENT", ""),
        "address": request.META.get("REMOTE_ADDR", ""),
        "method": request.method or "GET",
        "meta": {k: v for k, v in request.META.items() if k.startswith("HTTP_")},
    }

    def after() -> None:
        if found is not None:
            recording.record(found, **facts)

    return after


@require_safe
def tracking_pixel(request: HttpRequest, token: str) -> HttpResponse:
    found = tokens.read(token)
    response = PixelResponse(PIXEL, content_type="image/gif")
    response.after = _recorder(found if found is not None and found.kind == "o" else None, request)
    return _private(response)


@require_safe
def tracked_link(request: HttpRequest, token: str) -> HttpResponse:
    found = tokens.read(token)
    if found is None or found.kind != "c":
        page = NotFollowed(NOT_FOLLOWED, status=404, content_type="text/html; charset=utf-8")
        page.after = None
        return _private(page)
    response = ClickRedirect(found.url)
    response.after = _recorder(found, request)
    return _private(response)
