"""A known set of mail for the report tests, and who sees which of it (SPEC F5, F17).

Karl manages Mark and Claire (peers); Olga manages another branch. Contacts and deals are
public read, so everyone may view Jane and both deals. Mark shares his synced mail with
Claire (and so with Karl, his superior); Claire keeps hers private; Pat syncs over POP3
and Gil over Microsoft Graph, both sharing with everyone. The organisation's time zone
is Europe/Berlin.

Each message is described in ``SPECS`` (where it lies, who sent it, what it is on); the
tests count the expected figures from those descriptions with the rules of SPEC F5
written out in ``Spec.copy_seen_by`` / ``Spec.seen_by``, never through crmail's own
report code.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from crmail.crm.models import Deal, Record
from crmail.emailtemplates.models import EmailTemplate
from crmail.insights.models import Click, MessageInsight, Open
from crmail.mail.models import Message
from crmail.mailboxes.models import Mailbox, SentMessage
from crmail.people.models import ModuleDefault, User
from crmail.sharing import actions
from crmail.sharing.tests.build import mailbox, message, place
from tests import factories as f

CUSTOMER = "jane@customer.test"
TIME_ZONE = "Europe/Berlin"
T0 = datetime(2026, 9, 7, 9, tzinfo=UTC)  # the questions and answers of add_replies
H = timedelta(hours=1)
RECORD_TYPES = {"jane": "contacts", "deal_q": "deals", "deal_p": "deals"}


@dataclass(frozen=True)
class Spec:
    name: str
    at: datetime
    sender: str  # "customer" or a user's key
    copies: tuple[str, ...] = ()  # mailbox keys: "mark", "gil", "claire", "pat"
    sent: tuple[str, str] | None = None  # (user key, "crmail" | "dropbox")
    on: tuple[str, ...] = ()  # record keys: "jane", "deal_q", "deal_p"
    template: bool = False


SPECS = [
    Spec(
        "in_june",
        datetime(2026, 6, 3, 10, tzinfo=UTC),
        "customer",
        ("mark",),
        on=("jane", "deal_q"),
    ),
    Spec("out_june", datetime(2026, 6, 10, 9, tzinfo=UTC), "mark", ("mark",), on=("jane",)),
    Spec("unlinked", datetime(2026, 6, 20, 8, tzinfo=UTC), "customer", ("mark",)),
    # 23:30 UTC on 30 June is half past one on 1 July in Berlin
    Spec(
        "late_june", datetime(2026, 6, 30, 23, 30, tzinfo=UTC), "customer", ("pat",), on=("jane",)
    ),
    Spec("graph", datetime(2026, 7, 2, 12, tzinfo=UTC), "customer", ("gil",), on=("deal_q",)),
    Spec("claires", datetime(2026, 7, 5, 12, tzinfo=UTC), "customer", ("claire",), on=("jane",)),
    Spec(
        "sent",
        datetime(2026, 7, 20, 12, tzinfo=UTC),
        "mark",
        ("mark",),  # its copy in Mark's Sent folder
        sent=("mark", "crmail"),
        on=("deal_p",),
        template=True,
    ),
    Spec(
        "dropbox",
        datetime(2026, 8, 1, 12, tzinfo=UTC),
        "claire",
        sent=("claire", "dropbox"),
        on=("jane",),
    ),
    Spec(
        "popped", datetime(2026, 8, 15, 12, tzinfo=UTC), "customer", ("pat",), on=("jane", "deal_p")
    ),
]
PROTOCOLS = {"mark": "imap", "gil": "graph", "claire": "imap", "pat": "pop3"}
OWNERS = {"mark": "mark", "gil": "gil", "claire": "claire", "pat": "pat"}
# Whose synced mail reaches whom (besides its owner), on records they may view.
EVERYONE = {"karl", "mark", "claire", "olga", "pat", "gil"}
SHARES = {"mark": {"claire", "karl"}, "claire": set(), "pat": EVERYONE, "gil": EVERYONE}


def copy_seen_by(spec: Spec, viewer: str, box: str) -> bool:
    owner = OWNERS[box]
    return viewer == owner or (bool(spec.on) and viewer in SHARES[owner])


def seen_by(spec: Spec, viewer: str) -> bool:
    if any(copy_seen_by(spec, viewer, box) for box in spec.copies):
        return True
    return spec.sent is not None and (spec.sent[0] == viewer or bool(spec.on))


@dataclass
class World:
    users: dict[str, User]
    mailboxes: dict[str, Mailbox]
    records: dict[str, Record]
    template: EmailTemplate
    messages: dict[str, Message] = field(default_factory=dict)


def build(org: f.Org) -> World:
    for module in ("contacts", "deals"):
        ModuleDefault.objects.update_or_create(module=module, defaults={"level": "public_read"})
    users = {
        "karl": org.manager,
        "mark": org.rep,
        "claire": org.peer,
        "olga": org.outsider_manager,
        "pat": f.user("pat@crmail.test", name="Pat Pop", manager=org.manager),
        "gil": f.user("gil@crmail.test", name="Gil Graph", manager=org.manager),
    }
    for everyone in ("pat", "gil"):
        actions.set_sharing(None, users[everyone], mode="public", share_with=[])
    actions.set_sharing(None, users["mark"], mode="public", share_with=[users["claire"]])
    actions.set_sharing(None, users["claire"], mode="private")
    boxes = {
        "mark": mailbox(users["mark"]),
        "gil": mailbox(users["gil"], protocol="graph"),
        "claire": mailbox(users["claire"]),
        "pat": mailbox(users["pat"], protocol="pop3"),
    }
    records: dict[str, Record] = {
        "jane": f.contact(users["mark"], CUSTOMER, first_name="Jane", last_name="Doe"),
        "deal_q": f.deal(users["mark"], "Quick deal", "Qualification"),
        "deal_p": f.deal(users["mark"], "Price deal", "Proposal/Price Quote"),
    }
    template = EmailTemplate.objects.create(
        owner=users["mark"], name="Follow-up", subject="Hi", body="Hello", shared=True
    )
    world = World(users, boxes, records, template)
    for spec in SPECS:
        sender = CUSTOMER if spec.sender == "customer" else users[spec.sender].email
        to = [CUSTOMER] if spec.sender != "customer" else [users["mark"].email]
        msg = message(sender, to, on=[records[key] for key in spec.on])
        Message.objects.filter(pk=msg.pk).update(date=spec.at, from_address=sender)
        for box in spec.copies:
            place(msg, boxes[box])
        if spec.sent is not None:
            who, source = spec.sent
            sent = SentMessage.objects.create(
                message=msg, sender=users[who], from_address=sender, source=source
            )
            if spec.template:
                MessageInsight.objects.create(sent=sent, template=template)
        world.messages[spec.name] = msg
    return world


def stage_of(key: str, world: World) -> int:
    record = world.records[key]
    assert isinstance(record, Deal)
    return record.stage_id


def outbound(spec: Spec) -> bool:
    return spec.sent is not None or spec.sender != "customer"


def expected(
    world: World, viewer: str, group_by: str, specs: list[Spec] | None = None
) -> dict[str, tuple[int, int]]:
    """{key: (inbound, outbound)} counted from the descriptions."""
    counts: Counter[tuple[str, bool]] = Counter()
    for spec in SPECS if specs is None else specs:
        if not seen_by(spec, viewer):
            continue
        keys: set[str] = set()
        boxes = [b for b in spec.copies if copy_seen_by(spec, viewer, b)]
        if group_by == "user":
            keys = {str(world.users[OWNERS[b]].pk) for b in boxes}
            keys |= {str(world.users[spec.sent[0]].pk)} if spec.sent else set()
        elif group_by == "source":
            keys = {PROTOCOLS[b] for b in boxes} | ({spec.sent[1]} if spec.sent else set())
        elif group_by == "month":
            keys = {spec.at.astimezone(ZoneInfo(TIME_ZONE)).strftime("%Y-%m")}
        elif group_by == "record_type":
            keys = {RECORD_TYPES[r] for r in spec.on}
        elif group_by == "stage":
            keys = {str(stage_of(r, world)) for r in spec.on if r.startswith("deal")}
        elif group_by == "template":
            keys = {str(world.template.pk)} if spec.template else set()
        for key in keys:
            counts[(key, outbound(spec))] += 1
    keys = {key for key, _ in counts}
    return {key: (counts[(key, False)], counts[(key, True)]) for key in keys}


def add_replies(world: World) -> None:
    """Customer questions on Jane and their answers, from 7 September 2026 (after
    ``SPECS``): Mark answers q1 from crmail in 2 h (and again later), q2 from his mailbox
    in 30 min; Claire answers q3, in her private mailbox, in 1 h; Pat answers q4, in his
    public POP3 mailbox, from crmail in 4 h; q5 has no answer; q6's "answer" is dated
    before it."""
    users, boxes, jane = world.users, world.mailboxes, world.records["jane"]

    def mail(name: str, at: datetime, sender: str, box: str | None = None, **kw: str) -> Message:
        address = CUSTOMER if sender == "customer" else users[sender].email
        to = users["mark"].email if sender == "customer" else CUSTOMER
        msg = message(address, [to], on=[jane])
        Message.objects.filter(pk=msg.pk).update(
            date=at, from_address=address, message_id=f"{name}@mail.test", **kw
        )
        if box:
            place(msg, boxes[box])
        return msg

    def sent(msg: Message, by: str) -> None:
        SentMessage.objects.create(message=msg, sender=users[by], from_address=users[by].email)

    mail("q1", T0, "customer", "mark")
    sent(mail("r1a", T0 + 2 * H, "mark", in_reply_to="q1@mail.test"), "mark")
    sent(mail("r1b", T0 + 5 * H, "mark", in_reply_to="q1@mail.test"), "mark")  # not the first
    mail("q2", T0 + 24 * H, "customer", "mark")
    mail("r2", T0 + 24.5 * H, "mark", "mark", in_reply_to="q2@mail.test")  # synced, not sent
    mail("q3", T0 + 48 * H, "customer", "claire")  # Claire's private mail
    mail("r3", T0 + 49 * H, "claire", "claire", in_reply_to="q3@mail.test")
    mail("q4", T0 + 72 * H, "customer", "pat")
    sent(mail("r4", T0 + 76 * H, "pat", in_reply_to="q4@mail.test"), "pat")
    mail("q5", T0 + 96 * H, "customer", "mark")  # never answered
    mail("q6", T0 + 120 * H, "customer", "mark")
    mail("r6", T0 + 119 * H, "mark", "mark", in_reply_to="q6@mail.test")  # dated before it


def add_tracked(world: World) -> None:
    """Mail sent from crmail with tracking, with opens and clicks: Mark's on Jane in July
    (one opened and clicked, one opened and clicked only by scanners) and September (one
    opened, one untracked), and Claire's on no record in September (clicked, not
    opened)."""
    users, jane = world.users, world.records["jane"]

    def sent(
        at: datetime, by: str, *, tracked: bool = True, on: bool = True, hits: str = ""
    ) -> None:
        msg = message(users[by].email, [CUSTOMER], on=[jane] if on else [])
        Message.objects.filter(pk=msg.pk).update(date=at)
        send = SentMessage.objects.create(
            message=msg, sender=users[by], from_address=users[by].email
        )
        MessageInsight.objects.create(sent=send, tracked=tracked)
        for hit in hits.split():
            model = Click if hit.startswith("click") else Open
            extra = {"link": 0, "url": "https://example.com/"} if model is Click else {}
            model.objects.create(
                sent=send, at=at, client="desktop", scanner=hit.endswith("-scanner"), **extra
            )

    sent(datetime(2026, 7, 3, 9, tzinfo=UTC), "mark", hits="open open click")
    sent(datetime(2026, 7, 4, 9, tzinfo=UTC), "mark", hits="open-scanner click-scanner")
    sent(datetime(2026, 9, 1, 9, tzinfo=UTC), "mark", hits="open")
    sent(datetime(2026, 9, 2, 9, tzinfo=UTC), "mark", tracked=False, hits="open")
    sent(datetime(2026, 9, 3, 9, tzinfo=UTC), "claire", on=False, hits="click")  # hers alone
