"""Opening a message: the page, its sandboxed body, downloads, cid images and the proxy."""

from __future__ import annotations

import http.server
import ipaddress
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from crmail.linking.models import Link
from crmail.mail.downloads import attachment_disposition
from crmail.mail.models import Message, ParseState
from crmail.mail.store import store_raw
from crmail.mailboxes.models import SentMessage
from crmail.sharing import actions as sharing_actions
from crmail.sharing.models import MessageOpen
from crmail.sharing.visibility import may_see_message
from crmail.web import image_proxy
from crmail.web.security import MESSAGE_BODY_POLICY
from crmail.web.tests.mail_samples import PDF, PNG, deliver, html_message, text_message
from tests import factories as f
from tests.harness.serving import serve_in_thread

pytestmark = pytest.mark.django_db

OFFER_HTML = (
    "<html><head><style>h1 { color: #2557d6 }</style></head><body>"
    '<h1>Spring offer</h1><p onclick="alert(1)">Dear Rex,</p><script>alert(1)</script>'
    '<img src="cid:logo@vendor.example" alt="Vendor logo">'
    '<img src="http://tracker.example/open.gif" width="1" height="1">'
    '<p style="background-image: url(https://cdn.example/bg.png)">Details at '
    '<a href="https://vendor.example/offer">our site</a>.</p></body></html>'
)
FILES = (
    ("Angebot für Café «Zürich».pdf", "application/pdf", PDF),
    ("page.html", "text/html", b"<script>alert(1)</script>"),
)


def body_of(response) -> str:  # type: ignore[no-untyped-def]
    return response.content.decode()


@pytest.fixture
def offer(org) -> Message:  # type: ignore[no-untyped-def]
    return deliver(org.rep, html_message(OFFER_HTML, attachments=FILES))


# -- the page --------------------------------------------------------------------------


def test_the_page_shows_headers_attachments_and_a_sandboxed_frame(org, client_for, offer):
    response = client_for(org.rep).get(reverse("web:message", args=[offer.pk]))
    assert response.status_code == 200
    page = body_of(response)
    assert '<h1 class="message-subject">Quarterly offer</h1>' in page
    assert "Ada Sender &lt;ada@vendor.example&gt;" in page
    assert "Rex Rep &lt;rep@crmail.test&gt;" in page
    assert "Carl &lt;carl@client.example&gt;" in page
    assert 'datetime="2026-03-02T09:30:00+00:00"' in page
    # Attachments, not the logo the HTML shows inline.
    assert "Angebot für Café «Zürich».pdf" in page and "page.html" in page
    assert page.count("download>") == 3  # two files and the original
    assert "logo" not in page.split("Attachments")[1].split("</ul>")[0]
    frame = re.search(r"<iframe[^>]*>", page, re.S).group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert "allow-scripts" not in frame and "allow-same-origin" not in frame
    assert f'src="/messages/{offer.pk}/body/"' in frame
    # The mail's own HTML is never in the page itself.
    assert "Spring offer" not in page and "tracker.example" not in page
    assert "2 remote images blocked" in page
    assert 'href="?images=1"' in page


