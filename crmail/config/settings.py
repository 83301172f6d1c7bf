"""Django settings for crmail, all taken from the environment (see crmail.config.env)."""

from __future__ import annotations

import os
import secrets
from importlib.util import find_spec
from pathlib import Path

from crmail.blobs.backends import location as blob_location
from crmail.config import env
from crmail.domains.names import BadName, domain_name
from crmail.jobs.queue import build_huey
from crmail.mail.system import relay as smtp_relay

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env.data_dir()

# Problems found while reading the configuration; `crmail check` prints them and
# `crmail serve` refuses to start while there are any.
CRMAIL_CONFIG_ERRORS: list[str] = []

try:
    SECRET_KEY = env.secret_key(DATA_DIR)
except OSError as exc:
    CRMAIL_CONFIG_ERRORS.append(
        f"data dir {DATA_DIR} is not writable, so no secret key can be kept there ({exc.strerror})"
    )
    SECRET_KEY = secrets.token_urlsafe(50)

DEBUG = env.flag("CRMAIL_DEBUG")
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("CRMAIL_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CRMAIL_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "crmail.web.apps.BackOfficeConfig",  # django.contrib.admin, signing in through crmail
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
    "crmail.people",
    "crmail.crm",
    "crmail.jobs",
    "crmail.blobs",
    "crmail.events",
    "crmail.mail",
    "crmail.emailtemplates",
    "crmail.mailboxes",
    "crmail.linking",
    "crmail.orgaddresses",
    "crmail.sharing",
    "crmail.domains",
    "crmail.dropbox",
    "crmail.search",
    "crmail.webhooks",
    "crmail.notifications",
    "crmail.insights",
    "crmail.intelligence",
    "crmail.workflows",
    "crmail.storage",
    "crmail.reports",
    "crmail.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "crmail.web.security.SecurityHeadersMiddleware",
    "crmail.text_forms.QueryTextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "crmail.people.access.RememberPerRequest",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "crmail.config.urls"
WSGI_APPLICATION = "crmail.config.wsgi.application"

# django-ninja's templates and static files (the API's interactive documentation,
# crmail.api.router.Docs), found without importing ninja: as an installed app, ninja and
# pydantic were imported at every start of every command (a sixth of the start-up).
NINJA_DIR = Path(str(getattr(find_spec("ninja"), "origin", ""))).parent

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [NINJA_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crmail.web.context.mailbox_alert",
                "crmail.web.context.webhook_alert",
                "crmail.web.context.notifications",
            ],
        },
    },
]

try:
    DATABASES = {"default": env.database_settings(DATA_DIR)}
