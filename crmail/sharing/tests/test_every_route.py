"""No route shows a message its viewer may not see (SPEC F5, F12; decisions 013 and 020).

One seeded organisation — mail that is private, public, internal (every other participant
at the owner's excluded domain), shared and not shared by a custom user, a deactivated
user's without a backup, sent from crmail, BCC'd to the dropbox, in nobody's list but its
owner's — each message carrying a marker of its own in its subject, its sender and its
body (and an attachment). Then every operation of the OpenAPI document and every pattern
of the URL conf is asked, as an administrator, the owner's manager, the owner, a peer and
an outsider, with its path parameters filled from that world (and the query parameters
that choose what a list shows: each Emails view and user, each folder, each owner), and
no answer may hold the marker of a message outside ``visible_messages(viewer)`` (on a
record's Emails list, outside ``visible_messages(viewer, module, id)``). A record page's
other views are asked as the page asks for them on a switch: its Emails list alone. The
API's writes get a body with their required fields (ids from the world); the pages' forms
are posted empty.
A backup is the one answer allowed more, for administrators: the whole mail of its user.
The page of a ``cid:`` image answers only to an address crmail signed for a viewer who may
see the message, so the walk, which has none, meets its 404.

The routes come from ``/api/v1/openapi.json`` and from the URL resolver, so a new route is
walked as soon as it exists; a path parameter the walk cannot fill fails the test, and so
does an answer 500 or a role never shown some message it may see (a walk that met only
404s would prove nothing). Every request runs in a savepoint rolled back afterwards:
writes (deleting a record, taking a backup, deactivating a user) leave the world as it was
for the next request and role.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from crmail.crm import task_actions
from crmail.crm.models import Pipeline, Record, Stage, Task
from crmail.domains import actions as domain_actions
from crmail.domains.models import Domain
from crmail.emailtemplates import actions as template_actions
from crmail.emailtemplates.models import EmailTemplate
from crmail.insights.models import ScheduledSend
from crmail.intelligence import pipeline
from crmail.intelligence.tests.substitute import engine_installed, use_substitute
from crmail.linking.models import Module
from crmail.mail import tags
from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message
from crmail.mail.store import store_raw
from crmail.mailboxes import tasks, twoway
from crmail.mailboxes.inbox import STREAMS
from crmail.mailboxes.models import Folder, LabelMove, Mailbox, SentMessage, Source
from crmail.mailboxes.queries import user_mail
from crmail.notifications.models import Kind, Notification
from crmail.orgaddresses.models import OrganisationAddress
from crmail.orgaddresses.tests.helpers import verified
from crmail.people import actions as people_actions
from crmail.people.models import ApiToken, Group, ModuleDefault, Profile, Role, User
from crmail.reports.models import SavedReport
from crmail.search import index as search_index
from crmail.sharing import actions
from crmail.sharing.emails import VIEWS as EMAIL_VIEWS
from crmail.sharing.tests.build import link, place
from crmail.sharing.visibility import record_model, visible_messages
from crmail.web.views import notifications as notification_pages
from crmail.webhooks import actions as webhook_actions
from crmail.webhooks.models import Endpoint
from crmail.workflows import actions as workflow_actions
from crmail.workflows.models import RunState, Workflow, WorkflowRun
from tests import factories as f

pytestmark = pytest.mark.django_db

CUSTOMER = "jane@customer.test"
WALK_TAG = "walk"
# The Emails views asked for besides the default ("all", asked with no view) and by user
# (asked with each user of the world's mail).
OTHER_VIEWS = [view for view in EMAIL_VIEWS if view not in ("all", "user")]
ATTACHMENT_PART = 2  # the attachment of every message (part 1 is the text)


# --- the world ------------------------------------------------------------------------


@dataclass
class World:
    roles: dict[str, User]  # who walks: admin, manager, owner, peer, outsider
    users: list[User]
    mail_users: list[User]  # those holding or sending mail: the Emails list's users
    records: list[Record]
    messages: dict[str, Message]  # marker -> message
    mailboxes: list[Mailbox]
    folders: list[Folder]
    groups: list[Group]
    role_rows: list[Role]
    tokens: dict[str, str] = field(default_factory=dict)
    allowed: dict[tuple[int, str | None, int | None], set[str]] = field(default_factory=dict)

    def markers_of(self, ids: set[int]) -> set[str]:
        return {marker for marker, m in self.messages.items() if m.pk in ids}

    def ids(self, model: type[Record]) -> list[int]:
        return [r.pk for r in self.records if isinstance(r, model)]

    def record_pairs(self) -> list[tuple[str, int]]:
        return [(type(r).MODULE, r.pk) for r in self.records]


_start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def _mail(marker: str, sender: str, to: list[str], n: int, reply_to: int | None = None) -> Message:
    """A real message whose subject, sender, body and attachment all carry ``marker``
    (a reply to message number ``reply_to``, when given: the same thread)."""
    msg = EmailMessage()
    local, _, domain = sender.partition("@")
    msg["From"] = f"{marker.title()} Sender <{local}.{marker}@{domain}>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"About {marker}"
    msg["Date"] = format_datetime(_start + timedelta(hours=n))
    msg["Message-ID"] = f"<{n}@mail.test>"  # a reply names it: no marker there
    if reply_to is not None:
        msg["In-Reply-To"] = msg["References"] = f"<{reply_to}@mail.test>"
    msg.set_content(f"Hello,\n\nthe words {marker} are in the body.\n")
    msg.add_attachment(
        f"notes {marker}\n".encode(), maintype="text", subtype="plain", filename=f"{marker}.txt"
    )
    stored = store_raw(msg.as_bytes())
    parse_stored([stored])
    stored.refresh_from_db()
    assert marker in stored.subject and marker in stored.from_address
    assert reply_to is None or stored.thread_id is not None
    return stored


def build_world() -> World:
    for module in Module.values:  # records open to all: the mail rules are what is walked
        ModuleDefault.objects.update_or_create(
            module=module, defaults={"level": "public_read_write"}
        )
    org = f.org()
    owner, peer, manager = org.rep, org.peer, org.manager
    custom = f.user("custom@crmail.test", name="Cus Tom", manager=manager)
    departed = f.user("departed@crmail.test", name="Dee Parted", manager=manager)
    actions.set_sharing(None, owner, mode="private")
    actions.set_sharing(None, custom, mode="custom")
    # peer: the default (public to everyone, crmail.test excluded); departed too.

    account = f.account(owner, "Customer Inc")
    jane = f.contact(owner, CUSTOMER, account=account)
    other = f.contact(owner, "other@customer.test", account=account)
    lead = f.lead(owner, "lead@customer.test")
    deal = f.deal(owner, "Big deal", contact=jane, account=account)
    second_deal = f.deal(owner, "Second deal", contact=jane, account=account)
    records: list[Record] = [account, jane, other, lead, deal, second_deal]
    actions.share_record(None, custom, Module.CONTACTS, jane.pk)

    boxes = {u.pk: _mailbox(u) for u in (owner, peer, custom, departed)}
    pop_box = _mailbox(peer, "peer.pop@crmail.test", protocol="pop3", active=False)
    group = Group.objects.create(name="Sales")
    group.users.add(owner, peer)

    messages: dict[str, Message] = {}
    # marker, sender, to, mailboxes, records; the public message answers the private one
    # (one thread, of which others see only the public half).
    plan: list[tuple[str, str, list[str], list[Mailbox], list[Record]]] = [
        ("mkaprivate", CUSTOMER, [owner.email], [boxes[owner.pk]], [jane, lead, deal]),
        ("mkbnolink", CUSTOMER, [owner.email], [boxes[owner.pk]], []),
        ("mkcpublic", CUSTOMER, [peer.email], [boxes[peer.pk]], [jane, deal]),
        ("mkdinternal", "colleague@crmail.test", [peer.email], [boxes[peer.pk]], [jane]),
        ("mkepop", CUSTOMER, [peer.email], [pop_box], [other]),
        ("mkfcustomon", CUSTOMER, [custom.email], [boxes[custom.pk]], [jane]),
        ("mkgcustomoff", CUSTOMER, [custom.email], [boxes[custom.pk]], [other, lead]),
        ("mkhdeparted", CUSTOMER, [departed.email], [boxes[departed.pk]], [jane, deal]),
        ("mkibothcopies", CUSTOMER, [owner.email, peer.email], list(boxes.values())[:2], [jane]),
        ("mkjsent", owner.email, [CUSTOMER], [boxes[owner.pk]], [jane]),
        ("mkkdropbox", owner.email, [CUSTOMER], [], [jane, deal]),  # BCC'd to the dropbox
    ]
    for n, (marker, sender, to, in_boxes, on) in enumerate(plan):
        message = _mail(marker, sender, to, n, 0 if marker == "mkcpublic" else None)
        for box in in_boxes:
            place(message, box)
        for record in on:
            link(message, record)
        messages[marker] = message
    SentMessage.objects.create(message=messages["mkjsent"], sender=owner, from_address=owner.email)
    SentMessage.objects.create(
        message=messages["mkkdropbox"],
        sender=owner,
        from_address=owner.email,
        source=Source.DROPBOX,
    )
    # Each holder of a message is told of it (customer mail alerts): the title names it.
    for message in messages.values():
        for box in Mailbox.objects.filter(locations__message=message).distinct():
            Notification.objects.get_or_create(
                user=box.owner,
                message=message,
                kind=Kind.CUSTOMER_MAIL,
                defaults={"title": f"New mail from {CUSTOMER}: {message.subject}"},
            )
    search_index.reindex()  # the signal that feeds it waits for a commit these tests never make
    # Tags: one on every message, and one naming each message's marker (a list of tags
    # must not name a tag of mail its reader may not see).
    for marker, message in messages.items():
        tags.tag_messages([message.pk], [WALK_TAG, f"tag-{marker}"], actor=None)
    # Tasks on every record, each from a message (its link shows only to who may see it).
    for record, marker in zip(records, itertools.cycle(messages), strict=False):
        task_actions.create_task(
            actor=None,
            module=type(record).MODULE,
            record_id=record.pk,
            title="Walk task",
            due=date(2026, 5, 4),
            owner=owner,
            message_id=messages[marker].pk,
        )
    people_actions.update_user(departed, {"is_active": False}, by=org.admin)
    departed.refresh_from_db()
    # Email templates, one shared and one personal, filled from any record.
    body = "{{Contact.first_name}} {{Deal.name}} {{Account.name}} {{Lead.company}} {{User.name}}"
    template_actions.do_create_template(owner, name="Walk shared", body=body, shared=True)
    template_actions.do_create_template(owner, name="Walk personal", body=body)
    SavedReport.objects.create(owner=owner, name="Walk by user", group_by="user")
    # A webhook, with a test call in its log.
    hook, _ = webhook_actions.create_endpoint(
        "https://hooks.customer.test/walk", ["message.linked"], by=org.admin
    )
    webhook_actions.send_test(hook, by=org.admin)
    # Organisation addresses: one everyone may send as, one waiting for its code.
    verified("sales@crmail.test", everyone=True)
    OrganisationAddress.objects.create(address="support@crmail.test")
    # A mail domain added on the server (pending: its records are shown).
    domain_actions.add("walk.example", by=None)
    # Workflow rules of the owner, the peer and the organisation, each with runs on mail
    # (a failed one included): their logs name only the mail each viewer may see.
    _workflows(org, owner, peer, messages, hook.pk)

    roles = {
        "admin": org.admin,
        "manager": manager,
        "owner": owner,
        "peer": peer,
        "outsider": org.outsider_manager,
    }
    mailboxes = [*boxes.values(), pop_box]
    return World(
        roles=roles,
        users=list(User.objects.order_by("pk")),
        mail_users=[owner, peer, custom, departed],
        records=records,
        messages=messages,
        mailboxes=mailboxes,
        folders=list(Folder.objects.filter(mailbox__in=mailboxes).order_by("pk")),
        groups=[group],
        role_rows=list(Role.objects.order_by("pk")),
    )


def _workflows(
    org: f.Org, owner: User, peer: User, messages: dict[str, Message], hook_id: int
) -> None:
    spec = {
        "triggers": ["incoming"],
        "conditions": [{"field": "subject", "op": "contains", "values": ["about"]}],
        "actions": [{"kind": "link_open_deal"}],
    }
    rules = [
        workflow_actions.create_workflow(by=owner, name="Walk own", spec=spec, enabled=True),
        workflow_actions.create_workflow(by=peer, name="Walk peer", spec=spec, enabled=True),
        workflow_actions.create_workflow(
            by=org.admin,
            name="Walk everyone",
            organisation=True,
            enabled=True,
            spec={
                **spec,
                "actions": [{"kind": "call_webhook", "params": {"endpoint_id": hook_id}}],
            },
        ),
    ]
    for rule in rules:
        for n, message in enumerate(messages.values()):
            WorkflowRun.objects.create(
                workflow=rule,
                message=message,
                trigger="incoming",
                state=RunState.FAILED if n == 0 else RunState.DONE,
                actions=spec["actions"],
                outcomes=[{"kind": "link_open_deal", "state": "done", "detail": "Linked"}],
                error="link_open_deal: the database went away" if n == 0 else "",
                attempts=6 if n == 0 else 1,
            )


def _mailbox(
    owner: User, email: str = "", *, protocol: str = "imap", active: bool = True
) -> Mailbox:
    box = Mailbox.objects.create(
        owner=owner,
        email=email or owner.email,
        protocol=protocol,
        is_active=active,
        host="127.0.0.1",
        port=9,
        login=owner.email,
    )
    Folder.objects.create(mailbox=box, remote_id="INBOX", name="Inbox", role="inbox")
    Folder.objects.create(mailbox=box, remote_id="Archive", name="Archive", role="archive")
    return box


class _AcceptingServer:
    """A mail server that takes every change a route makes to a copy (read, flag, move,
    delete): what it would hold after is not the point, what the answer shows is."""

    def set_flags(self, *args: Any) -> None:
        pass

    def move(self, *args: Any) -> None:
        return None

    def delete(self, *args: Any) -> None:
        return None

    def list_folders(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    # A sync asked for by a route would try a server: what it would store is not the point.
    monkeypatch.setattr(tasks, "request_sync", lambda mailbox: None)
    monkeypatch.setattr(twoway, "open_driver", lambda mailbox: _AcceptingServer())
    # The notifications' live stream answers one tick instead of holding on for a minute.
    monkeypatch.setattr(notification_pages, "STREAM_SECONDS", 0.0)
    built = build_world()
    built.tokens = {name: f.token(user) for name, user in built.roles.items()}
    # Email intelligence's results carry each message's text (its reply text): computed
    # for the whole world, so every route that shows them is walked with them.
    if not engine_installed():
        use_substitute(monkeypatch)
    pipeline._version.cache_clear()
    assert pipeline.analyse_messages([m.pk for m in built.messages.values()])
    return built


# --- asking, and what each answer may hold ---------------------------------------------


def _body(response: HttpResponse | StreamingHttpResponse) -> str:
    if isinstance(response, StreamingHttpResponse):
        data = b"".join(response.streaming_content)  # type: ignore[arg-type]
    else:
        data = response.content
    return data.decode("utf-8", "replace").lower()


def _ask(call: Callable[[], Any]) -> tuple[int, str]:
    """Run one request in a savepoint that is rolled back: the world stays as it was."""
    with transaction.atomic():
        response = call()
        result = response.status_code, _body(response)
        transaction.set_rollback(True)
    return result


def _may_show(
    world: World, viewer: User, module: str | None = None, pk: int | None = None
) -> set[str]:
    """The markers ``viewer`` may see: overall, or on one record (its Emails list)."""
    key = (viewer.pk, module, pk)
    if key not in world.allowed:
        visible = visible_messages(viewer, module, pk)
        world.allowed[key] = world.markers_of(set(visible.values_list("pk", flat=True)))
    return world.allowed[key]


_RECORD_EMAILS = re.compile(r"/api/v1/(leads|contacts|accounts|deals)/(\d+)/emails")
_RECORD_PAGES = ("record_detail", "record_email_thread")


def _backup_of(world: World, viewer: User, user_id: int) -> set[str]:
    """A mail backup is the whole mail of one user, handed to administrators only: the
    one route that shows mail beyond the rules, by design (SPEC F12, decision 020)."""
    if not viewer.is_admin:
        return set()
    user = User.objects.get(pk=user_id)
    return world.markers_of(set(user_mail(user).values_list("pk", flat=True)))


@dataclass
class Leak:
    role: str
    request: str
    status: int
    markers: set[str]

    def __str__(self) -> str:
        return f"{self.role}: {self.request} -> {self.status} shows {sorted(self.markers)}"


def _shown(world: World, body: str) -> set[str]:
    return {marker for marker in world.messages if marker in body}


def _check(
    world: World, role: str, request: str, status: int, body: str, allowed: set[str]
) -> Leak | None:
    extra = _shown(world, body) - allowed
    if status >= 500:
        return Leak(role, request, status, extra or {"(server error)"})
    return Leak(role, request, status, extra) if extra else None


# --- the API: every operation of the OpenAPI document ------------------------------------


def _api_path_values(world: World, path: str, name: str) -> list[Any]:
    """The values of path parameter ``name`` of ``path``: every row of its kind."""
    before = path.split("{" + name + "}")[0].rstrip("/").rsplit("/", 1)[-1]
    if name == "id":
        kinds: dict[str, list[int]] = {
            "messages": [m.pk for m in world.messages.values()],
            "mailboxes": [b.pk for b in world.mailboxes],
            "users": [u.pk for u in world.users],
            "pipelines": list(Pipeline.objects.values_list("pk", flat=True)),
            "groups": [g.pk for g in world.groups],
            "tokens": list(ApiToken.objects.values_list("pk", flat=True)),
            "templates": list(EmailTemplate.objects.values_list("pk", flat=True)),
            "webhooks": list(Endpoint.objects.values_list("pk", flat=True)),
            "domains": list(Domain.objects.values_list("pk", flat=True)),
            "workflows": list(Workflow.objects.values_list("pk", flat=True)),
            "tasks": list(Task.objects.values_list("pk", flat=True)),
            "organisation-addresses": list(
                OrganisationAddress.objects.values_list("pk", flat=True)
            ),
            "scheduled": list(ScheduledSend.objects.values_list("pk", flat=True)) or [999_999],
        }
        for module in Module.values:
            kinds[module] = world.ids(record_model(module))
        if before not in kinds:
            raise LookupError(f"{path}: no values for {{id}} after /{before}/")
        return kinds[before]
    simple: dict[str, list[Any]] = {
        "user_id": [u.pk for u in world.users],
        "folder_id": [x.pk for x in world.folders],
        "deal_id": world.ids(record_model(Module.DEALS)),
        "part": [ATTACHMENT_PART],
        "index": [0],  # a message's first meeting time (email intelligence)
        "name": [WALK_TAG, "tag-mkaprivate"],  # a tag's name
        # Mail asked live (privacy mode): the world's mailboxes keep copies, so none answers.
        "mailbox_id": [b.pk for b in world.mailboxes],
        "remote_id": ["1"],
        # The deal-state labels' moves: the world sorts nothing, so one that is not there.
        "move_id": list(LabelMove.objects.values_list("pk", flat=True)) or [999_999],
    }
    if name in simple:
        return simple[name]
    raise LookupError(f"{path}: no values for the path parameter {name!r}")


def _api_path_fillings(world: World, path: str, names: list[str]) -> list[dict[str, Any]]:
    """Every filling of the path's parameters; ``module`` and ``record_id`` come in pairs."""
    names = [n for n in names if n not in ("module", "record_id")]
    paired = "{module}" in path or "{record_id}" in path
    if paired and not ("{module}" in path and "{record_id}" in path):
        raise LookupError(f"{path}: module and record_id go together")
    pairs = world.record_pairs() if paired else [None]
    choices = [_api_path_values(world, path, n) for n in names]
    fillings = []
    for pair in pairs:
        for combo in itertools.product(*choices):
            filling = dict(zip(names, combo, strict=True))
            if pair is not None:
                filling |= {"module": pair[0], "record_id": pair[1]}
            if _folder_in_mailbox(world, filling.get("id"), filling.get("folder_id")):
                fillings.append(filling)
    return fillings