def test_the_page_carries_crmails_policy_and_the_frame_its_own(org, client_for, offer):
    client = client_for(org.rep)
    page = client.get(reverse("web:message", args=[offer.pk]))
    assert "script-src 'self'" in page["Content-Security-Policy"]
    body = client.get(reverse("web:message_body", args=[offer.pk]))
    assert body.status_code == 200
    assert body["Content-Security-Policy"] == MESSAGE_BODY_POLICY
    csp = body["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "img-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert "sandbox allow-popups allow-popups-to-escape-sandbox" in csp
    assert body["X-Content-Type-Options"] == "nosniff"
    assert body["X-Frame-Options"] == "SAMEORIGIN"
    assert body["Referrer-Policy"] == "no-referrer"
    assert "no-store" in body["Cache-Control"]


def test_the_frame_holds_the_cleaned_html(org, client_for, offer):
    html = body_of(client_for(org.rep).get(reverse("web:message_body", args=[offer.pk])))
    assert '<h1 style="color: #2557d6">Spring offer</h1>' in html
    assert "<script>alert" not in html and "onclick" not in html
    assert "tracker.example" not in html and "cdn.example" not in html
    src = re.search(r'<img src="([^"]+)" alt="Vendor logo">', html).group(1)
    assert src.startswith(f"/messages/{offer.pk}/inline/")
    link = re.search(r'<a href="https://vendor.example/offer"[^>]*>', html).group(0)
    assert 'target="_blank"' in link and 'rel="noopener noreferrer nofollow"' in link


def test_show_remote_images_rewrites_them_to_the_proxy(org, client_for, offer):
    client = client_for(org.rep)
    page = body_of(client.get(reverse("web:message", args=[offer.pk]) + "?images=1"))
    assert f'src="/messages/{offer.pk}/body/?images=1"' in page
    assert "Show remote images" not in page and "Block them again" in page
    html = body_of(client.get(reverse("web:message_body", args=[offer.pk]) + "?images=1"))
    proxied = re.findall(r"/messages/remote-image/\?u=([^\"&]+)", html.replace("&quot;", '"'))
    assert len(proxied) == 2
    from urllib.parse import unquote

    assert {image_proxy.unsign(unquote(t)) for t in proxied} == {
        "http://tracker.example/open.gif",
        "https://cdn.example/bg.png",
    }
    assert "tracker.example" not in html and "cdn.example" not in html


def test_text_mail_is_escaped_with_links(org, client_for):
    message = deliver(
        org.rep, text_message("Hi <b>Rex</b>,\nsee https://vendor.example/x?a=1&b=2 <script>")
    )
    client = client_for(org.rep)
    assert "remote image" not in body_of(client.get(reverse("web:message", args=[message.pk])))
    html = body_of(client.get(reverse("web:message_body", args=[message.pk])))
    assert "Hi &lt;b&gt;Rex&lt;/b&gt;," in html and "&lt;script&gt;" in html
    assert '<a href="https://vendor.example/x?a=1&amp;b=2" target="_blank"' in html


def test_a_message_waiting_to_be_parsed_shows_all_the_same(org, client_for):
    message = deliver(org.rep, html_message("<p>Fresh</p>", subject="Just arrived"), parse=False)
    assert message.parse_state == ParseState.PENDING
    client = client_for(org.rep)
    assert "Just arrived" in body_of(client.get(reverse("web:message", args=[message.pk])))
    assert "<p>Fresh</p>" in body_of(client.get(reverse("web:message_body", args=[message.pk])))


def test_a_message_that_failed_to_parse_shows_its_header_lines_and_downloads(org, client_for):
    raw = b"From: <script>alert(1)</script>@x\r\nSubject: broken\r\n\r\n\xff\xfe garbage"
    message = deliver(org.rep, raw, parse=False)
    Message.objects.filter(pk=message.pk).update(parse_state=ParseState.FAILED)
    client = client_for(org.rep)
    response = client.get(reverse("web:message", args=[message.pk]))
    assert response.status_code == 200
    page = body_of(response)
    assert "crmail could not read this message" in page
    assert '<h1 class="message-subject">broken</h1>' in page
    assert "From: &lt;script&gt;alert(1)&lt;/script&gt;@x\nSubject: broken" in page
    assert "<iframe" not in page and "garbage" not in page
    assert client.get(reverse("web:message_body", args=[message.pk])).status_code == 200
    original = client.get(reverse("web:message_raw", args=[message.pk]))
    assert original.status_code == 200 and original.content == raw
    attachment = reverse("web:message_attachment", args=[message.pk, 1])
    assert client.get(attachment).status_code == 404


def test_a_parser_crash_shows_the_unreadable_page_not_an_error(org, client_for, monkeypatch):
    message = deliver(org.rep, text_message("fine", subject="Crashes the parser"))

    def crash(raw: bytes) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("crmail.web.views.messages.parse_message", crash)
    client = client_for(org.rep)
    page = client.get(reverse("web:message", args=[message.pk]))
    assert page.status_code == 200 and "crmail could not read this message" in body_of(page)
    assert "Crashes the parser" in body_of(page)
    assert client.get(reverse("web:message_body", args=[message.pk])).status_code == 200


# -- who may open it -------------------------------------------------------------------


def test_who_may_open_a_message_follows_the_sharing_rules(org, client_for, offer):
    sent = store_raw(text_message("Sent from crmail", subject="Sent one"))
    SentMessage.objects.create(
        message=sent, sender=org.peer, from_address="peer@crmail.test", recipients=["x@y.z"]
    )
    # On no record: only the mailbox owner, or the sender of mail sent from crmail.
    assert may_see_message(org.rep, offer) and not may_see_message(org.peer, offer)
    assert may_see_message(org.peer, sent) and not may_see_message(org.rep, sent)
    # Not the manager nor an administrator either: nobody sees mail on no record but its own.
    assert not may_see_message(org.manager, offer) and not may_see_message(org.admin, offer)
    urls = [
        reverse("web:message", args=[offer.pk]),
        reverse("web:message_body", args=[offer.pk]),
        reverse("web:message_raw", args=[offer.pk]),
        reverse("web:message_attachment", args=[offer.pk, 5]),
    ]
    for viewer in (org.peer, org.manager, org.admin):
        client = client_for(viewer)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 404, (viewer, url)
            assert "Quarterly offer" not in body_of(response)
    assert client_for(org.peer).get(reverse("web:message", args=[sent.pk])).status_code == 200
    missing = client_for(org.rep).get(reverse("web:message", args=[offer.pk + 1000]))
    assert missing.status_code == 404
    # On a contact the manager may see, Rex's (public) mail opens for him; the peer still
    # cannot see the contact (contacts are private by default), so not the message.
    carl = f.contact(org.rep, "carl@client.example")
    Link.objects.create(
        message=offer,
        module="contacts",
        record_id=carl.pk,
        reason="address",
        address="carl@client.example",
        date=offer.date,
        created_at=offer.date,
    )
    assert may_see_message(org.manager, offer) and not may_see_message(org.peer, offer)
    assert client_for(org.manager).get(reverse("web:message", args=[offer.pk])).status_code == 200
    assert client_for(org.peer).get(reverse("web:message", args=[offer.pk])).status_code == 404
    opened = MessageOpen.objects.values_list("viewer__email", "message_id")
    assert set(opened) == {
        ("manager@crmail.test", offer.pk),
        ("peer@crmail.test", sent.pk),
    }


def test_signed_out_viewers_are_sent_to_sign_in(offer):
    for url in (
        reverse("web:message", args=[offer.pk]),
        reverse("web:message_body", args=[offer.pk]),
        reverse("web:message_raw", args=[offer.pk]),
    ):
        response = Client().get(url)
        assert response.status_code == 302 and "/sign-in/" in response["Location"]


# -- downloads -------------------------------------------------------------------------


def attachment_parts(client: Client, message: Message) -> dict[str, str]:
    page = body_of(client.get(reverse("web:message", args=[message.pk])))
    found = re.findall(r'<li><a href="([^"]+)" download>([^<]+)</a>', page)
    return {name: url for url, name in found}


def test_attachments_download_as_attachments_with_a_safe_type(org, client_for, offer):
    client = client_for(org.rep)
    parts = attachment_parts(client, offer)
    pdf = client.get(parts["Angebot für Café «Zürich».pdf"])
    assert pdf.status_code == 200 and pdf.content == PDF
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == (
        "attachment; filename=\"Angebot fur Cafe Zurich.pdf\"; filename*=UTF-8''"
        "Angebot%20f%C3%BCr%20Caf%C3%A9%20%C2%ABZ%C3%BCrich%C2%BB.pdf"
    )
    assert pdf["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in pdf["Content-Security-Policy"]
    page = client.get(parts["page.html"])
    assert page["Content-Type"] == "application/octet-stream"
    assert page["Content-Disposition"] == 'attachment; filename="page.html"'
    assert page.content == b"<script>alert(1)</script>"
    body_part = client.get(reverse("web:message_attachment", args=[offer.pk, 0]))
    assert body_part.status_code == 404  # the multipart container is no attachment
    assert client.get(reverse("web:message_attachment", args=[offer.pk, 99])).status_code == 404


def test_the_original_downloads_exactly(org, client_for, offer):
    from crmail.mail.store import raw_bytes

    response = client_for(org.rep).get(reverse("web:message_raw", args=[offer.pk]))
    assert response.content == raw_bytes(offer)
    assert response["Content-Disposition"] == f'attachment; filename="message-{offer.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_content_disposition_follows_rfc_6266():
    assert attachment_disposition("report.pdf") == 'attachment; filename="report.pdf"'
    assert attachment_disposition('a"b\\c\r\n.txt') == (
        "attachment; filename=\"a_b_c__.txt\"; filename*=UTF-8''a%22b%5Cc%0D%0A.txt"
    )
    assert attachment_disposition("日本.txt") == (
        "attachment; filename=\".txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"
    )
    assert attachment_disposition("日本").startswith('attachment; filename="download"')


# -- cid images ------------------------------------------------------------------------


def inline_src(client: Client, message: Message) -> str:
    html = body_of(client.get(reverse("web:message_body", args=[message.pk])))
    return re.search(r'<img src="([^"]+)" alt="Vendor logo">', html).group(1).replace("&amp;", "&")


def test_cid_images_are_served_from_the_message_with_a_signed_address(org, client_for, offer):
    src = inline_src(client_for(org.rep), offer)
    # The frame's requests carry no session cookie: the signature is what lets it in.
    response = Client().get(src)
    assert response.status_code == 200 and response.content == PNG
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    path, query = src.split("?", 1)
    assert Client().get(path).status_code == 404
    assert Client().get(path + "?s=forged").status_code == 404
    part = int(path.rstrip("/").rsplit("/", 1)[1])
    other_part = path.replace(f"/inline/{part}/", f"/inline/{part + 1}/")
    assert Client().get(f"{other_part}?{query}").status_code == 404


def test_a_cid_image_address_stops_working_when_its_viewer_may_no_longer_see_the_mail(
    org, client_for, offer
):
    carl = f.contact(org.rep, "carl@client.example")  # on a contact the manager sees
    Link.objects.create(
        message=offer,
        module="contacts",
        record_id=carl.pk,
        reason="address",
        address="carl@client.example",
        date=offer.date,
        created_at=offer.date,
    )
    assert may_see_message(org.manager, offer)  # the rep shares their mail
    src = inline_src(client_for(org.manager), offer)
    assert Client().get(src).status_code == 200
    sharing_actions.set_sharing(None, org.rep, mode="private")
    assert not may_see_message(org.manager, offer)
    assert Client().get(src).status_code == 404  # the copied address shows nothing now
    own = inline_src(client_for(org.rep), offer)
    assert Client().get(own).status_code == 200
    org.rep.is_active = False
    org.rep.save(update_fields=["is_active"])
    assert Client().get(own).status_code == 404


def test_a_cid_to_a_part_that_is_not_an_image_is_not_served(org, client_for):
    message = deliver(org.rep, html_message('<img src="cid:logo@vendor.example">', inline_png=None))
    html = body_of(client_for(org.rep).get(reverse("web:message_body", args=[message.pk])))
    assert "<img>" in html  # no such part: no src at all


# -- the image proxy -------------------------------------------------------------------


def proxy(url: str, client: Client | None = None, **headers: str):  # type: ignore[no-untyped-def]
    token = quote(image_proxy.sign(url))
    return (client or Client()).get(f"{reverse('web:remote_image')}?u={token}", **headers)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://127.1/x.png",
        "http://2130706433/x.png",
        "http://10.1.2.3/x.png",
        "http://172.16.0.1/x.png",
        "http://192.168.1.1/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/x.png",
        "http://0.0.0.0/x.png",
        "http://224.0.0.1/x.png",
        "http://240.0.0.1/x.png",
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://[fe80::1]/x.png",
        "http://[fc00::1]/x.png",
        "http://[64:ff9b::a00:1]/x.png",
        "http://[2002:7f00:1::]/x.png",
        "http://localhost/x.png",
        "http://localhost:5432/",
    ],
)
def test_the_proxy_refuses_private_and_reserved_addresses(url):
    response = proxy(url)
    assert response.status_code == 403, response.content
    assert b"private or reserved" in response.content
    assert response["Content-Type"].startswith("text/plain")


