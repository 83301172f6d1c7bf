"""A throwaway real Dovecot (IMAP + POP3) on loopback, driven through doveadm.

Needs root (Dovecot drops privileges to uid/gid 5000 for mail access) and the
Debian packages dovecot-imapd and dovecot-pop3d. Nothing is installed or
changed system-wide except the `vmail` user/group (uid/gid 5000), created if
missing.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from .certs import CertPair, generate_self_signed

HOST = "127.0.0.1"
VMAIL_ID = 5000
DEFAULT_USERS: dict[str, str] = {"alice": "alice-pw", "bob": "bob-pw"}
STATUS_FIELDS = ("messages", "uidvalidity", "uidnext", "highestmodseq")
# Dovecot's logged-in capability list minus CONDSTORE/QRESYNC (see TESTING.md).
NO_CONDSTORE_CAPABILITY = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT THREAD=REFERENCES "
    "MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 "
    "ESEARCH SEARCHRES MOVE SPECIAL-USE LITERAL+"
)
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
_DH_PEM = Path("/usr/share/dovecot/dh.pem")


class DovecotError(RuntimeError):
    """Dovecot could not be started or stopped."""


class DoveadmError(DovecotError):
    """A doveadm command exited non-zero."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args_list = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"doveadm {' '.join(args)!r} exited {returncode}: {stderr.strip() or stdout.strip()}"
        )


# Start-up errors that mean a chosen port was taken meanwhile: pick others and retry.
_PORT_CLASHES = ("Address already in use", "duplicate listener")