def _folder_in_mailbox(world: World, mailbox_id: Any, folder_id: Any) -> bool:
    """A folder is asked for under its own mailbox (another's answers 404 like a missing
    one: that is the mailbox tests' business)."""
    if mailbox_id is None or folder_id is None:
        return True
    return any(x.pk == folder_id and x.mailbox_id == mailbox_id for x in world.folders)


def _api_query_variants(
    world: World, params: list[dict[str, Any]], filling: dict[str, Any]
) -> list[dict[str, Any]]:
    """The query strings that change which messages a list shows: each view (each user for
    view=user) and each folder; other query parameters keep their defaults."""
    names = {p["name"] for p in params if p["in"] == "query"}
    variants: list[dict[str, Any]] = [{}]
    if "view" in names:
        variants += [{"view": v} for v in OTHER_VIEWS]
        variants += [{"view": "user", "user": u.pk} for u in world.mail_users]
    if "folder" in names:  # the folders of the mailbox listed
        variants += [{"folder": x.pk} for x in world.folders if x.mailbox_id == filling.get("id")]
    if "owner" in names:
        variants += [{"owner": u.pk} for u in world.users]
    if "stream" in names:  # the inbox: each stream, each folder (another's answers 404)
        variants += [{"stream": s} for s in STREAMS]
        variants += [{"folder": x.pk} for x in world.folders]
        variants += [{"stream": "deals", "unread": "true"}]
    if "module" in names:  # a message's sender, as a record
        variants = [{"module": module} for module in SENDER_MODULES]
    if "tag" in names:  # the inbox, search and Emails lists by tag
        variants += [{"tag": WALK_TAG}]
    if "has_attachment" in names:  # search: every marker, on each record, and filters alone
        variants += [{"q": "mk"}, {"q": "about"}, {"has_attachment": "true"}]
        variants += [{"q": "mk", "record": f"{m}:{pk}"} for m, pk in world.record_pairs()]
        variants += [{"q": "mk", "mailbox": b.pk} for b in world.mailboxes]
    return variants


