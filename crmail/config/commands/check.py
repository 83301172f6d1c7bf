"""``crmail check``: every part of the configuration, in words; non-zero exit on a problem."""

from __future__ import annotations

import argparse
import os
import sqlite3
import stat
import tempfile
import urllib.parse
from pathlib import Path

from crmail.config.commands.base import (
    Output,
    config_errors,
    describe_database,
    error_words,
    pending_migrations,
)
from crmail.config.env import exposed

SHORT_SECRET = 32


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check",
        help="check the configuration, database and queue",
        description=(
            "Check the settings, the data dir, the database, the job queue and the secret "
            "key; print what works and each problem in words. Exits non-zero on a problem."
        ),
    )
    parser.set_defaults(handler=run_check, needs_django=True)


class Findings:
    def __init__(self, out: Output) -> None:
        self.out = out
        self.problems = 0

    def ok(self, message: str) -> None:
        self.out.ok(message)

    def problem(self, message: str) -> None:
        self.problems += 1
        self.out.problem(message)

    def warn(self, message: str) -> None:
        self.out.warn(message)


def run_check(args: argparse.Namespace, out: Output) -> int:
    from django.conf import settings

    found = Findings(out)
    errors = config_errors()
    for error in errors:
        found.problem(error)
    if not errors:
        found.ok("Settings read from the environment without a problem.")
    check_data_dir(found, Path(settings.DATA_DIR))
    if not any(e.startswith("CRMAIL_BLOB_URL") for e in errors):
        check_blob_store(found)
    if not any(e.startswith("CRMAIL_DATABASE_URL") for e in errors):
        check_database(found)
    if not any(e.startswith("CRMAIL_QUEUE_URL") for e in errors):
        check_queue(found)
    check_secret_key(found, Path(settings.DATA_DIR))
    check_proxies(found)
    check_webhooks(found)
    check_mail_providers(found)
    check_dropbox(found)
    check_system_mail(found)
    check_email_authentication(found)
    check_insights(found)
    if settings.DEBUG:
        found.warn("CRMAIL_DEBUG is on: error pages show internals. Turn it off in production.")
    if found.problems:
        noun = "problem" if found.problems == 1 else "problems"
        out.say(f"{found.problems} {noun} found.")
        return 1
    out.done("Everything is in order.")
    return 0


def check_webhooks(found: Findings) -> None:
    from crmail.webhooks.send import ALLOW_PRIVATE, private_allowed

    if private_allowed():
        found.warn(
            f"{ALLOW_PRIVATE} is on: webhooks may call private and loopback addresses, "
            "so an administrator's webhook can reach services inside this network."
        )
    else:
        found.ok("Webhooks call only public addresses.")


def check_dropbox(found: Findings) -> None:
    """The BCC Dropbox: its domain, where its receiver listens, its certificate."""
    from django.conf import settings

    domain, port = settings.CRMAIL_DROPBOX_DOMAIN, settings.CRMAIL_DROPBOX_PORT
    if not domain:
        found.ok("No BCC Dropbox (CRMAIL_DROPBOX_DOMAIN is not set).")
        return
    where = (
        f"`crmail serve` receives it on {settings.CRMAIL_DROPBOX_HOST}:{port}"
        if port
        else "no receiver in `crmail serve` (run `crmail dropbox serve`, or set "
        "CRMAIL_DROPBOX_PORT)"
    )
    found.ok(f"BCC Dropbox addresses are at {domain}; {where}.")
    cert, key = settings.CRMAIL_DROPBOX_TLS_CERT, settings.CRMAIL_DROPBOX_TLS_KEY
    if not cert:
        found.warn(
            "The dropbox receiver offers no STARTTLS: mail reaches it unencrypted "
            "(set CRMAIL_DROPBOX_TLS_CERT and CRMAIL_DROPBOX_TLS_KEY)."
        )
        return
    from crmail.dropbox.server import tls_context

    try:
        tls_context()
    except (OSError, ValueError) as exc:
        found.problem(f"The dropbox's certificate or key cannot be used ({cert}, {key}): {exc}")
    else:
        found.ok("The dropbox receiver offers STARTTLS.")


def check_system_mail(found: Findings) -> None:
    """The SMTP server crmail's own mail goes through (verification codes, reports)."""
    from crmail.mail import system

    if not system.configured():
        found.warn(
            "crmail sends no mail of its own: domain and address verification codes need "
            "CRMAIL_SMTP_URL (for example smtp://user:password@mail.example.com:587)."
        )
        return
    from django.conf import settings

    from crmail.config.env import ConfigError

    try:
        where = system.relay(settings.CRMAIL_SMTP_URL)
    except ConfigError:
        return  # said among the configuration's problems
    found.ok(
        f"crmail's own mail goes through {where.host}:{where.port} "
        f"({'TLS' if where.tls != 'none' else 'no TLS'}) from {system.sender_address()}."
    )


