"""What the dropbox receiver decides and writes, apart from SMTP (decision 052).

The SMTP side (``dropbox.server``) asks here, at each step, in a worker thread:

- ``check_recipient`` at RCPT TO: the address must be a current dropbox address of an
  active user, and the envelope sender one of that user's own addresses
  (``addresses.own_addresses``);
- ``check_message`` at DATA: the From header must be one of the owner's own addresses too,
  and, at a domain authenticated in crmail, pass its SPF or DKIM check
  (``sender_authentication``; 550 5.7.26 when it does not, 451 4.7.24 when DNS did not
  answer);
- ``accept`` then stores the message (raw bytes first, through ``mail.store`` as synced
  mail: the blob store's pack is durable before the rows commit) with a ``SentMessage``
  (source "BCC Dropbox") and a ``Delivery`` per owner, all in one transaction, and queues
  its filing (``dropbox.filing``) after the commit. Only then does the receiver say 250:
  a crash before that loses nothing the client has not been told is lost, and the
  client's retry stores nothing twice (the same bytes are the same ``Message``, and the
  ``SentMessage`` is unique per message and user).

Every refusal is a ``Refusal`` row an administrator sees (``/settings/dropbox/``), and a
log line that names the sender's domain only.
"""

from __future__ import annotations

import email.utils
import logging
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.db import transaction

from crmail.config.durable import sync_commits
from crmail.domains import queries as domain_queries
from crmail.domains.names import domain_of as mail_domain
from crmail.dropbox import addresses
from crmail.dropbox.models import Delivery, DropboxAddress, Refusal, Stage
from crmail.failpoints import failpoint
from crmail.mail.store import store_raw
from crmail.mailboxes.models import SentMessage, Source
from crmail.people.models import User

log = logging.getLogger(__name__)

MAX_REPLY = 400


@dataclass(frozen=True)
class Verdict:
    """An answer for the client: ``reply`` is empty when the step may go on."""

    reply: str = ""
    address: DropboxAddress | None = None

    @property
    def ok(self) -> bool:
        return not self.reply


def domain_of(address: str) -> str:
    """What a log line may say of an address: its domain."""
    return address.rpartition("@")[2].lower() or "(no domain)"


def refuse(
    stage: str,
    reply: str,
    *,
    peer: str = "",
    envelope_from: str = "",
    header_from: str = "",
    recipient: str = "",
    user: User | None = None,
) -> str:
    """Record a refusal for administrators; returns ``reply``."""
    Refusal.objects.create(
        stage=stage,
        reply=reply[:300],
        peer=peer[:100],
        envelope_from=envelope_from[:254],
        header_from=header_from[:254],
        recipient=recipient[:254],
        user=user,
    )
    log.info(
        "dropbox refused mail from a sender at %s (%s): %s",
        domain_of(envelope_from),
        stage,
        reply,
    )
    return reply


def check_recipient(recipient: str, envelope_from: str, peer: str) -> Verdict:
    """RCPT TO: a current dropbox address, and a sender who is its owner."""
    resolved = addresses.resolve(recipient)
    owner = resolved.address.user if resolved.address is not None else None
    if resolved.problem:
        reply = f"550 5.1.1 {resolved.problem}"
    elif owner is not None and envelope_from.lower() not in addresses.own_addresses(owner):
        reply = (
            "550 5.7.1 This dropbox takes mail only from its owner's own addresses "
            "(their sign-in address and their mailboxes' addresses)"
        )
    else:
        return Verdict(address=resolved.address)
    refuse(
        Stage.RCPT, reply, peer=peer, envelope_from=envelope_from, recipient=recipient, user=owner
    )
    return Verdict(reply)


