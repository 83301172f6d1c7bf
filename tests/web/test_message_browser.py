"""Opening a message in real Chromium: XSS vectors run nothing and load nothing remote.

The message is built from known vectors that try, each its own way, to run script (set
``window.top.__xss``, change ``document.title``, open a dialog, fetch a "canary" URL on
the live server), to load something from another host, to submit a form or to navigate.
The test watches from inside the browser (every request the page and its frame make,
dialogs, the frame's own state) and on the server (the canary's hits).

A second test serves the same vectors *uncleaned* in the frame, to check that the frame's
sandbox and Content-Security-Policy stop scripts and remote loads on their own, should
the cleaner ever miss something.
"""

from __future__ import annotations

import http.server
import ipaddress
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from playwright.sync_api import expect

from crmail.mail import display
from crmail.web import image_proxy
from crmail.web.tests.mail_samples import deliver, html_message, png, text_message
from tests import factories as f
from tests.harness.serving import serve_in_thread

pytestmark = pytest.mark.browser

CANARY_HITS: list[str] = []


def canary(request: HttpRequest, rest: str) -> HttpResponse:
    CANARY_HITS.append(request.path)
    return HttpResponse("caught", content_type="text/plain")


# This module is the live server's URLconf in these tests: crmail plus the canary.
urlpatterns = [path("canary/<path:rest>", canary), path("", include("crmail.config.urls"))]

PHOTO = png(60, 40, (23, 102, 58))


def vectors(image_server: str) -> str:
    """Mail HTML made of XSS vectors; ``/canary/js-…`` only a script could reach,
    ``/canary/load-…`` what loading or submitting would reach."""
    js = "window.top.__xss=1;document.title='pwned';alert(1);fetch('/canary/js-{}')"
    return f"""<html><head>
<meta http-equiv="refresh" content="1;url=/canary/load-refresh">
<base href="http://evil.invalid/">
<link rel="stylesheet" href="/canary/load-link.css">
<link rel="stylesheet" href="http://evil.invalid/x.css">
<style>@import url(/canary/load-import.css); @import url(http://evil.invalid/i.css);
  h1 {{ color: #17663a; background: url(/canary/load-style-bg.png) }}</style>
<script>{js.format("head-script")}</script>
</head><body onload="{js.format("body-onload")}">
<h1>Spring offer</h1>
<p>Dear Rex, our logo: <img src="cid:logo@vendor.example" alt="logo" width="40" height="40"></p>
<p>A photo: <img id="photo" src="{image_server}/photo.png" alt="photo"></p>
<img src="http://evil.invalid/tracker.gif" width="1" height="1">
<img src="x" onerror="{js.format("onerror")}">
<img src="/canary/load-relative-img">
<img src="javascript:{js.format("img-js")}">
<img src="data:image/svg+xml,&lt;svg xmlns='http://www.w3.org/2000/svg'
  onload='fetch(`/canary/js-data-svg`)'/&gt;">
<svg onload="{js.format("svg-onload")}"><script>{js.format("svg-script")}</script></svg>
<math><mtext><table><mglyph><style><img src=x onerror="{js.format("mxss")}">
</style></mglyph></table></mtext></math>
<p><a id="js-link" href="javascript:{js.format("js-link")}">a javascript: link</a>
<a id="data-link"
  href="data:text/html,&lt;script&gt;fetch('/canary/js-data-link')&lt;/script&gt;">a data: link</a>
<a href="https://vendor.example/offer">a real link</a></p>
<iframe src="/canary/load-iframe"></iframe>
<iframe srcdoc="&lt;script&gt;{js.format("srcdoc")}&lt;/script&gt;"></iframe>
<object data="/canary/load-object"></object><embed src="/canary/load-embed">
<video poster="/canary/load-poster"></video>
<form action="/canary/load-form" method="get"><input name="q" value="1">
<button id="submit" type="submit">Submit the form</button></form>
<div style="width: expression(fetch('/canary/js-expression')); color: #b42318">css expression</div>
<div style="background: url(javascript:fetch('/canary/js-css-url'))">css javascript url</div>
<div style="background-image: url(/canary/load-css-bg.png)">css relative url</div>
<div style="background-image: url(http://evil.invalid/bg.png)">css remote url</div>
<details open ontoggle="{js.format("ontoggle")}"><summary>details</summary>x</details>
<p style="-moz-binding: url(http://evil.invalid/x.xml#x); behavior: url(x.htc)">old IE/Gecko</p>
<a href="jav&#x09;ascript:{js.format("tab-link")}">tab link</a>
</body></html>"""