def check_email_authentication(found: Findings) -> None:
    """Email authentication (SPEC F10): the resolvers asked, the SPF include asked for."""
    from django.conf import settings

    from crmail.domains import dns

    if not any(e.startswith("CRMAIL_DNS_SERVERS") for e in config_errors()):
        try:
            dns.resolver()
        except dns.Unanswered as exc:
            found.problem(f"Domains cannot be checked in DNS: {exc}.")
        else:
            found.ok(
                f"Domains' SPF, DKIM and DMARC records are looked up through "
                f"{dns.servers_described()} (CRMAIL_DNS_SERVERS)."
            )
    include = settings.CRMAIL_SPF_INCLUDE
    if include:
        found.ok(f"An authenticated domain's SPF record must name include:{include}.")
    else:
        found.ok(
            "No SPF include is asked of domains (CRMAIL_SPF_INCLUDE is not set): one valid "
            "SPF record is enough."
        )


def check_insights(found: Findings) -> None:
    """Email insights (SPEC F9): crmail's public address, which tracked mail points at."""
    from django.conf import settings

    if any(e.startswith("CRMAIL_PUBLIC_URL") for e in config_errors()):
        return  # reported with the settings
    url = settings.CRMAIL_PUBLIC_URL
    try:
        from crmail.insights import switch

        on = switch.state().switched_on
    except Exception:  # the database's own check says what is wrong with it
        on = False
    if url:
        found.ok(
            f"crmail's public address is {url} (CRMAIL_PUBLIC_URL): tracked mail's open "
            f"pixel and links point there; email tracking is {'on' if on else 'off'}."
        )
        if url.startswith("http://"):
            found.warn(
                "CRMAIL_PUBLIC_URL is plain http: mail programs may refuse or warn about "
                "its images and links. Use https."
            )
    elif on:
        found.warn(
            "Email tracking is on, but CRMAIL_PUBLIC_URL is not set: mail goes out "
            "untracked until it is (such as https://crm.example.com)."
        )
    else:
        found.ok(
            "No public address (CRMAIL_PUBLIC_URL): email tracking can be turned on once it is set."
        )


def check_mail_providers(found: Findings) -> None:
    """Which "Sign in with …" are set up, and provider endpoints moved from their defaults."""
    from crmail.mailboxes import oauth

    names = [p.name for p in oauth.configured_providers()]
    if names:
        found.ok("Mailboxes can sign in with " + ", ".join(names) + ".")
    else:
        found.ok(
            "No OAuth sign-in is set up: Gmail and Outlook mailboxes connect with app "
            "passwords (set CRMAIL_OAUTH_GOOGLE_CLIENT_ID/_SECRET or "
            "CRMAIL_OAUTH_MICROSOFT_CLIENT_ID/_SECRET to offer Sign in with Google/Microsoft)."
        )
    moved = oauth.endpoint_settings()
    if not moved:
        found.ok("Google's and Microsoft's sign-in endpoints and mail APIs are their own.")
    for name, url in moved:
        found.ok(f"{name} is set: crmail uses {url} instead of the provider's own.")
        host = urllib.parse.urlsplit(url).hostname or ""
        if url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
            found.warn(
                f"{name} is plain http:// to {host}: tokens and mail would cross the network "
                "unencrypted. Use https://."
            )


def check_data_dir(found: Findings, data_dir: Path) -> None:
    if not data_dir.exists():
        found.problem(f"The data dir {data_dir} does not exist: run `crmail init`.")
        return
    if not data_dir.is_dir():
        found.problem(f"The data dir {data_dir} is not a directory.")
        return
    try:
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        found.problem(f"The data dir {data_dir} is not writable ({exc.strerror}).")
        return
    found.ok(f"Data dir {data_dir} exists and is writable.")
    readable = exposed(data_dir)
    if readable:
        found.warn(
            f"{len(readable)} files or folders in the data dir can be read by other users of "
            "this machine: run `crmail init` to make them private."
        )


def check_blob_store(found: Findings) -> None:
    """Raw mail's store (decision 050): a pack can be written, read back and removed."""
    from crmail.blobs.store import backend

    store = backend()  # its URL is read with the settings (a problem there skips this)
    name = f"check{os.getpid()}"
    try:
        store.write(name, [b"crmail check"])
        readable = store.read(name, [(0, 12)]) == [b"crmail check"]
        store.delete(name)
    except OSError as exc:
        found.problem(f"Raw mail cannot be stored in {store.describe()} ({exc.strerror or exc}).")
        return
    if not readable:
        found.problem(f"Raw mail written to {store.describe()} does not read back the same.")
        return
    found.ok(f"Raw mail is stored in {store.describe()}.")


def check_database(found: Findings) -> None:
    from django.db import DatabaseError, connection

    from crmail.people.actions import first_admin

    where = describe_database()
    if connection.vendor == "postgresql":
        # Say "unreachable" within seconds instead of waiting for the system's TCP timeout.
        connection.settings_dict.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        found.problem(f"Cannot reach the database ({where}): {error_words(exc)}")
        return
    found.ok(f"Database reachable: {where}.")
    try:
        pending = pending_migrations()
    except DatabaseError as exc:
        found.problem(f"Cannot read the database's migrations: {error_words(exc)}")
        return
    if pending:
        found.problem(f"{len(pending)} database migrations are not applied: run `crmail init`.")
        return
    found.ok("Database migrations are all applied.")
    admin = first_admin()
    if admin is None:
        found.problem("No administrator exists yet: run `crmail init`.")
    else:
        found.ok(f"An administrator exists ({admin.email}).")


