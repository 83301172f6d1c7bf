"""Settings read from the environment: the data dir, the database, the queue, the secret key.

Everything the embedded default keeps on disk lives under ``CRMAIL_DATA_DIR``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import stat
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

# Mail, keys and the queue are for the account crmail runs as: files it creates are 0600,
# folders 0700, whatever the umask it was started with.
OWNER_ONLY_UMASK = 0o077


def keep_files_private() -> int:
    """From now on, files and folders this process creates are its owner's alone; returns
    the umask it had."""
    return os.umask(OWNER_ONLY_UMASK)


def create_private_file(path: Path | str) -> None:
    """Create ``path`` empty and 0600 unless it exists. (SQLite gives a database's -wal and
    -shm files the database file's mode.)"""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def exposed(data_dir: Path) -> list[tuple[Path, int]]:
    """What in ``data_dir`` (itself included) this user owns and others may use, with the
    mode it should have."""
    found: list[tuple[Path, int]] = []
    uid = os.getuid()
    for path in [data_dir, *data_dir.rglob("*")]:
        try:
            info = path.lstat()
        except FileNotFoundError:  # gone meanwhile (a -wal file at a checkpoint)
            continue
        if stat.S_ISLNK(info.st_mode) or info.st_uid != uid:
            continue
        mode = stat.S_IMODE(info.st_mode)
        private = mode & 0o700 if stat.S_ISDIR(info.st_mode) else mode & 0o600
        if private != mode:
            found.append((path, private))
    return found


def make_private(data_dir: Path) -> list[Path]:
    """Take away others' access to ``data_dir`` and everything in it that this user owns
    (earlier versions made the databases 0644); returns what was changed."""
    changed = exposed(data_dir)
    for path, mode in changed:
        path.chmod(mode)
    return [path for path, _ in changed]


class ConfigError(ValueError):
    """A setting from the environment is unusable; the message says which and why."""


def data_dir() -> Path:
    """The directory holding all state of the embedded default (``CRMAIL_DATA_DIR``)."""
    raw = os.environ.get("CRMAIL_DATA_DIR", "").strip()
    return Path(raw).expanduser().resolve() if raw else Path.cwd() / "data"


@dataclass(frozen=True)
class ServiceUrl:
    scheme: str
    host: str
    port: int | None
    user: str
    password: str
    name: str
    options: dict[str, str]


def parse_url(url: str, *, setting: str) -> ServiceUrl:
    """Split ``scheme://user:password@host:port/name?opt=v`` into its parts."""
    parts = urlsplit(url)
    if not parts.scheme:
        raise ConfigError(f"{setting} is not a URL (expected scheme://…)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{setting}: bad port in URL ({exc})") from None
    return ServiceUrl(
        scheme=parts.scheme.lower(),
        host=unquote(parts.hostname or ""),
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        name=unquote(parts.path.lstrip("/")),
        options=dict(parse_qsl(parts.query)),
    )


SQLITE_OPTIONS: dict[str, Any] = {
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN,
    # so two writers queue on the busy timeout instead of failing on upgrade. A 32 MiB page
    # cache per connection (SQLite's default is 2 MiB): on a store of a million messages,
    # writing a search document fell from about 9 ms to under 1 ms (docs/benchmarks.md).
    "init_command": (
        "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
        "PRAGMA cache_size=-32768;"
    ),
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
}


# A thread's connection is kept from one job or request to the next (huey closes "old"
# connections around each job, Django around each request), checked before reuse. A new
# SQLite connection reads the whole schema again: a few milliseconds each, about 0.25 s of
# a job worker's time after a first sync of 6,000 messages.
KEPT_CONNECTIONS: dict[str, Any] = {"CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}


def database_settings(base: Path) -> dict[str, Any]:
    """``DATABASES['default']`` from ``CRMAIL_DATABASE_URL`` (default: SQLite in ``base``)."""
    url = os.environ.get("CRMAIL_DATABASE_URL", "").strip()
    if not url:
        return {
            "ENGINE": "crmail.config.sqlite3",
            "NAME": str(base / "crmail.sqlite3"),
            "OPTIONS": dict(SQLITE_OPTIONS),
            **KEPT_CONNECTIONS,
        }
    parsed = parse_url(url, setting="CRMAIL_DATABASE_URL")
    if parsed.scheme in ("sqlite", "sqlite3"):
        # sqlite:///relative/path or sqlite:////absolute/path
        path = urlsplit(url).path
        name = path[1:] if path.startswith("//") else path.lstrip("/")
        if not name:
            raise ConfigError("CRMAIL_DATABASE_URL: sqlite URL needs a file path")
        return {
            "ENGINE": "crmail.config.sqlite3",
            "NAME": name,
            "OPTIONS": dict(SQLITE_OPTIONS),
            **KEPT_CONNECTIONS,
        }
    if parsed.scheme in ("postgres", "postgresql", "pgsql"):
        if not parsed.name:
            raise ConfigError("CRMAIL_DATABASE_URL: postgresql URL needs a database name")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.name,
            "USER": parsed.user,
            "PASSWORD": parsed.password,
            "HOST": parsed.host,
            "PORT": str(parsed.port or ""),
            "OPTIONS": postgresql_options(parsed.options),
            **KEPT_CONNECTIONS,
        }
    raise ConfigError(
        f"CRMAIL_DATABASE_URL: unsupported scheme {parsed.scheme!r} (use sqlite:// or postgresql://)"
    )


def postgresql_options(options: dict[str, Any]) -> dict[str, Any]:
    """The connection options of a PostgreSQL URL, with JIT compilation off unless the URL
    says otherwise (``?options=-c jit=on``). The visibility query is large: its cost
    estimate on a big store passes ``jit_above_cost`` and PostgreSQL spent seconds
    compiling a plan that runs in milliseconds (docs/decisions/031-search-at-scale.md)."""
    merged = dict(options)
    given = str(merged.get("options", ""))
    if "jit" not in given:
        merged["options"] = f"{given} -c jit=off".strip()
    return merged


def queue_url(base: Path) -> str:
    """``CRMAIL_QUEUE_URL``, defaulting to a SQLite queue file in ``base``."""
    return os.environ.get("CRMAIL_QUEUE_URL", "").strip() or f"sqlite:///{base / 'queue.sqlite3'}"


def secret_key(base: Path) -> str:
    """``CRMAIL_SECRET_KEY``, or the key kept in ``base/secret_key`` (created 0600 on first use)."""
    key = os.environ.get("CRMAIL_SECRET_KEY", "").strip()
    if key:
        return key
    path = base / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    base.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def flag(name: str, default: bool = False) -> bool:
    """A boolean environment variable (1/true/yes/on)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def whole_number(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole-number environment variable, at least ``minimum``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def endpoint_url(name: str) -> str:
    """An http:// or https:// URL from the environment ("" when unset), without a query."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    parts = urllib.parse.urlsplit(raw)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or any(c.isspace() or ord(c) < 32 for c in raw)
    ):
        raise ConfigError(
            f"{name} must be an http:// or https:// URL without a query, such as "
            f"https://login.microsoftonline.us/common/oauth2/v2.0/token, not {raw!r}"
        )
    return raw.rstrip("/")