def test_the_proxy_refuses_a_host_name_resolving_to_loopback(monkeypatch):
    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        assert host == "images.attacker.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert proxy("http://images.attacker.example/x.png").status_code == 403


def test_the_proxy_refuses_a_name_with_one_private_answer_among_public_ones(monkeypatch):
    answers = [("93.184.216.34", 80), ("10.0.0.7", 80)]
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ip) for ip in answers],
    )
    assert proxy("http://mixed.example/x.png").status_code == 403


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x.png", "file:///etc/passwd", "javascript:alert(1)", "http:///x"]
)
def test_the_proxy_fetches_only_http_and_https(url):
    assert proxy(url).status_code == 400


def test_the_proxy_refuses_unsigned_and_tampered_addresses():
    url = reverse("web:remote_image")
    assert Client().get(url).status_code == 403
    assert Client().get(url + "?u=http://example.com/x.png").status_code == 403
    token = image_proxy.sign("http://example.com/x.png")
    value, sig = token.rsplit(":", 1)
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB") + ":" + sig
    assert Client().get(f"{url}?u={quote(tampered)}").status_code == 403
    other_salt = __import__("django.core.signing").core.signing.dumps("http://example.com/x.png")
    assert Client().get(f"{url}?u={quote(other_salt)}").status_code == 403


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False),
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.31.255.255", True),
        ("192.168.0.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.251", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("::", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("ff02::1", True),
        ("::ffff:10.0.0.1", True),
        ("64:ff9b::7f00:1", True),
        ("2002:a00:1::1", True),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo to 10.0.0.1
    ],
)
def test_forbidden_addresses(address, forbidden):
    assert image_proxy.forbidden_address(ipaddress.ip_address(address)) is forbidden


