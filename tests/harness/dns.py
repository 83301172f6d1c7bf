"""A DNS server on loopback (dnslib) serving test zones over UDP and TCP on one port.

Records are set and changed while it runs::

    dns = DnsServer(); dns.start()
    dns.add("example.com", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns.add("sel._domainkey.example.com", "TXT", long_value)  # split into 255-byte strings
    dns.silence("slow.example.com")  # questions about it get no answer at all (a timeout)
    dns.address  # "127.0.0.1:PORT", as CRMAIL_DNS_SERVERS takes it

A name with no records at all answers NXDOMAIN; a name with records of other types
answers NOERROR with no answer (NODATA), as an authoritative server does. Names are
compared without case and without the final dot. ``queries`` lists (name, type) asked.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import defaultdict

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSServer

from .dovecot import HOST

TTL = 60
CHUNK = 255  # a TXT character-string holds at most 255 bytes (RFC 1035 section 3.3)


def _name(name: str) -> str:
    return str(name).rstrip(".").lower()


class _Quiet:
    """dnslib's logger interface, saying nothing."""

    def __getattr__(self, name: str):  # log_recv, log_send, log_request, …
        return lambda *args, **kwargs: None


class _Zones:
    """dnslib's resolver interface over the server's records."""

    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def resolve(self, request: DNSRecord, handler) -> DNSRecord:
        question = request.q
        name, qtype = _name(question.qname), QTYPE[question.qtype]
        with self.server.lock:
            self.server.queries.append((name, qtype))
            if name in self.server.silent:
                raise DNSError("silenced")  # dnslib's handler then sends nothing
            records = {t: list(v) for t, v in self.server.records.get(name, {}).items()}
        reply = request.reply()
        if not records:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rdata in records.get(qtype, []):
            reply.add_answer(RR(question.qname, question.qtype, rdata=rdata, ttl=TTL))
        return reply


def _rdata(rtype: str, value: str | list[str]):
    if rtype == "TXT":
        parts = [value] if isinstance(value, str) else list(value)
        if len(parts) == 1:
            encoded = parts[0].encode()
            parts = [encoded[i : i + CHUNK].decode() for i in range(0, len(encoded), CHUNK)] or [""]
        return TXT(parts)
    if rtype == "A":
        return A(str(value))
    if rtype == "AAAA":
        return AAAA(str(value))
    if rtype == "MX":
        preference, _, exchange = str(value).partition(" ")
        return MX(exchange, int(preference))
    raise ValueError(f"the test DNS server does not serve {rtype} records")


class DnsServer:
    """Authoritative answers from records set in the test, on 127.0.0.1 UDP and TCP."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self.silent: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.port = 0
        self._servers: list[DNSServer] = []

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def add(self, name: str, rtype: str, value: str | list[str]) -> None:
        """One more record; a TXT value longer than 255 bytes is split into strings (a
        list gives the strings as they are)."""
        with self.lock:
            self.records[_name(name)][rtype.upper()].append(_rdata(rtype.upper(), value))

    def remove(self, name: str, rtype: str | None = None) -> None:
        """Drop the name's records (of one type, or all: then it answers NXDOMAIN)."""
        with self.lock:
            if rtype is None:
                self.records.pop(_name(name), None)
            else:
                self.records.get(_name(name), {}).pop(rtype.upper(), None)

    def silence(self, name: str) -> None:
        """Questions about ``name`` get no answer (the client times out)."""
        with self.lock:
            self.silent.add(_name(name))

    def clear(self) -> None:
        with self.lock:
            self.records.clear()
            self.silent.clear()
            self.queries.clear()

    def start(self) -> None:
        for _ in range(20):  # a port free for TCP may be taken for UDP: try another
            port = _free_port()
            try:
                udp = DNSServer(_Zones(self), address=HOST, port=port, logger=_Quiet())
            except OSError:
                continue
            try:
                tcp = DNSServer(_Zones(self), address=HOST, port=port, tcp=True, logger=_Quiet())
            except OSError:
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:  # a short poll: stop() returns at once
                threading.Thread(
                    target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
                ).start()
            return
        raise RuntimeError("no free loopback port for the test DNS server")

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
        self._servers = []


class SilentDns:
    """A DNS server that never answers: UDP bound and unread, TCP listening, never
    accepting. Every question times out."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        self.port = 0

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind((HOST, 0))
        tcp.listen(1)
        self.port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((HOST, self.port))
        except OSError:
            tcp.close()
            raise
        self._sockets = [tcp, udp]

    def stop(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets = []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])