def public_url(name: str) -> str:
    """crmail's own address as people outside reach it (``https://crm.example.com``): an
    http:// or https:// origin, without a path, query or fragment; "" when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    parts = urllib.parse.urlsplit(raw)
    try:
        parts.port  # noqa: B018  (a bad port raises)
    except ValueError:
        parts = parts._replace(scheme="")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path.strip("/")
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in raw)
    ):
        raise ConfigError(
            f"{name} must be crmail's address as people outside reach it: an http:// or "
            f"https:// address without a path, such as https://crm.example.com, not {raw!r}"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxies(raw: str) -> tuple[Network, ...]:
    """``CRMAIL_TRUSTED_PROXIES``: IP addresses or networks, comma-separated.

    A single address is a network of one (``10.0.0.5`` is ``10.0.0.5/32``); host names and
    ``*`` are refused, so trusting every peer is always written out (``0.0.0.0/0,::/0``).
    """
    networks: list[Network] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"CRMAIL_TRUSTED_PROXIES: {item!r} is not an IP address or network "
                "(write addresses like 10.0.0.5 or networks like 10.0.0.0/24, comma-separated)"
            ) from None
    return tuple(networks)


DNS_PORT = 53


def dns_servers(raw: str) -> tuple[tuple[str, int], ...]:
    """``CRMAIL_DNS_SERVERS``: resolvers as ``host:port`` (the port 53 when left out),
    comma-separated; IPv6 addresses in brackets, ``[2001:db8::53]:53``. Empty: the system's
    resolvers (``/etc/resolv.conf``). A host must be an IP address: a name would need a
    resolver to be found."""
    servers: list[tuple[str, int]] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        host, port = item, DNS_PORT
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest and not rest.startswith(":"):
                host = ""
            port_text = rest[1:]
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
        else:
            port_text = ""
        try:
            ipaddress.ip_address(host)
            port = int(port_text) if port_text else DNS_PORT
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"CRMAIL_DNS_SERVERS: {item!r} is not a resolver's address (write "
                "host:port with an IP address, such as 10.0.0.53:53 or [2001:db8::53]:53, "
                "comma-separated; leave it empty for the system's resolvers)"
            ) from None
        servers.append((host, port))
    return tuple(servers)