def check_queue(found: Findings) -> None:
    from django.conf import settings
    from huey import MemoryHuey, PostgresHuey, RedisHuey, SqliteHuey
    from huey.contrib.djhuey import HUEY

    from crmail.config import env

    url = env.queue_url(Path(settings.DATA_DIR))
    if isinstance(HUEY, MemoryHuey):
        found.warn(
            "The job queue is memory://: jobs run inside the process that queues them "
            "(for tests; `crmail serve` works, `crmail worker` does not)."
        )
        return
    try:
        if isinstance(HUEY, SqliteHuey):
            where = f"SQLite at {HUEY.storage.filename}"
            connection = sqlite3.connect(f"file:{HUEY.storage.filename}?mode=rw", uri=True)
            try:
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                connection.close()
        elif isinstance(HUEY, RedisHuey):
            where = redis_where(url)
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
            try:
                client.ping()
            finally:
                client.close()
        elif isinstance(HUEY, PostgresHuey):
            where = postgres_where(url)
            import psycopg

            dsn = url.replace("postgres://", "postgresql://", 1)
            with psycopg.connect(dsn, connect_timeout=5) as connection:
                connection.execute("SELECT 1")
        else:
            found.warn(f"The job queue is a {type(HUEY).__name__}; crmail cannot check it.")
            return
    except Exception as exc:  # each client has its own errors; all mean "unreachable"
        found.problem(f"Cannot reach the job queue ({where}): {error_words(exc)}")
        return
    found.ok(f"Job queue reachable: {where}.")


def redis_where(url: str) -> str:
    from crmail.config.env import parse_url

    parts = parse_url(url, setting="CRMAIL_QUEUE_URL")
    return f"Redis on {parts.host or 'localhost'}:{parts.port or 6379}/{parts.name or '0'}"


def postgres_where(url: str) -> str:
    from crmail.config.env import parse_url

    parts = parse_url(url, setting="CRMAIL_QUEUE_URL")
    port = f":{parts.port}" if parts.port else ""
    return f"PostgreSQL database {parts.name} on {parts.host or 'localhost'}{port}"


def check_secret_key(found: Findings, data_dir: Path) -> None:
    from_env = os.environ.get("CRMAIL_SECRET_KEY", "").strip()
    if from_env:
        found.ok("Secret key comes from CRMAIL_SECRET_KEY.")
        if len(from_env) < SHORT_SECRET:
            found.warn(
                f"CRMAIL_SECRET_KEY is short ({len(from_env)} characters); use at least 50 "
                "random characters."
            )
        return
    path = data_dir / "secret_key"
    try:
        mode = path.stat().st_mode
    except OSError:
        found.problem(
            f"No secret key: CRMAIL_SECRET_KEY is not set and {path} cannot be read. "
            "Run `crmail init`, or set CRMAIL_SECRET_KEY."
        )
        return
    found.ok(f"Secret key is kept in {path}.")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        found.warn(f"{path} can be read by other users of this machine: chmod 600 {path}")


def check_proxies(found: Findings) -> None:
    """Which peers' X-Forwarded-* headers are believed, and HTTPS without a trusted proxy."""
    from django.conf import settings

    networks = settings.CRMAIL_TRUSTED_PROXIES
    if networks:
        names = ", ".join(
            str(n) if n.num_addresses > 1 else str(n.network_address) for n in networks
        )
        found.ok(
            f"Trusted proxies (CRMAIL_TRUSTED_PROXIES): {names}. Requests from them are "
            "taken for the client, scheme and host in their X-Forwarded-For/-Proto/-Host; "
            "those headers from anyone else are ignored."
        )
        if any(n.prefixlen == 0 for n in networks):
            found.warn(
                "CRMAIL_TRUSTED_PROXIES trusts every address: any client can claim another "
                "address and escape the sign-in limit. Name your proxies' addresses instead."
            )
    else:
        found.ok(
            "No trusted proxies (CRMAIL_TRUSTED_PROXIES is empty): X-Forwarded-* headers are "
            "ignored and each client is known by the address it connects from."
        )
    if settings.HTTPS:
        if networks:
            found.ok(
                "CRMAIL_HTTPS is on: secure cookies, Strict-Transport-Security sent, and "
                "requests the proxy received over http:// redirected to https://."
            )
        else:
            found.warn(
                "CRMAIL_HTTPS is on but no proxy is trusted: crmail cannot tell that requests "
                "came over HTTPS, so links in the API say http:// and the sign-in limit sees "
                "every user as the proxy's address. Set CRMAIL_TRUSTED_PROXIES to the HTTPS "
                "proxy's address."
            )