# A tiny image server on loopback, for the allowed case: the "is private" check is
# patched to let 127.0.0.1 (only) through in these tests.


@dataclass
class ImageServer:
    url: str
    seen: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def image_server(monkeypatch) -> Iterator[ImageServer]:
    seen: list[dict[str, str]] = []
    big = PNG + b"\0" * (image_proxy.MAX_BYTES + 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            path = urlsplit(self.path).path
            hops = parse_qs(urlsplit(self.path).query).get("n", ["0"])[0]
            if path == "/logo.png":
                self.answer(200, "image/png", PNG)
            elif path == "/hop":
                n = int(hops)
                location = "/logo.png" if n == 0 else f"/hop?n={n - 1}"
                self.answer(302, "text/plain", b"", location)
            elif path == "/inside":
                self.answer(302, "text/plain", b"", "http://10.0.0.1/logo.png")
            elif path == "/vector.svg":
                self.answer(200, "image/svg+xml", b"<svg onload=alert(1)></svg>")
            elif path == "/page":
                self.answer(200, "text/html", b"<script>alert(1)</script>")
            elif path == "/big.png":
                self.answer(200, "image/png", big)
            elif path == "/sneaky.png":  # no Content-Length, too long anyway
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(big)
            else:
                self.answer(404, "text/plain", b"no")

        def answer(self, status: int, ctype: str, data: bytes, location: str = "") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve_in_thread(server)
    real = image_proxy.forbidden_address
    loopback = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(image_proxy, "forbidden_address", lambda ip: ip != loopback and real(ip))
    try:
        yield ImageServer(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()


def test_the_proxy_answers_with_the_image_and_forwards_nothing_about_the_viewer(
    image_server, org, client_for
):
    client = client_for(org.rep)  # a signed-in viewer, with a session cookie
    response = proxy(
        image_server.url + "/logo.png",
        client,
        HTTP_REFERER="http://testserver/messages/1/body/",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 200 and response.content == PNG
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    (request,) = image_server.seen
    assert "cookie" not in request and "referer" not in request
    assert "203.0.113.9" not in str(request)
    assert request["host"] == image_server.url.removeprefix("http://")
    assert request["user-agent"] == image_proxy.USER_AGENT


def test_the_proxy_connects_to_the_address_it_checked(image_server, monkeypatch):
    port = int(image_server.url.rsplit(":", 1)[1])
    calls: list[str] = []

    def resolve_once(host, p, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve_once)
    response = proxy(f"http://images.vendor.example:{port}/logo.png")
    assert response.status_code == 200
    # The name is resolved once; the connection goes to the address found (a literal,
    # which the socket layer looks up without DNS), so no second answer can rebind it.
    assert calls == ["images.vendor.example", "127.0.0.1"]
    assert image_server.seen[0]["host"] == f"images.vendor.example:{port}"


def test_the_proxy_follows_up_to_three_redirects_checking_each(image_server):
    assert proxy(image_server.url + "/hop?n=2").status_code == 200  # 3 redirects
    assert proxy(image_server.url + "/hop?n=3").status_code == 502  # 4: too many
    inside = proxy(image_server.url + "/inside")
    assert inside.status_code == 403  # a redirect to a private address
    assert not any(
        r["path"].startswith("/logo") and "10.0.0.1" in r["host"] for r in image_server.seen
    )


def test_the_proxy_answers_only_raster_images_within_the_size_limit(image_server):
    assert proxy(image_server.url + "/vector.svg").status_code == 415
    assert proxy(image_server.url + "/page").status_code == 415
    assert proxy(image_server.url + "/big.png").status_code == 413
    assert proxy(image_server.url + "/sneaky.png").status_code == 413
    assert proxy(image_server.url + "/missing.png").status_code == 502


@pytest.fixture
def tls_image_server(tmp_path, monkeypatch) -> Iterator[tuple[int, str]]:
    """An HTTPS image host on loopback whose certificate names images.vendor.example."""
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.vendor.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("images.vendor.example")]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    serve_in_thread(server)
    loopback = ipaddress.ip_address("127.0.0.1")
    real = image_proxy.forbidden_address
    monkeypatch.setattr(image_proxy, "forbidden_address", lambda ip: ip != loopback and real(ip))
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))
        ],
    )
    try:
        yield server.server_address[1], str(cert_file)
    finally:
        server.shutdown()
        server.server_close()