Request = tuple[str, str, dict[str, Any], dict[str, Any]]


def api_requests(world: World, doc: dict[str, Any]) -> Iterator[Request]:
    """(method, path, query, body) for every operation, path parameters filled from
    ``world``."""
    for template, operations in doc["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            names = [p["name"] for p in params if p["in"] == "path"]
            body = _api_body(world, doc, operation)
            assert set(names) == set(re.findall(r"{(\w+)}", template)), template
            for filling in _api_path_fillings(world, template, names):
                path = template.format(**filling)
                queries = _api_query_variants(world, params, filling) if method == "get" else [{}]
                for query in queries:
                    yield method.upper(), path, query, body


def test_no_api_route_shows_mail_its_caller_may_not_see(world: World) -> None:
    doc = Client().get("/api/v1/openapi.json").json()
    requests = list(api_requests(world, doc))
    operations = {(m, p) for m, p, _, _ in requests}
    assert ("GET", f"/api/v1/messages/{world.messages['mkaprivate'].pk}") in operations
    leaks: list[Leak] = []
    for role, viewer in world.roles.items():
        client = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens[role]}")
        allowed = _may_show(world, viewer)
        assert allowed and allowed != set(world.messages), role  # the world tells roles apart
        seen: set[str] = set()
        for method, path, query, body in requests:
            may = allowed
            found = re.fullmatch(r"/api/v1/users/(\d+)/mail-backup", path)
            if found:
                may = allowed | _backup_of(world, viewer, int(found[1]))
            on_record = _RECORD_EMAILS.fullmatch(path)
            if on_record:  # a record's list: only what the viewer may see on that record
                may = _may_show(world, viewer, on_record[1], int(on_record[2]))
            status, answer = _ask(_api_call(client, method, path, query, body))
            seen |= _shown(world, answer)
            leak = _check(world, role, f"{method} {path} {query or ''}", status, answer, may)
            if leak:
                leaks.append(leak)
        assert allowed <= seen, f"{role} was never shown {sorted(allowed - seen)}"
    assert not leaks, "\n".join(map(str, leaks))


