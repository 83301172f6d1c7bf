"""Static files (CSS, htmx, the back-office admin's assets) served by crmail itself.

``crmail serve`` runs waitress with no web server in front, so crmail answers under
``STATIC_URL`` by asking Django's static file finders, whatever ``DEBUG`` says. Files are
small and few; each answer carries a guessed content type, ``Last-Modified`` and a
``Cache-Control`` that lets browsers keep it an hour and then revalidate.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils._os import safe_join
from django.utils.http import http_date
from django.views.decorators.http import require_safe
from django.views.static import was_modified_since

MAX_AGE = 3600
# Types a browser may act on; anything else is sent as a download of bytes.
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


def find(path: str) -> Path | None:
    """The file a static ``path`` names, or None (also for any path leaving the static dirs)."""
    normalized = posixpath.normpath(path).lstrip("/")
    if not path or normalized != path or normalized.startswith("..") or "\\" in path:
        return None
    try:
        safe_join("/static-root", normalized)
        found = finders.find(normalized)
    except (SuspiciousFileOperation, ValueError):
        return None
    if not found or isinstance(found, list):
        return None
    file = Path(found)
    return file if file.is_file() else None


@require_safe
def serve(request: HttpRequest, path: str) -> HttpResponse | FileResponse:
    file = find(path)
    if file is None:
        raise Http404("No such file.")
    stat = file.stat()
    headers = {"Cache-Control": f"public, max-age={MAX_AGE}"}
    if not was_modified_since(request.headers.get("If-Modified-Since"), int(stat.st_mtime)):
        return HttpResponseNotModified(headers=headers)
    content_type = TYPES.get(file.suffix.lower()) or "application/octet-stream"
    response = FileResponse(file.open("rb"), content_type=content_type)
    response.headers["Last-Modified"] = http_date(stat.st_mtime)
    response.headers["Cache-Control"] = headers["Cache-Control"]
    if content_type == "application/octet-stream":
        response.headers["Content-Disposition"] = "attachment"
    return response