def test_https_images_are_fetched_from_the_checked_address_with_the_certificate_verified(
    tls_image_server, monkeypatch
):
    port, ca_file = tls_image_server
    url = f"https://images.vendor.example:{port}/logo.png"
    untrusted = proxy(url)  # a certificate no authority signed: refused
    assert untrusted.status_code == 502 and b"SSLError" in untrusted.content
    pool = image_proxy.urllib3.HTTPSConnectionPool
    monkeypatch.setattr(
        image_proxy.urllib3,
        "HTTPSConnectionPool",
        lambda *a, **k: pool(*a, **{**k, "ca_certs": ca_file}),
    )
    response = proxy(url)  # trusted, and it names the host although crmail dialled 127.0.0.1
    assert response.status_code == 200 and response.content == PNG
    wrong_name = proxy(f"https://other.vendor.example:{port}/logo.png")
    assert wrong_name.status_code == 502  # the certificate does not name this host


def test_mail_dated_years_ahead_shows_its_date_line_and_when_it_is_listed(org, client_for):
    raw = text_message("See you then.").replace(
        b"Mon, 02 Mar 2026 09:30:00 +0000", b"Wed, 04 Oct 2028 16:05:00 +0000"
    )
    ahead = deliver(org.rep, raw)
    on_time = deliver(org.rep, text_message("On time.", subject="Plain reply"))
    page = body_of(client_for(org.rep).get(reverse("web:message", args=[ahead.pk])))
    assert 'datetime="2028-10-04T16:05:00+00:00"' in page  # the Date line as written
    assert "dated ahead by the sender's clock" in page
    assert f'datetime="{ahead.date.isoformat()}"' in page  # where lists put it
    page = body_of(client_for(org.rep).get(reverse("web:message", args=[on_time.pk])))
    assert "dated ahead" not in page and "carries no date" not in page


def test_mail_without_a_date_says_its_date_line_is_when_it_arrived(org, client_for):
    lines = text_message("No date here.").splitlines(keepends=True)
    raw = b"".join(line for line in lines if not line.startswith(b"Date:"))
    undated = deliver(org.rep, raw)
    page = body_of(client_for(org.rep).get(reverse("web:message", args=[undated.pk])))
    assert f'datetime="{undated.date.isoformat()}"' in page
    assert "(the message carries no date: this is when it arrived)" in page
