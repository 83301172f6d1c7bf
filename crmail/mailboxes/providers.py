"""Provider presets: server details a user should not have to look up (SPEC F1)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    imap: tuple[str, int, str] | None  # host, port, security
    pop3: tuple[str, int, str] | None
    smtp: tuple[str, int, str] | None
    app_password_with_2fa: bool = True
    max_connections: int = 10  # simultaneous IMAP connections the provider allows
    daily_bytes: int | None = None  # transfer cap over IMAP/POP a day
    sent_copy_by_smtp: bool = False  # the provider files sent mail in Sent by itself
    max_message_bytes: int | None = None  # the largest message the provider's SMTP takes

    @property
    def app_password_hint(self) -> str:
        return (
            f"{self.name} needs an app password when two-factor authentication is on: "
            "create one in your account's security settings and use it here."
        )


GB = 1024**3
MB = 1024**2
PRESETS: dict[str, Preset] = {
    p.key: p
    for p in [
        Preset(
            "gmail",
            "Gmail",
            ("imap.gmail.com", 993, "tls"),
            ("pop.gmail.com", 995, "tls"),
            ("smtp.gmail.com", 465, "tls"),
            max_connections=15,
            daily_bytes=int(2.5 * GB),
            sent_copy_by_smtp=True,
            max_message_bytes=25 * MB,
        ),
        Preset(
            "outlook",
            "Outlook / Office 365",
            ("outlook.office365.com", 993, "tls"),
            ("outlook.office365.com", 995, "tls"),
            ("smtp.office365.com", 587, "starttls"),
            max_connections=16,
            sent_copy_by_smtp=True,
            max_message_bytes=20 * MB,
        ),
        Preset(
            "yahoo",
            "Yahoo Mail",
            ("imap.mail.yahoo.com", 993, "tls"),
            ("pop.mail.yahoo.com", 995, "tls"),
            ("smtp.mail.yahoo.com", 465, "tls"),
            max_connections=5,
            max_message_bytes=25 * MB,
        ),
        Preset(
            "zoho",
            "Zoho Mail",
            ("imap.zoho.com", 993, "tls"),
            ("pop.zoho.com", 995, "tls"),
            ("smtp.zoho.com", 465, "tls"),
            max_connections=5,
        ),
        Preset(
            "icloud",
            "iCloud Mail",
            ("imap.mail.me.com", 993, "tls"),
            None,
            ("smtp.mail.me.com", 587, "starttls"),
            max_connections=10,
            sent_copy_by_smtp=True,
            max_message_bytes=20 * MB,
        ),
        Preset(
            "aol",
            "AOL Mail",
            ("imap.aol.com", 993, "tls"),
            ("pop.aol.com", 995, "tls"),
            ("smtp.aol.com", 465, "tls"),
            max_connections=5,
        ),
        Preset(
            "fastmail",
            "Fastmail",
            ("imap.fastmail.com", 993, "tls"),
            ("pop.fastmail.com", 995, "tls"),
            ("smtp.fastmail.com", 465, "tls"),
            max_connections=10,
        ),
    ]
}
CUSTOM = Preset(
    "custom",
    "Other (custom IMAP/POP)",
    None,
    None,
    None,
    app_password_with_2fa=False,
    max_connections=5,
)


def preset(key: str) -> Preset:
    return PRESETS.get(key, CUSTOM)


def preset_for_host(host: str) -> Preset:
    host = (host or "").lower()
    for p in PRESETS.values():
        for server in (p.imap, p.pop3, p.smtp):
            if server and server[0] == host:
                return p
    return CUSTOM