except env.ConfigError as exc:
    CRMAIL_CONFIG_ERRORS.append(str(exc))
    DATABASES = {
        "default": {
            "ENGINE": "crmail.config.sqlite3",
            "NAME": str(DATA_DIR / "crmail.sqlite3"),
            "OPTIONS": dict(env.SQLITE_OPTIONS),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "people.User"
# Every password check goes through the sign-in rate limiter (crmail.people.ratelimit).
AUTHENTICATION_BACKENDS = ["crmail.people.backends.RateLimitedBackend"]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Cookies: HttpOnly and SameSite always; Secure when crmail is served over HTTPS
# (CRMAIL_HTTPS=1), since browsers drop Secure cookies on plain http://127.0.0.1.
HTTPS = env.flag("CRMAIL_HTTPS")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = HTTPS
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = HTTPS
CSRF_COOKIE_HTTPONLY = False  # htmx reads it to send X-CSRFToken
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Strict-Transport-Security on every response when crmail is served over HTTPS
# (crmail.web.security); browsers ignore it on plain http.
HSTS_SECONDS = 60 * 60 * 24 * 365

# Reverse proxies whose X-Forwarded-For/-Proto/-Host crmail believes (crmail.config.proxy):
# addresses or networks, comma-separated. From any other peer those headers are dropped.
try:
    CRMAIL_TRUSTED_PROXIES = env.trusted_proxies(os.environ.get("CRMAIL_TRUSTED_PROXIES", ""))
except env.ConfigError as exc:
    CRMAIL_CONFIG_ERRORS.append(str(exc))
    CRMAIL_TRUSTED_PROXIES = ()


def _whole_number(name: str, default: int, minimum: int = 0) -> int:
    try:
        return env.whole_number(name, default, minimum=minimum)
    except env.ConfigError as exc:
        CRMAIL_CONFIG_ERRORS.append(str(exc))
        return default


# Sign-in attempts (crmail.people.ratelimit): within the window, this many failures from one
# client address lock that address out, and this many for one account (from every address
# together) lock the account; 0 turns a limit off.
CRMAIL_LOGIN_MAX_FAILURES = _whole_number("CRMAIL_LOGIN_MAX_FAILURES", 5)
CRMAIL_LOGIN_MAX_ACCOUNT_FAILURES = _whole_number("CRMAIL_LOGIN_MAX_ACCOUNT_FAILURES", 20)
CRMAIL_LOGIN_WINDOW_SECONDS = _whole_number("CRMAIL_LOGIN_WINDOW_SECONDS", 900, minimum=1)


def _endpoint(name: str) -> str:
    try:
        return env.endpoint_url(name)
    except env.ConfigError as exc:
        CRMAIL_CONFIG_ERRORS.append(str(exc))
        return ""


# Google's and Microsoft's sign-in endpoints and mail APIs, moved elsewhere (Microsoft's
# national clouds, a proxy, a local stand-in); empty: the providers' own
# (crmail.mailboxes.oauth.providers, drivers/gmail.py, drivers/graph.py). `crmail check`
# reports them.
CRMAIL_OAUTH_GOOGLE_AUTHORIZE_URL = _endpoint("CRMAIL_OAUTH_GOOGLE_AUTHORIZE_URL")
CRMAIL_OAUTH_GOOGLE_TOKEN_URL = _endpoint("CRMAIL_OAUTH_GOOGLE_TOKEN_URL")
CRMAIL_GMAIL_API_URL = _endpoint("CRMAIL_GMAIL_API_URL")
CRMAIL_OAUTH_MICROSOFT_AUTHORIZE_URL = _endpoint("CRMAIL_OAUTH_MICROSOFT_AUTHORIZE_URL")
CRMAIL_OAUTH_MICROSOFT_TOKEN_URL = _endpoint("CRMAIL_OAUTH_MICROSOFT_TOKEN_URL")
CRMAIL_GRAPH_API_URL = _endpoint("CRMAIL_GRAPH_API_URL")

# The BCC Dropbox (SPEC F6, decision 052): the domain of the users' dropbox addresses
# (empty: no dropbox), and the SMTP receiver `crmail serve` starts when a port is set
# (`crmail dropbox serve` runs it alone). STARTTLS is offered when a certificate and its
# key are given; a message past the size limit is refused (552); each sender may send so
# many messages a minute, each connection so many messages.
CRMAIL_DROPBOX_DOMAIN = os.environ.get("CRMAIL_DROPBOX_DOMAIN", "").strip().lower()
CRMAIL_DROPBOX_HOST = os.environ.get("CRMAIL_DROPBOX_HOST", "").strip() or "0.0.0.0"  # noqa: S104
CRMAIL_DROPBOX_PORT = _whole_number("CRMAIL_DROPBOX_PORT", 0)
CRMAIL_DROPBOX_TLS_CERT = os.environ.get("CRMAIL_DROPBOX_TLS_CERT", "").strip()
CRMAIL_DROPBOX_TLS_KEY = os.environ.get("CRMAIL_DROPBOX_TLS_KEY", "").strip()
CRMAIL_DROPBOX_MAX_SIZE = _whole_number("CRMAIL_DROPBOX_MAX_SIZE", 25 * 1024 * 1024, minimum=1024)
CRMAIL_DROPBOX_SENDER_RATE = _whole_number("CRMAIL_DROPBOX_SENDER_RATE", 30, minimum=1)
CRMAIL_DROPBOX_CONNECTION_LIMIT = _whole_number("CRMAIL_DROPBOX_CONNECTION_LIMIT", 50, minimum=1)
if CRMAIL_DROPBOX_PORT > 65535:
    CRMAIL_CONFIG_ERRORS.append(
        f"CRMAIL_DROPBOX_PORT must be a port number (1-65535), not {CRMAIL_DROPBOX_PORT}"
    )
if bool(CRMAIL_DROPBOX_TLS_CERT) != bool(CRMAIL_DROPBOX_TLS_KEY):
    CRMAIL_CONFIG_ERRORS.append(
        "CRMAIL_DROPBOX_TLS_CERT and CRMAIL_DROPBOX_TLS_KEY go together: set both or neither"
    )
if CRMAIL_DROPBOX_PORT and not CRMAIL_DROPBOX_DOMAIN:
    CRMAIL_CONFIG_ERRORS.append(
        "CRMAIL_DROPBOX_PORT is set but CRMAIL_DROPBOX_DOMAIN is not: the dropbox receiver "
        "needs the domain of its addresses"
    )

# crmail's own mail (verification codes, scheduled reports): the SMTP server it goes
# through (crmail.mail.system; empty: crmail sends no mail of its own) and its From address.
CRMAIL_SMTP_URL = os.environ.get("CRMAIL_SMTP_URL", "").strip()
CRMAIL_MAIL_FROM = os.environ.get("CRMAIL_MAIL_FROM", "").strip()
if CRMAIL_SMTP_URL:
    try:
        smtp_relay(CRMAIL_SMTP_URL)
    except env.ConfigError as exc:
        CRMAIL_CONFIG_ERRORS.append(str(exc))

# Email authentication (SPEC F10, decision 054): the resolvers crmail asks about SPF, DKIM
# and DMARC records (host:port, comma-separated; empty: the system's), and the SPF include
# every authenticated domain must name: the SPF record of the servers crmail's mail leaves
# through (empty: no include is asked for, only one valid SPF record).
try:
    CRMAIL_DNS_SERVERS = env.dns_servers(os.environ.get("CRMAIL_DNS_SERVERS", ""))
except env.ConfigError as exc:
    CRMAIL_CONFIG_ERRORS.append(str(exc))
    CRMAIL_DNS_SERVERS = ()
CRMAIL_SPF_INCLUDE = os.environ.get("CRMAIL_SPF_INCLUDE", "").strip()
if CRMAIL_SPF_INCLUDE:
    try:
        CRMAIL_SPF_INCLUDE = domain_name(CRMAIL_SPF_INCLUDE.removeprefix("include:"), service=True)
    except BadName as exc:
        CRMAIL_CONFIG_ERRORS.append(f"CRMAIL_SPF_INCLUDE: {exc}")
        CRMAIL_SPF_INCLUDE = ""

# crmail's address as recipients' mail programs reach it (https://crm.example.com): the open
# pixel and tracked links of Email insights (SPEC F9, decision 057) point there. Empty: mail
# goes out untracked, and the insights settings page and the composer say why.
try:
    CRMAIL_PUBLIC_URL = env.public_url("CRMAIL_PUBLIC_URL")
except env.ConfigError as exc:
    CRMAIL_CONFIG_ERRORS.append(str(exc))
    CRMAIL_PUBLIC_URL = ""

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("CRMAIL_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# One way of writing dates everywhere: "3 Dec 2026", "3 Dec 2026, 14:05".
FORMAT_MODULE_PATH = ["crmail.config.formats"]

# Uploaded files (a message's attachments) go straight to disk under the data dir, never
# whole into memory; the composer checks their size against the mailbox's limit.
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "uploads")
try:
    (DATA_DIR / "uploads").mkdir(mode=0o700, parents=True, exist_ok=True)
except OSError as exc:
    CRMAIL_CONFIG_ERRORS.append(f"data dir {DATA_DIR} has no room for uploads ({exc.strerror})")

# Where raw mail is kept (decision 050): packs of files under the data dir, or objects
# in S3-compatible storage (s3://bucket/prefix).
BLOB_URL = os.environ.get("CRMAIL_BLOB_URL", "").strip() or f"file:{DATA_DIR / 'blobs'}"
try:
    blob_location(BLOB_URL)
except ValueError as exc:
    CRMAIL_CONFIG_ERRORS.append(str(exc))

# Email storage (SPEC F11, decision 058): the organisation's quota is the lower of the
# ceiling and so much per active user (decimal units: 1 GB is 10^9 bytes), plus the extra
# an administrator adds: CRMAIL_STORAGE_EXTRA_GB (whole gigabytes) when set, else the value
# on the storage settings page. At the quota, new mail keeps its headers and its body waits.
STORAGE_BYTES_PER_LICENCE = 5 * 10**9
STORAGE_CEILING_BYTES = 100 * 10**9
CRMAIL_STORAGE_EXTRA_GB: int | None = None
if os.environ.get("CRMAIL_STORAGE_EXTRA_GB", "").strip():
    CRMAIL_STORAGE_EXTRA_GB = _whole_number("CRMAIL_STORAGE_EXTRA_GB", 0)

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [NINJA_DIR / "static"]

try:
    HUEY = build_huey(env.queue_url(DATA_DIR))
except env.ConfigError as exc:
    CRMAIL_CONFIG_ERRORS.append(str(exc))
    HUEY = {"huey_class": "huey.MemoryHuey", "immediate": True}

# Each process's memory. Mail asked live from mailboxes that keep no copy (decision 043)
# is kept a few minutes in caches of its own, bounded in entries: never in the database.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "live-pages": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "crmail-live-pages",
        "OPTIONS": {"MAX_ENTRIES": 500},
    },
    "live-messages": {  # at most 64 messages of at most 2 MB each
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "crmail-live-messages",
        "OPTIONS": {"MAX_ENTRIES": 64},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CRMAIL_LOG_LEVEL", "INFO")},
    "loggers": {
        "huey": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}