# Dovecot's auth and mail processes run as other users and must read what the harness
# writes: its files and processes get the usual umask whatever this process has (crmail
# makes its own files private with a umask of 077 once its WSGI application is loaded).
USUAL_UMASK = 0o022
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _stop_with_this_process() -> None:
    """In the child before exec: the kernel sends Dovecot's master SIGTERM (it then stops
    its own processes) when the test process that started it dies, even by kill -9, when
    ``stop`` and atexit never run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@contextlib.contextmanager
def usual_umask() -> Iterator[None]:
    old = os.umask(USUAL_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: every socket stays bound until all are picked,
    so the kernel cannot hand the same port out twice."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((HOST, 0))
            ports.append(s.getsockname()[1])
        return ports


def ensure_vmail_user() -> None:
    """Create group and user `vmail` (5000) if missing, as TESTING.md shows."""
    for exists, cmd in (
        (
            _group_exists,
            ["groupadd", "-g", str(VMAIL_ID), "vmail"],
        ),
        (
            _user_exists,
            [
                "useradd",
                "-u",
                str(VMAIL_ID),
                "-g",
                str(VMAIL_ID),
                "-M",
                "-d",
                "/nonexistent",
                "-s",
                "/usr/sbin/nologin",
                "vmail",
            ],
        ),
    ):
        if exists():
            continue
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 and not exists():  # a concurrent run may have won
            raise DovecotError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")


def _group_exists() -> bool:
    try:
        grp.getgrnam("vmail")
    except KeyError:
        return False
    return True


def _user_exists() -> bool:
    try:
        pwd.getpwnam("vmail")
    except KeyError:
        return False
    return True


def _check_user(name: str, password: str) -> None:
    if not _USER_RE.match(name):
        raise ValueError(f"unsupported user name {name!r}")
    if any(c in password for c in ":\r\n\0"):
        raise ValueError("password must not contain ':' or line breaks")


def _flag_arg(flags: str | Iterable[str]) -> str:
    if isinstance(flags, str):
        return flags
    return " ".join(flags)


class DovecotServer:
    """A throwaway Dovecot instance with passwd-file users and Maildirs in a temp dir.

    After `start()`: `host`, `imap_port`, `pop3_port` (plain; STARTTLS offered
    when `tls`), and with `tls` also `imaps_port`, `pop3s_port`, `cert_path`
    (self-signed for localhost/127.0.0.1; use it as CA file). `users` maps the
    test users to their passwords (default alice/bob). Each user has a passwd-file
    of its own (`passwd/<user>`), so users added while running log in at once.
    Mailboxes: Maildir with LAYOUT=fs, hierarchy separator `separator`, special-use
    Drafts/Junk/Trash/Sent declared (created only on demand).
    """

    host = HOST

    def __init__(
        self,
        *,
        tls: bool = False,
        condstore: bool = True,
        oauth2_introspection_url: str | None = None,
        users: dict[str, str] | None = None,
        separator: str = "/",
        start_timeout: float = 20.0,
        imap_capability: str | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.tls = tls
        self.condstore = condstore
        self.oauth2_introspection_url = oauth2_introspection_url
        self.separator = separator
        self.start_timeout = start_timeout
        # The logged-in capability list, e.g. without IDLE (None: Dovecot's own).
        self.imap_capability = imap_capability
        # Simultaneous IMAP connections to plan for (None: Dovecot's defaults, about 100).
        self.max_connections = max_connections
        self.instance_name = f"crmail-test-{uuid.uuid4().hex[:12]}"
        self.users: dict[str, str] = dict(DEFAULT_USERS if users is None else users)
        for name, password in self.users.items():
            _check_user(name, password)
        self.imap_port: int | None = None
        self.pop3_port: int | None = None
        self.imaps_port: int | None = None
        self.pop3s_port: int | None = None
        self.cert: CertPair | None = None
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self._user_counter = 0

    # -- paths -------------------------------------------------------------

    def _path(self, *parts: str) -> Path:
        if self.dir is None:
            raise DovecotError("server not started")
        return self.dir.joinpath(*parts)

    @property
    def config_path(self) -> Path:
        """The dovecot.conf of this instance."""
        return self._path("dovecot.conf")

    @property
    def log_path(self) -> Path:
        """Dovecot's log file."""
        return self._path("log", "dovecot.log")

    @property
    def cert_path(self) -> Path | None:
        """PEM certificate of the TLS listeners (None without `tls`)."""
        return self.cert.cert_path if self.cert else None

    @property
    def pid(self) -> int | None:
        """PID of the Dovecot master process while running."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the master process is alive."""
        return self.pid is not None

    def user_home(self, user: str) -> Path:
        """Home directory of `user` (the Maildir is `<home>/Maildir`)."""
        return self._path("mail", user)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> DovecotServer:
        """Start Dovecot and wait until all listeners accept connections."""
        if self._proc is not None:
            raise DovecotError("already started")
        if os.geteuid() != 0:
            raise DovecotError("DovecotServer needs root (mail_uid 5000, privilege drop)")
        ensure_vmail_user()
        with usual_umask():
            self._start()
        return self

    def _start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="crmail-dovecot-"))
        self.dir.chmod(0o755)  # mail processes (uid 5000) and auth must traverse it
        atexit.register(self.stop)
        try:
            for sub in ("run", "state", "log", "mail"):
                self._path(sub).mkdir(mode=0o755)
            os.chown(self._path("mail"), VMAIL_ID, VMAIL_ID)
            if self.tls:
                self.cert = generate_self_signed(self._path("tls"), name="dovecot")
                self._path("tls").chmod(0o755)
            if self.oauth2_introspection_url:
                self._write_oauth2_conf()
            for user in self.users:
                self._write_user(user)
                self._make_maildir(user)
            last_error: DovecotError | None = None
            for _attempt in range(3):
                try:
                    self._launch()
                    return
                except DovecotError as exc:
                    last_error = exc
                    self._terminate()
                    if not any(m in str(exc) for m in _PORT_CLASHES):
                        raise
            assert last_error is not None
            raise last_error
        except BaseException:
            self.stop()
            raise

    def _launch(self, keep_ports: bool = False) -> None:
        if not keep_ports and self.tls:
            self.imap_port, self.pop3_port, self.imaps_port, self.pop3s_port = free_ports(4)
        elif not keep_ports:
            self.imap_port, self.pop3_port = free_ports(2)
        self.config_path.write_text(self._render_config(), encoding="utf-8")
        out = open(self._path("log", "stdout.log"), "ab")  # noqa: SIM115 - closed below
        try:
            self._proc = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() can reap children
                umask=USUAL_UMASK,
                preexec_fn=_stop_with_this_process,  # a killed test run leaves no Dovecot
            )
        finally:
            out.close()
        self._wait_ready()

    def restart(self) -> None:
        """Stop Dovecot (killing every session) and start it again on the same ports."""
        with self._lock:
            self._terminate()
            self._launch(keep_ports=True)

    def imap_pids(self) -> list[int]:
        """PIDs of the running `imap` processes (one a logged-in session by default)."""
        if self._proc is None:
            return []
        pids = []
        for pid in live_group_members(self._proc.pid):
            with contextlib.suppress(OSError):
                if Path("/proc", str(pid), "comm").read_text().strip() == "imap":
                    pids.append(pid)
        return pids

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.imap_port and self.pop3_port
        deadline = time.monotonic() + self.start_timeout
        pending: list[tuple[int, bytes | None]] = [
            (self.imap_port, b"* OK"),
            (self.pop3_port, b"+OK"),
        ]
        if self.imaps_port and self.pop3s_port:
            pending += [(self.imaps_port, None), (self.pop3s_port, None)]
        while pending:
            if self._proc.poll() is not None:
                raise DovecotError(
                    f"dovecot exited with {self._proc.returncode} during start-up\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise DovecotError("dovecot did not come up in time\n" + self.log_tail())
            port, greeting = pending[0]
            if _probe(port, greeting):
                pending.pop(0)
            else:
                time.sleep(0.05)

    def stop(self) -> None:
        """Kill the master (and any leftover children), wait, remove the temp dir."""
        with self._lock:
            atexit.unregister(self.stop)
            self._terminate()
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # start_new_session: the master leads a process group holding all its children.
        # SIGTERM to the whole group stops an idle Dovecot at once; login processes with
        # a client attached linger for seconds, so whatever is left after a moment is
        # SIGKILLed (dead children may stay zombies until init reaps them).
        pgid = proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        deadline = time.monotonic() + 10
        while (proc.poll() is None or live_group_members(pgid)) and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of Dovecot's log and its stdout/stderr."""
        chunks = []
        for path in (self._path("log", "stdout.log"), self.log_path):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            tail = "\n".join(text.splitlines()[-lines:])
            if tail:
                chunks.append(f"--- {path.name} ---\n{tail}")
        return "\n".join(chunks) or "(no log output)"

    # -- configuration -------------------------------------------------------

    def _render_config(self) -> str:
        d = self.dir
        mechanisms = "plain login"
        oauth_passdb = ""
        if self.oauth2_introspection_url:
            mechanisms += " xoauth2 oauthbearer"
            oauth_passdb = f"""
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/oauth2.conf.ext
}}"""
        if self.tls:
            assert self.cert is not None
            ssl = f"ssl = yes\nssl_cert = <{self.cert.cert_path}\nssl_key = <{self.cert.key_path}"
            if _DH_PEM.exists():
                ssl += f"\nssl_dh = <{_DH_PEM}"
        else:
            ssl = "ssl = no"
        imaps_port = self.imaps_port if self.tls else 0
        pop3s_port = self.pop3s_port if self.tls else 0
        capability = "" if self.condstore else f"\n  imap_capability = {NO_CONDSTORE_CAPABILITY}"
        if self.imap_capability is not None:
            capability = f"\n  imap_capability = {self.imap_capability}"
        return f"""# generated by tests/harness/dovecot.py
instance_name = {self.instance_name}
base_dir = {d}/run
state_dir = {d}/state
listen = {HOST}
protocols = imap pop3
{ssl}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_verbose = yes
# no failure delay and no auth penalty, so tests of failed logins stay fast
auth_failure_delay = 0
log_path = {d}/log/dovecot.log
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_uid = {VMAIL_ID}
mail_gid = {VMAIL_ID}
first_valid_uid = {VMAIL_ID}
pop3_uidl_format = %08Xu%08Xv
namespace inbox {{
  inbox = yes
  separator = {self.separator}
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
}}{oauth_passdb}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd/%u
  default_fields = uid={VMAIL_ID} gid={VMAIL_ID} home={d}/mail/%u
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {pop3s_port}
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50{capability}
}}
{self._limits_config()}"""

    def _limits_config(self) -> str:
        """Process and client limits for `max_connections` simultaneous IMAP clients."""
        if not self.max_connections:
            return ""
        n = self.max_connections
        return f"""default_process_limit = {n + 100}
default_client_limit = {4 * n + 1000}
default_vsz_limit = 0
service imap {{
  process_limit = {n + 100}
}}
service imap-login {{
  process_min_avail = 4
  service_count = 0
  client_limit = {n + 100}
  process_limit = 64
}}
service anvil {{
  client_limit = {4 * n + 1000}
}}
service auth {{
  client_limit = {4 * n + 1000}
}}
"""

    def _write_oauth2_conf(self) -> None:
        path = self._path("oauth2.conf.ext")
        path.write_text(
            f"introspection_mode = post\n"
            f"introspection_url = {self.oauth2_introspection_url}\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n",
            encoding="utf-8",
        )
        path.chmod(0o644)

    def _write_user(self, name: str) -> None:
        """Write `passwd/<name>`: one passwd-file per user (see `add_user`)."""
        directory = self._path("passwd")
        directory.mkdir(mode=0o755, exist_ok=True)
        directory.chmod(0o755)  # whatever this process's umask: auth reads it
        path = directory / name
        old_mtime = path.stat().st_mtime if path.exists() else 0.0
        tmp = directory / f".{name}.tmp"
        tmp.write_text(f"{name}:{{PLAIN}}{self.users[name]}::::::\n", encoding="utf-8")
        tmp.chmod(0o644)
        # passwd-file is re-read when its mtime or size changes: force a new mtime.
        mtime = max(time.time(), int(old_mtime) + 1)
        os.utime(tmp, (mtime, mtime))
        tmp.replace(path)

    def _make_maildir(self, user: str) -> None:
        home = self.user_home(user)
        for sub in ("", "Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"):
            p = home / sub if sub else home
            p.mkdir(mode=0o700, exist_ok=True)
            os.chown(p, VMAIL_ID, VMAIL_ID)

    # -- users ---------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add (or re-password) a user; works while running."""
        _check_user(name, password)
        with self._lock:
            changed = self.users.get(name) not in (None, password)
            self.users[name] = password
            if self.dir is not None:
                self._make_maildir(name)
                self._write_user(name)
                if changed and self.running:
                    self._wait_password(name, password)

    def _wait_password(self, name: str, password: str, timeout: float = 5.0) -> None:
        # Dovecot re-checks a passwd-file it has read at most once a second: wait for the
        # next second, then confirm (each failed check would add an auth penalty).
        time.sleep(1.05 - time.time() % 1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.doveadm("auth", "test", name, password)
                return
            except DoveadmError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def new_user(self, prefix: str = "user") -> tuple[str, str]:
        """Add a user with a unique name and random password; return (name, password)."""
        with self._lock:
            self._user_counter += 1
            name = f"{prefix}{self._user_counter}-{uuid.uuid4().hex[:6]}"
        password = f"pw-{uuid.uuid4().hex}"
        self.add_user(name, password)
        return name, password

    # -- doveadm -------------------------------------------------------------

    def doveadm(self, *args: str, input: bytes | None = None, timeout: float = 60) -> str:
        """Run `doveadm -c CONF *args`; return stdout, raise DoveadmError on failure."""
        cmd = ["doveadm", "-c", str(self.config_path), *map(str, args)]
        proc = subprocess.run(
            cmd,
            input=input if input is not None else b"",
            capture_output=True,
            timeout=timeout,
            check=False,
            umask=USUAL_UMASK,
        )
        stdout = proc.stdout.decode("utf-8", errors="replace")
        if proc.returncode != 0:
            raise DoveadmError(
                [str(a) for a in args],
                proc.returncode,
                stdout,
                proc.stderr.decode("utf-8", errors="replace"),
            )
        return stdout

    def doveadm_json(self, *args: str) -> list[dict[str, str]]:
        """Run doveadm with the JSON formatter (`-f json`) and parse its output."""
        out = self.doveadm("-f", "json", *args).strip()
        if not out:
            return []
        data = json.loads(out)
        return data if isinstance(data, list) else [data]

    def status(
        self, user: str, mailbox: str = "INBOX", fields: Iterable[str] = STATUS_FIELDS
    ) -> dict[str, int]:
        """`doveadm mailbox status`: messages, uidvalidity, uidnext, highestmodseq."""
        fields = list(fields)
        rows = self.doveadm_json("mailbox", "status", "-u", user, " ".join(fields), mailbox)
        if len(rows) != 1:
            raise DovecotError(f"unexpected mailbox status output: {rows!r}")
        return {f: int(rows[0][f]) for f in fields}

    def uids(self, user: str, mailbox: str = "INBOX") -> list[int]:
        """All UIDs in `mailbox`, ascending."""
        rows = self.doveadm_json("fetch", "-u", user, "uid", "mailbox", mailbox, "all")
        return sorted(int(r["uid"]) for r in rows)

    def _uids_from(self, user: str, mailbox: str, first: int) -> list[int]:
        rows = self.doveadm_json(
            "fetch", "-u", user, "uid", "mailbox", mailbox, "uid", f"{first}:*"
        )
        return sorted(u for u in (int(r["uid"]) for r in rows) if u >= first)

    def deliver(self, user: str, raw: bytes, mailbox: str = "INBOX") -> int:
        """Store `raw` with `doveadm save`; return its UID.

        IMAP serves messages with CRLF line ends: use CRLF in `raw` when a
        test compares bytes fetched over IMAP.
        """
        with self._lock:
            before = self.status(user, mailbox, ("uidnext",))["uidnext"]
            self.doveadm("save", "-u", user, "-m", mailbox, input=raw)
            new = self._uids_from(user, mailbox, before)
        if not new:
            raise DovecotError(f"saved message not found in {user}:{mailbox}")
        return new[0]

    def create_mailbox(self, user: str, name: str) -> None:
        """Create mailbox `name` (UTF-8, hierarchy by `separator`), parents included."""
        self.doveadm("mailbox", "create", "-u", user, name)

    def delete_mailbox(self, user: str, name: str) -> None:
        """Delete mailbox `name` and its messages."""
        self.doveadm("mailbox", "delete", "-u", user, "-s", name)

    def rename_mailbox(self, user: str, old: str, new: str) -> None:
        """Rename mailbox `old` to `new`."""
        self.doveadm("mailbox", "rename", "-u", user, old, new)

    def list_mailboxes(self, user: str) -> list[str]:
        """Mailbox names (UTF-8) of `user`."""
        return [r["mailbox"] for r in self.doveadm_json("mailbox", "list", "-u", user)]

    def messages(self, user: str, mailbox: str = "INBOX") -> list[dict[str, object]]:
        """Messages in `mailbox` sorted by UID.

        Each dict: uid (int), flags (list[str], without the session flag \\Recent),
        guid (str), message_id (str, whitespace-normalised; "" when absent).
        """
        rows = self.doveadm_json(
            "fetch", "-u", user, "uid flags guid hdr.message-id", "mailbox", mailbox, "all"
        )
        result: list[dict[str, object]] = [
            {
                "uid": int(r["uid"]),
                "flags": [f for f in r.get("flags", "").split() if f != "\\Recent"],
                "guid": r.get("guid", ""),
                "message_id": " ".join(r.get("hdr.message-id", "").split()),
            }
            for r in rows
        ]
        result.sort(key=lambda m: m["uid"])  # type: ignore[arg-type, return-value]
        return result

    def flag(
        self,
        user: str,
        mailbox: str,
        uid: int,
        flags: str | Iterable[str],
        add: bool = True,
    ) -> None:
        """Add (or with `add=False` remove) flags such as `\\Seen` or `$Label1`."""
        self.doveadm(
            "flags",
            "add" if add else "remove",
            "-u",
            user,
            _flag_arg(flags),
            "mailbox",
            mailbox,
            "uid",
            str(uid),
        )

    def expunge(self, user: str, mailbox: str, uid: int) -> None:
        """Expunge one message."""
        self.doveadm("expunge", "-u", user, "mailbox", mailbox, "uid", str(uid))

    def move(self, user: str, src: str, uid: int, dst: str) -> int:
        """Move one message from `src` to `dst`; return its new UID in `dst`."""
        with self._lock:
            before = self.status(user, dst, ("uidnext",))["uidnext"]
            self.doveadm("move", "-u", user, dst, "mailbox", src, "uid", str(uid))
            new = self._uids_from(user, dst, before)
        if not new:
            raise DovecotError(f"moved message not found in {user}:{dst}")
        return new[0]

    def set_uidvalidity(self, user: str, mailbox: str, n: int) -> None:
        """Change UIDVALIDITY of `mailbox` (simulates a server-side mailbox rebuild)."""
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(n), mailbox)


def live_group_members(pgid: int) -> list[int]:
    """PIDs in process group `pgid` that are not zombies."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def _probe(port: int, greeting: bytes | None) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as s:
            if greeting is None:
                return True
            s.settimeout(2)
            data = b""
            while b"\n" not in data:
                chunk = s.recv(1024)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(greeting)
    except OSError:
        return False