@pytest.fixture
def image_server(monkeypatch) -> Iterator[tuple[str, list[str]]]:
    """A remote image host on loopback (allowed for 127.0.0.1 only in this test), and a
    resolver for which every ``.invalid`` name fails at once."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PHOTO)))
            self.end_headers()
            self.wfile.write(PHOTO)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_thread(server)
    real_check, real_resolve = image_proxy.forbidden_address, socket.getaddrinfo
    loopback = ipaddress.ip_address("127.0.0.1")

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_resolve(host, *args, **kwargs)

    monkeypatch.setattr(
        image_proxy, "forbidden_address", lambda ip: ip != loopback and real_check(ip)
    )
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


class Watch:
    """Everything the browser asked for and every dialog it opened."""

    def __init__(self, page: Any) -> None:
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.image_statuses: dict[str, int] = {}
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("response", self._response)
        page.on("dialog", self._dialog)
        self.failed: dict[str, str] = {}  # url: why it failed ("csp": refused by the policy)
        page.on("requestfailed", lambda r: self.failed.__setitem__(r.url, r.failure or ""))

    def _response(self, response: Any) -> None:
        if "/remote-image/" in response.url or "/inline/" in response.url:
            self.image_statuses[response.url] = response.status

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def network(self) -> list[str]:
        """Requests that would go over the network (not ``javascript:`` or ``data:``
        addresses, which Chromium reports too when something tries to load one)."""
        return [u for u in self.requests if u.startswith(("http:", "https:", "ws:", "wss:"))]

    def off_site(self, origin: str, *, network_only: bool = False) -> list[str]:
        urls = self.network() if network_only else self.requests
        return [u for u in urls if not u.startswith(origin + "/")]


def body_frame(page: Any) -> Any:
    page.wait_for_load_state("load")
    frames = [fr for fr in page.frames if "/body/" in fr.url]
    assert len(frames) == 1, [fr.url for fr in page.frames]
    return frames[0]


def frame_state(frame: Any) -> dict[str, Any]:
    return frame.evaluate(
        "() => ({xss: window.__xss, title: document.title,"
        " topReachable: (() => { try { return window.top.document !== null } catch (e) {"
        " return false } })(),"
        " images: Array.from(document.images).map(i => [i.alt, i.getAttribute('src') || '',"
        " i.naturalWidth])})"
    )


def open_message(app: Any, settings: Any, image_server: str) -> tuple[Any, int, Watch]:
    settings.ROOT_URLCONF = __name__
    CANARY_HITS.clear()
    rep = f.user("rep@crmail.test", name="Rex Rep")
    message = deliver(
        rep,
        html_message(
            vectors(image_server),
            subject="Spring offer <script>alert(1)</script>",
            attachments=(("Price list 2026.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n"),),
        ),
    )
    app.sign_in("rep@crmail.test", f.PASSWORD)
    watch = Watch(app.page)
    app.go(f"/messages/{message.pk}/")
    return app.page, message.pk, watch


def test_xss_vectors_run_nothing_and_load_nothing_remote(app, settings, image_server):
    server_url, image_hits = image_server
    page, pk, watch = open_message(app, settings, server_url)
    expect(
        page.get_by_role("heading", name="Spring offer <script>alert(1)</script>")
    ).to_be_visible()
    expect(page.locator(".message-headers")).to_contain_text("Ada Sender <ada@vendor.example>")
    expect(page.get_by_role("link", name="Price list 2026.pdf")).to_be_visible()
    expect(page.get_by_role("note")).to_contain_text("remote images blocked")
    frame = body_frame(page)
    expect(
        page.frame_locator("iframe.message-frame").get_by_role("heading", name="Spring offer")
    ).to_be_visible()
    page.wait_for_timeout(1500)  # let a meta refresh or a late onload have its chance

    # Clicking what could navigate or submit: nothing runs and nothing is sent.
    inner = page.frame_locator("iframe.message-frame")
    inner.locator("#js-link, a:has-text('a javascript: link')").first.click()
    inner.get_by_text("tab link").click()
    page.wait_for_timeout(300)
    app.shot("message-page")

    state = frame_state(frame)
    assert state["xss"] is None
    assert state["topReachable"] is False  # an opaque origin: crmail's page is out of reach
    assert state["title"] == ""
    assert page.evaluate("window.__xss") is None
    assert page.title() == "Spring offer <script>alert(1)</script> · crmail"
    assert watch.dialogs == []
    assert CANARY_HITS == []
    assert [u for u in watch.requests if "/canary/" in u] == []
    assert watch.off_site(app.url) == []
    assert image_hits == []  # the remote photo was not fetched, not even by the proxy
    images = {alt: (src, width) for alt, src, width in state["images"]}
    assert images["logo"][0].startswith(f"/messages/{pk}/inline/") and images["logo"][1] > 0
    assert images["photo"] == ("", 0)
    assert all(src == "" or src.startswith(f"/messages/{pk}/inline/") for src, _ in images.values())
    assert page.url.endswith(f"/messages/{pk}/")
    assert page.js_errors == [] or all(
        "Content Security Policy" in e or "sandbox" in e.lower() for e in page.js_errors
    )

    # Remote images, on request: through crmail's proxy only.
    page.get_by_role("link", name="Show remote images").click()
    expect(page).to_have_url(re.compile(r"\?images=1$"))
    expect(page.get_by_role("note")).to_contain_text("shown through crmail")
    frame = body_frame(page)
    expect(page.frame_locator("iframe.message-frame").locator("img[alt=photo]")).to_be_visible()
    page.wait_for_timeout(800)
    state = frame_state(frame)
    images = {alt: (src, width) for alt, src, width in state["images"]}
    assert images["photo"][0].startswith("/messages/remote-image/?u=")
    assert images["photo"][1] == 60  # the photo came, through the proxy
    assert image_hits == ["/photo.png"]
    assert watch.off_site(app.url) == []
    proxied = [u for u in watch.image_statuses if "/remote-image/" in u]
    assert proxied and all(u.startswith(app.url + "/messages/remote-image/?u=") for u in proxied)
    assert CANARY_HITS == [] and watch.dialogs == []
    assert state["title"] == "" and state["xss"] is None
    app.shot("message-remote-images")


def test_the_frame_alone_stops_scripts_and_remote_loads(app, settings, image_server, monkeypatch):
    """Defence in depth: with the cleaner switched off, sandbox and CSP still hold."""
    monkeypatch.setattr(
        "crmail.web.views.messages.clean_html",
        lambda markup, **kwargs: display.SafeHtml(html=markup),
    )
    server_url, image_hits = image_server
    page, pk, watch = open_message(app, settings, server_url)
    body_frame(page)
    expect(
        page.frame_locator("iframe.message-frame").get_by_role("heading", name="Spring offer")
    ).to_be_visible()
    page.wait_for_timeout(2000)
    inner = page.frame_locator("iframe.message-frame")
    inner.locator("#js-link").click()
    inner.locator("#submit").click()
    page.wait_for_timeout(500)
    app.shot("message-page-uncleaned")

    assert watch.dialogs == []
    assert [h for h in CANARY_HITS if "/js-" in h] == []
    assert [u for u in watch.network() if "/canary/js-" in u] == []
    assert "/canary/load-form" not in " ".join(CANARY_HITS)  # forms are not allowed
    # Chromium reports the loads the policy refused as requests that failed with "csp";
    # none of them reached the network.
    off_site = watch.off_site(app.url, network_only=True)
    assert off_site, "the uncleaned vectors should at least try"
    assert {u: watch.failed.get(u) for u in off_site} == dict.fromkeys(off_site, "csp")
    assert image_hits == []
    assert page.evaluate("window.__xss") is None
    assert page.title().startswith("Spring offer")
    assert page.url.endswith(f"/messages/{pk}/")


def test_text_mail_and_a_message_that_could_not_be_read(app):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    text = deliver(
        rep,
        text_message(
            "Hello Rex,\n\nthe contract is at https://vendor.example/contract?id=7&v=2.\n"
            "Questions: ada@vendor.example\n\n<script>alert(1)</script>\n\n-- \nAda",
            subject="Contract",
        ),
    )
    broken = deliver(
        rep, b"Subject: lost\r\nContent-Type: multipart/mixed\r\n\r\n\xff", parse=False
    )
    from crmail.mail.models import Message, ParseState

    Message.objects.filter(pk=broken.pk).update(parse_state=ParseState.FAILED)
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page
    watch = Watch(page)
    app.go(f"/messages/{text.pk}/")
    inner = page.frame_locator("iframe.message-frame")
    link = inner.get_by_role("link", name="https://vendor.example/contract?id=7&v=2")
    expect(link).to_have_attribute("target", "_blank")
    expect(inner.get_by_role("link", name="ada@vendor.example")).to_have_attribute(
        "href", "mailto:ada@vendor.example"
    )
    expect(inner.locator("pre")).to_contain_text("<script>alert(1)</script>")
    app.shot("message-text")
    assert watch.dialogs == []

    app.go(f"/messages/{broken.pk}/")
    expect(page.get_by_role("note")).to_contain_text("crmail could not read this message")
    expect(page.locator("pre.raw-headers")).to_contain_text("Subject: lost")
    app.shot("message-failed")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download original").click()
    assert download.value.suggested_filename == f"message-{broken.pk}.eml"


def test_the_text_is_in_view_when_a_message_opens_and_comes_before_the_panels_on_a_phone(app):
    rep = f.user("rep@crmail.test", name="Rex Rep")
    text = deliver(rep, text_message("Hello Rex,\n\nthe contract is signed.\n\nAda"))
    app.sign_in("rep@crmail.test", f.PASSWORD)
    page = app.page
    app.go(f"/messages/{text.pk}/")
    frame = page.locator("iframe.message-frame")
    expect(page.frame_locator("iframe.message-frame").locator("body")).to_contain_text(
        "the contract is signed"
    )
    height = page.viewport_size["height"]
    box = frame.bounding_box()
    assert box["y"] + 200 < height  # a good part of the text, without scrolling
    panels = page.locator(".message-side")
    assert panels.bounding_box()["x"] > box["x"] + box["width"]  # beside it
    for name in ("Tags", "Deals", "Mailbox actions"):
        expect(panels.get_by_role("heading", name=name)).to_be_visible()
    app.shot("message-wide")

    page.set_viewport_size({"width": 400, "height": 800})
    app.go(f"/messages/{text.pk}/")
    box = frame.bounding_box()
    assert panels.bounding_box()["y"] > box["y"] + box["height"]  # below it
    assert box["y"] < 800
    app.shot("message-phone")
