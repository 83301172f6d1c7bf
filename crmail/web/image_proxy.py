"""Remote images of a message, fetched by crmail instead of the viewer's browser.

The viewer's browser never talks to the sender's server, so the sender learns neither the
viewer's address nor when the message was opened by whom; crmail asks with no cookie, no
referrer and no forwarded address. Only URLs crmail itself put in a message frame are
fetched (``sign``/``unsign``, Django's signing with a salt of its own), so the proxy is
not an open relay for anyone who finds it.

Server-side request forgery is the danger: a message could point at
``http://127.0.0.1:5432/`` or a cloud metadata address. Every hop is checked: the host
is resolved once, every address it resolves to must be public (``forbidden_address``),
and crmail connects to that resolved address itself (TLS still verifies the certificate
for the host name), so a DNS answer that changes between the check and the connection
(rebinding) cannot move the request inside. Redirects are followed by hand, at most
``MAX_REDIRECTS``, each one checked the same way. Only ``image/*`` types a browser shows
safely (no SVG), at most ``MAX_BYTES``, within ``DEADLINE`` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urljoin

import urllib3
from django.core import signing

from crmail.insights.tracking import is_tracking_url
from crmail.net import (
    BadUrl,
    IpAddress,
    Target,
    UrlFault,
    addresses,
    forbidden_address,
    pinned_pool,
    split_url,
)

SALT = "crmail.web.image-proxy"
TOKEN_MAX_AGE = 7 * 24 * 3600  # a message frame's image addresses stay usable for a week
MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
DEADLINE = 20.0  # seconds for the whole fetch, redirects included
# Raster types browsers show as images and never run: no image/svg+xml.
IMAGE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/jpg",
        "image/pjpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "image/x-icon",
        "image/vnd.microsoft.icon",
    }
)
USER_AGENT = "crmail-image-proxy"


class Refused(Exception):
    """The image is not fetched; ``status`` is what the proxy answers."""

    def __init__(self, reason: str, status: int = 502) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str


def sign(url: str) -> str:
    """The token of a remote image address, for the proxy's URL."""
    return signing.dumps(url, salt=SALT, compress=True)


def unsign(token: str) -> str:
    """The address a token was issued for; ``Refused`` (403) when crmail did not issue it
    or it is older than ``TOKEN_MAX_AGE``."""
    try:
        url = signing.loads(token, salt=SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature as exc:
        raise Refused("not an address crmail issued", 403) from exc
    if not isinstance(url, str):
        raise Refused("not an address crmail issued", 403)
    return url


def resolve(host: str, port: int) -> IpAddress:
    """The address to connect to for ``host``: refused unless every address the name
    resolves to is allowed (one bad answer among good ones is enough to refuse)."""
    try:
        found = addresses(host, port)
    except OSError as exc:
        raise Refused("the image's host name does not resolve") from exc
    if any(forbidden_address(ip) for ip in found):
        raise Refused("the image's address is a private or reserved one", 403)
    return found[0]


_FAULTS = {
    UrlFault.INVALID: ("not a valid image address", 400),
    UrlFault.SCHEME: ("only http and https images are fetched", 400),
    UrlFault.CREDENTIALS: ("image addresses with credentials are not fetched", 400),
    UrlFault.NO_HOST: ("not a valid image address", 400),
}


def _target(url: str) -> Target:
    try:
        return split_url(url.strip())
    except BadUrl as exc:
        raise Refused(*_FAULTS[exc.fault]) from None


def fetch(url: str) -> Image:
    """The image at ``url``, every hop checked; ``Refused`` says why not."""
    started = time.monotonic()
    for _hop in range(MAX_REDIRECTS + 1):
        if is_tracking_url(url):  # a copy of tracked mail: reading it in crmail is no open
            raise Refused("crmail's own tracking pixel is never fetched", status=404)
        target = _target(url)
        ip = resolve(target.host, target.port)
        response, pool = _request(target, ip)
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location", "")
                if not location:
                    raise Refused("the image's server redirected nowhere")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise Refused(f"the image's server answered {response.status}")
            ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype not in IMAGE_TYPES:
                raise Refused("the remote file is not an image", 415)
            return Image(_read(response, started), ctype)
        finally:
            response.release_conn()
            pool.close()
    raise Refused("too many redirects")


def _request(
    target: Target, ip: IpAddress
) -> tuple[urllib3.BaseHTTPResponse, urllib3.HTTPConnectionPool]:
    """A GET to the already-checked address ``ip``, as if to the host name."""
    pool = pinned_pool(target, ip, urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT))
    headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8",
        "Accept-Encoding": "identity",
    }
    try:
        response = pool.urlopen(
            "GET",
            target.path,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        pool.close()
        raise Refused(f"the image's server could not be reached ({type(exc).__name__})") from exc
    return response, pool


def _read(response: urllib3.BaseHTTPResponse, started: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise Refused("the image is too large", 413)
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            chunk = response.read(64 * 1024, decode_content=False)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_BYTES:
                raise Refused("the image is too large", 413)
            if time.monotonic() - started > DEADLINE:
                raise Refused("the image took too long")
            chunks.append(chunk)
    except urllib3.exceptions.HTTPError as exc:
        raise Refused(f"the image could not be read ({type(exc).__name__})") from exc
    return b"".join(chunks)