def header_from(raw: bytes) -> str:
    """The From header's address, lower case ("" when there is none that reads)."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        values = headers.get_all("From") or []
    except Exception:
        return ""
    found = email.utils.getaddresses([str(v) for v in values])
    return found[0][1].lower() if len(found) == 1 and "@" in found[0][1] else ""


@dataclass(frozen=True)
class Authentication:
    """The outcome of checking that a sender is who the From header says."""

    checked: bool
    passed: bool
    detail: str
    temporary: bool = False  # DNS did not answer: the client may try again later


NO_CHECK = Authentication(checked=False, passed=True, detail="no check")


def sender_authentication(
    owner: User, envelope_from: str, sender: str, raw: bytes, peer: str = ""
) -> Authentication:
    """Whether mail claiming to be from ``sender`` (one of ``owner``'s own addresses) passes
    the SPF or DKIM check of its domain. For a sender at an authenticated domain (SPEC
    F10) the mail must pass SPF (the connecting address ``peer`` for ``envelope_from``) or
    DKIM (a signature of ``raw`` by the domain that verifies), aligned with the From
    domain (``domains.inbound``). Anyone else's mail is not checked, and this says so:
    ``NO_CHECK`` (``checked`` False) lets it through on the owner's addresses alone."""
    domain = mail_domain(sender)
    if not domain_queries.is_authenticated(domain):
        return NO_CHECK
    # SPF and DKIM (pyspf, dkimpy, checkdmarc): loaded only for an authenticated domain.
    from crmail.domains import inbound

    outcome = inbound.authenticate(domain, peer, envelope_from, raw)
    return Authentication(
        checked=True, passed=outcome.passed, detail=outcome.detail, temporary=outcome.temporary
    )


def check_message(
    raw: bytes, envelope_from: str, recipients: list[DropboxAddress], peer: str
) -> Verdict:
    """DATA: the From header must be an address of every recipient's owner, and pass the
    sender check (``sender_authentication``)."""
    sender = header_from(raw)
    for address in recipients:
        owner = address.user
        if not sender:
            reply = "550 5.7.1 The message has no From header crmail can read"
        elif sender not in addresses.own_addresses(owner):
            reply = "550 5.7.1 The From header must be one of the dropbox owner's own addresses"
        else:
            verdict = sender_authentication(owner, envelope_from, sender, raw, peer)
            if not verdict.checked or verdict.passed:
                continue
            if verdict.temporary:
                reply = (
                    "451 4.7.24 The sender's domain could not be checked now (DNS did not "
                    f"answer): try again later. {verdict.detail}"
                )
            else:
                reply = (
                    "550 5.7.26 The sender's domain is authenticated in crmail, and this "
                    f"message passes neither its SPF nor its DKIM check: {verdict.detail}"
                )
            reply = reply[:MAX_REPLY]  # one SMTP reply line (RFC 5321 section 4.5.3.1.5)
        refuse(
            Stage.DATA,
            reply,
            peer=peer,
            envelope_from=envelope_from,
            header_from=sender,
            recipient=addresses.full(address),
            user=owner,
        )
        return Verdict(reply)
    return Verdict()


def accept(
    raw: bytes, envelope_from: str, recipients: list[DropboxAddress], peer: str
) -> list[Delivery]:
    """Store ``raw`` for each recipient's owner, durably, before the receiver says 250;
    the same mail again (a retry) is the same rows. Its filing is queued after the commit
    (and again for a retry of mail not filed yet)."""
    from crmail.dropbox.tasks import file_soon

    sender = header_from(raw)
    deliveries = []
    with transaction.atomic():
        message = store_raw(raw)
        for address in recipients:
            sent, _ = SentMessage.objects.get_or_create(
                message=message,
                sender=address.user,
                source=Source.DROPBOX,
                defaults={"from_address": sender or envelope_from.lower()},
            )
            delivery, _ = Delivery.objects.get_or_create(
                sent=sent,
                defaults={
                    "address": address,
                    "envelope_from": envelope_from.lower()[:254],
                    "peer": peer[:100],
                },
            )
            deliveries.append(delivery)
        unfiled = [d.pk for d in deliveries if d.filed_at is None]
        transaction.on_commit(lambda: file_soon(unfiled))
    sync_commits()  # the sending server lets its copy go at the 250
    failpoint("dropbox-stored")
    return deliveries