def _api_call(
    client: Client, method: str, path: str, query: dict[str, Any], body: dict[str, Any]
) -> Callable[[], Any]:
    if method == "GET":
        return lambda: client.get(path, query)
    send = getattr(client, method.lower())
    return lambda: send(path, data=json.dumps(body), content_type="application/json")


def _schema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref") or next(
        (x["$ref"] for x in schema.get("anyOf", []) + schema.get("allOf", []) if "$ref" in x), ""
    )
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def _api_body(world: World, doc: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    """A body with the operation's required fields, so that the route itself answers (not
    only its input check): ids from the world, a deal for the deals' ids."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return {}
    schema = _schema(doc, content["schema"])
    deals = world.ids(record_model(Module.DEALS))
    body: dict[str, Any] = {}
    for name in schema.get("required", []):
        prop = _schema(doc, schema["properties"][name])
        kind = prop.get("type") or next(
            (x.get("type") for x in prop.get("anyOf", []) if x.get("type") != "null"), None
        )
        if "enum" in prop:
            body[name] = prop["enum"][0]
        elif name in ("deal_id", "to_deal_id"):
            body[name] = deals[-1]
        elif name == "folder_id":  # a folder of the mailbox holding the caller's copy
            body[name] = world.folders[-1].pk
        elif name == "record_id":  # a record of the module chosen above
            body[name] = world.ids(record_model(body.get("module", Module.LEADS)))[0]
        elif prop.get("format") == "date":
            body[name] = "2026-05-04"
        elif name == "stage_id":
            body[name] = Stage.objects.values_list("pk", flat=True).first()
        elif kind == "integer":
            body[name] = world.users[0].pk
        elif kind == "boolean":
            body[name] = False
        elif kind == "array":
            body[name] = [CUSTOMER]
        elif name in ("email", "from"):
            body[name] = "walk@customer.test"
        else:
            body[name] = "Walk"
    if not body and "seen" in schema.get("properties", {}):  # one of its fields is needed
        body["seen"] = True
    return body


# --- the web: every pattern of the URL conf ---------------------------------------------


@dataclass(frozen=True)
class Pattern:
    route: str  # the full route, "messages/<int:pk>/"
    name: str
    params: tuple[str, ...]


def _patterns(resolvers: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[Pattern]:
    for entry in resolvers:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, route)
        else:
            params = tuple(re.findall(r"<(?:\w+:)?(\w+)>", route))
            yield Pattern(route, entry.name or "", params)


# The first literal part of a route says what its ``pk`` is.
_PK_KINDS = (
    ("messages/", "message"),
    ("settings/users/", "user"),
    ("settings/departed/", "user"),
    ("settings/sharing/", "user"),
    ("settings/roles/", "role"),
    ("settings/groups/", "group"),
    ("settings/profiles/", "profile"),
    ("account/tokens/", "token"),
    ("settings/mail/", "mailbox"),
    ("templates/", "template"),
    ("settings/webhooks/", "webhook"),
    ("settings/organisation-addresses/", "orgaddress"),
    ("settings/domains/", "domain"),
    ("settings/workflows/", "workflow"),
    ("notifications/", "notification"),
    ("tasks/", "task"),
    ("scheduled/", "scheduled"),
    ("reports/", "report"),
)


# A sender becomes a contact (leads take the same path) and never a deal (404): walking
# these two keeps the walk's time within the suite's budget.
SENDER_MODULES = (Module.CONTACTS.value, Module.DEALS.value)


def _web_values(world: World, pattern: Pattern, name: str) -> list[Any]:
    kinds: dict[str, list[Any]] = {
        "message": [m.pk for m in world.messages.values()],
        "user": [u.pk for u in world.users],
        "role": [r.pk for r in world.role_rows],
        "group": [g.pk for g in world.groups],
        "mailbox": [b.pk for b in world.mailboxes],
        "profile": list(Profile.objects.values_list("pk", flat=True)),
        "token": list(ApiToken.objects.values_list("pk", flat=True)),
        "template": list(EmailTemplate.objects.values_list("pk", flat=True)),
        "webhook": list(Endpoint.objects.values_list("pk", flat=True)),
        "domain": list(Domain.objects.values_list("pk", flat=True)),
        "notification": list(Notification.objects.values_list("pk", flat=True)),
        "workflow": list(Workflow.objects.values_list("pk", flat=True)),
        "task": list(Task.objects.values_list("pk", flat=True)),
        "orgaddress": list(OrganisationAddress.objects.values_list("pk", flat=True)),
        "scheduled": list(ScheduledSend.objects.values_list("pk", flat=True)) or [999_999],
        "report": list(SavedReport.objects.values_list("pk", flat=True)) or [999_999],
    }
    if name == "pk":
        for prefix, kind in _PK_KINDS:
            if pattern.route.startswith(prefix):
                return kinds[kind]
        raise LookupError(f"{pattern.route}: no values for <pk>")
    simple: dict[str, list[Any]] = {
        "message_pk": kinds["message"],
        "deal_pk": world.ids(record_model(Module.DEALS)),
        "folder_pk": [x.pk for x in world.folders],
        "part": [ATTACHMENT_PART],
        "index": [0],  # a message's first meeting time (email intelligence)
        "path": ["crmail/crmail.css"],
        "mailbox_id": kinds["mailbox"],
        "remote_id": ["1"],
        "move_pk": list(LabelMove.objects.values_list("pk", flat=True)) or [999_999],
        "token": ["x"],  # tracked mail's pixel and links (SPEC F9): no mail behind them
    }
    if name in simple:
        return simple[name]
    raise LookupError(f"{pattern.route}: no values for <{name}>")


def _web_fillings(world: World, pattern: Pattern) -> list[dict[str, Any]]:
    names = list(pattern.params)
    pairs: list[dict[str, Any]] = [{}]
    if "module" in names:
        if pattern.route.startswith("messages/"):  # a message's sender as a new record
            pairs = [{"module": m} for m in SENDER_MODULES]
        elif "pk" in names:
            pairs = [{"module": m, "pk": pk} for m, pk in world.record_pairs()]
            names.remove("pk")
        else:
            pairs = [{"module": m} for m in Module.values]
        names.remove("module")
    choices = [_web_values(world, pattern, n) for n in names]
    fillings = [
        pair | dict(zip(names, combo, strict=True))
        for pair in pairs
        for combo in itertools.product(*choices)
    ]
    return [x for x in fillings if _folder_in_mailbox(world, x.get("pk"), x.get("folder_pk"))]


def _web_url(pattern: Pattern, filling: dict[str, Any]) -> str:
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(filling[m[1]]), pattern.route)
    return "/" + url.lstrip("^").rstrip("$")


# How the record page asks for its Emails list alone, on switching views (htmx).
_EMAILS_FRAGMENT = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "emails"}


def _web_queries(world: World, pattern: Pattern) -> list[dict[str, Any]]:
    """Query strings that choose what a page lists: the Emails views, users and folders."""
    if pattern.name == "record_detail":
        views = [{"view": v} for v in OTHER_VIEWS]
        users = ({"view": "user", "user": u.pk} for u in world.mail_users)
        return [{}, *views, *users, {"tag": WALK_TAG}]
    if pattern.name == "mailboxes":
        return [{}, *({"user": u.pk} for u in world.users)]
    if pattern.name == "inbox":
        folders = ({"folder": x.pk} for x in world.folders)
        return [{}, *({"stream": s} for s in STREAMS), *folders, {"tag": WALK_TAG}]
    if pattern.name == "search":
        return [
            {},
            {"q": "mk"},
            {"q": "has:attachment"},
            {"q": "about in:inbox"},
            {"q": "tag:walk"},
        ]
    return [{}]


def _web_headers(pattern: Pattern, query: dict[str, Any]) -> dict[str, str]:
    """A record page's other views are asked as the page asks them: its Emails list alone,
    which is all a view changes (the whole page is walked in its default view)."""
    return _EMAILS_FRAGMENT if pattern.name == "record_detail" and query else {}


def web_requests(world: World) -> Iterator[tuple[str, dict[str, Any], str, dict[str, str]]]:
    """(url, query, pattern name, headers) for every pattern of the URL conf but the API's
    (walked from its OpenAPI document) and the back office's (which holds no mail: checked
    apart)."""
    for pattern in _patterns(get_resolver().url_patterns):
        if pattern.route.startswith(("api/", "admin/")):
            continue
        for filling in _web_fillings(world, pattern):
            for query in _web_queries(world, pattern):
                headers = _web_headers(pattern, query)
                yield _web_url(pattern, filling), query, pattern.name, headers


def _web_call(
    client: Client, method: str, url: str, query: dict[str, Any], headers: dict[str, str]
) -> Callable[[], Any]:
    if method == "GET":
        return lambda: client.get(url, query, **headers)
    return lambda: client.post(url, {}, **headers)


def test_the_back_office_holds_no_mail() -> None:
    """The back office (Django admin at /admin/, not walked) registers no mail model."""
    mail_apps = {"mail", "mailboxes", "linking", "sharing"}
    registered = {model._meta.app_label for model in admin.site._registry}
    assert not registered & mail_apps


def test_no_page_shows_mail_its_viewer_may_not_see(world: World) -> None:
    requests = list(web_requests(world))
    names = {name for _, _, name, _ in requests}
    assert {"message", "record_detail", "mailbox_detail", "departed_backup"} <= names
    leaks: list[Leak] = []
    for role, viewer in world.roles.items():
        client = Client()
        client.force_login(viewer)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        allowed = _may_show(world, viewer)
        seen: set[str] = set()
        for url, query, name, headers in requests:
            may = allowed
            if name == "departed_backup":
                may = allowed | _backup_of(world, viewer, int(url.split("/")[3]))
            if name in _RECORD_PAGES:  # a record's page: only its mail the viewer may see
                module, pk = url.split("/")[1:3]
                may = _may_show(world, viewer, module, int(pk))
            for method in ("GET", "POST"):
                client.cookies[settings.SESSION_COOKIE_NAME] = session  # sign-out undone
                status, body = _ask(_web_call(client, method, url, query, headers))
                seen |= _shown(world, body)
                if method == "POST" and status == 405:
                    continue
                leak = _check(world, role, f"{method} {url} {query or ''}", status, body, may)
                if leak:
                    leaks.append(leak)
                if method == "GET" and status != 405:
                    break  # a page read: its form's empty submission shows nothing more
        assert allowed <= seen, f"{role} was never shown {sorted(allowed - seen)}"
    assert not leaks, "\n".join(map(str, leaks))
