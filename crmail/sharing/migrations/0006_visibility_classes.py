"""Visibility classes (decision 063): the tables, and the database triggers that write a
``VisibilityChange`` for every message whose class a write may change, whoever writes
(the sync's bulk statements, the ORM, cascades). The triggers are written here rather
than imported, so that this migration stays as it ran. Only table and column names
written here go into their text."""

# ruff: noqa: S608

import django.db.models.deletion
from django.db import migrations, models

CHANGES, CLASSES = "sharing_visibilitychange", "sharing_messageclass"
LINK, LOCATION, MAILBOX = "linking_link", "mailboxes_location", "mailboxes_mailbox"
HELD = (
    f"SELECT l.message_id FROM {{rows}} JOIN {MAILBOX} b ON b.owner_id = r.{{owner}}"
    f" JOIN {LOCATION} l ON l.mailbox_id = b.id"
)


def _linked(module: str) -> str:
    return (
        f"SELECT k.message_id FROM {{rows}} JOIN {LINK} k"
        f" ON k.module = '{module}' AND k.record_id = r.id"
    )


ROW = "SELECT r.message_id FROM {rows}"
MESSAGE = "SELECT r.id AS message_id FROM {rows}"
ALL, RECORD = ("insert", "delete", "update"), ("delete", "update")
# name, table, events, the columns a change of which matters (updates), the columns the
# query reads from a row, and the query: the messages whose class a row may change.
SOURCES = [
    ("location", LOCATION, ALL, ("message_id", "mailbox_id"), ("message_id",), ROW),
    ("link", LINK, ALL, ("message_id", "module", "record_id"), ("message_id",), ROW),
    (
        "sent",
        "mailboxes_sentmessage",
        ALL,
        ("message_id", "sender_id", "source"),
        ("message_id",),
        ROW,
    ),
    (
        "participant",
        "mail_participant",
        ALL,
        ("message_id", "role", "address"),
        ("message_id",),
        ROW,
    ),
    ("contact", "crm_contact", RECORD, ("owner_id", "account_id"), ("id",), _linked("contacts")),
    ("lead", "crm_lead", RECORD, ("owner_id",), ("id",), _linked("leads")),
    ("deal", "crm_deal", RECORD, ("owner_id",), ("id",), _linked("deals")),
    (
        "account",
        "crm_account",
        RECORD,
        ("owner_id",),
        ("id",),
        _linked("accounts")
        + " UNION ALL SELECT k.message_id FROM {rows} JOIN crm_contact c ON c.account_id = r.id"
        f" JOIN {LINK} k ON k.module = 'contacts' AND k.record_id = c.id",
    ),
    (
        "excluded",
        "sharing_excludeddomain",
        ALL,
        ("setting_id", "domain"),
        ("setting_id",),
        HELD.replace("{owner}", "setting_id"),
    ),
    ("user", "people_user", ("update",), ("email",), ("id",), HELD.replace("{owner}", "id")),
    # What reports read of the message itself (``MessageClass``): row by row on
    # PostgreSQL too, so that the many updates of other columns capture nothing.
    ("message", "mail_message", ("update",), ("date", "from_address"), ("id",), MESSAGE),
    (
        "mailbox",
        MAILBOX,
        ALL,
        ("owner_id", "email", "extra_from_addresses", "protocol"),
        ("owner_id",),
        HELD.replace("{owner}", "owner_id"),
    ),
]


def _sqlite() -> tuple[list[str], list[str]]:
    create, drop = [], []
    for name, table, events, watched, reads, query in SOURCES:
        for event in events:
            trigger = f"crmail_visibility_{name}_{event}"
            drop.append(f"DROP TRIGGER IF EXISTS {trigger}")

            def rows(side: str, reads: tuple[str, ...] = reads) -> str:
                return "(SELECT " + ", ".join(f"{side}.{c} AS {c}" for c in reads) + ") r"

            sides = {"insert": ["NEW"], "delete": ["OLD"], "update": ["OLD", "NEW"]}[event]
            found = " UNION ALL ".join(query.format(rows=rows(side)) for side in sides)
            on = "UPDATE OF " + ", ".join(watched) if event == "update" else event.upper()
            when = (
                " WHEN " + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
                if event == "update"
                else ""
            )
            # One writer at a time: a message without a class has a change waiting since
            # its first copy or send (that classify will read with all written before),
            # or no copy and no send, which no rule lets anyone see. So the other writes
            # need a change only for a message with a class: the sync's new participants
            # and links cost a lookup, not a row. No DISTINCT: per row it would build a
            # temporary table (40 µs a copy); the log takes a message twice.
            classified = (
                ""
                if (name, event) in (("location", "insert"), ("sent", "insert"))
                else f" AND EXISTS (SELECT 1 FROM {CLASSES} mc WHERE mc.message_id = q.message_id)"
            )
            if query == ROW:  # the row's own message: no query around it
                found = " UNION ALL ".join(f"SELECT {side}.message_id AS message_id" for side in sides)
            create.append(
                f"CREATE TRIGGER {trigger} AFTER {on} ON {table} FOR EACH ROW{when} BEGIN"
                f" INSERT INTO {CHANGES} (message_id) SELECT q.message_id FROM ({found}) q"
                f" WHERE q.message_id IS NOT NULL{classified}; END"
            )
    return create, drop


def _postgresql() -> tuple[list[str], list[str]]:
    create, drop = [], []
    for name, table, events, watched, _reads, query in SOURCES:
        for event in events:
            trigger = f"crmail_visibility_{name}_{event}"
            drop += [
                f"DROP TRIGGER IF EXISTS {trigger} ON {table}",
                f"DROP FUNCTION IF EXISTS {trigger}()",
            ]
            if name == "message":  # row by row, when a watched column changes
                create += [
                    f"CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                    f" INSERT INTO {CHANGES} (message_id) VALUES (NEW.id); RETURN NULL; END $$",
                    f"CREATE TRIGGER {trigger} AFTER UPDATE OF {', '.join(watched)} ON {table}"
                    " FOR EACH ROW WHEN ("
                    + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in watched)
                    + f") EXECUTE FUNCTION {trigger}()",
                ]
                continue
            if event == "update":
                changed = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in watched)
                found = " UNION ALL ".join(
                    query.format(
                        rows=f"(SELECT {a}.* FROM crmail_new n JOIN crmail_old o ON o.id = n.id"
                        f" WHERE {changed}) r"
                    )
                    for a in ("o", "n")
                )
                referencing = "REFERENCING OLD TABLE AS crmail_old NEW TABLE AS crmail_new"
            else:
                side = "crmail_new" if event == "insert" else "crmail_old"
                found = query.format(rows=f"{side} r")
                referencing = f"REFERENCING {'NEW' if event == 'insert' else 'OLD'} TABLE AS {side}"
            create += [
                f"CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                f" INSERT INTO {CHANGES} (message_id) SELECT DISTINCT q.message_id FROM ({found}) q"
                " WHERE q.message_id IS NOT NULL; RETURN NULL; END $$",
                f"CREATE TRIGGER {trigger} AFTER {event.upper()} ON {table} {referencing}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {trigger}()",
            ]
    return create, drop


# Every message there is: none has a class yet.
FILL = f"INSERT INTO {CHANGES} (message_id) SELECT id FROM mail_message"


def _triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        raise RuntimeError(f"crmail's visibility classes need SQLite or PostgreSQL, not {vendor}.")
    create, _ = _sqlite() if vendor == "sqlite" else _postgresql()
    for sql in [*create, FILL]:
        schema_editor.execute(sql, params=None)


def _no_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    _, drop = _sqlite() if vendor == "sqlite" else _postgresql()
    for sql in drop:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0007_waiting_body"),
        ("sharing", "0005_live_opens"),
        ("mailboxes", "0014_storage_usage"),
        ("linking", "0002_link_reason_workflow"),
        ("crm", "0007_record_search_indexes"),
        ("people", "0004_user_mark_read_on_open"),
    ]

    operations = [
        migrations.CreateModel(
            name="VisibilityChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("message_id", models.BigIntegerField(db_index=True)),
            ],
        ),
        migrations.CreateModel(
            name="VisibilityClass",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "digest",
                    models.CharField(help_text="SHA-256 of the key.", max_length=64, unique=True),
                ),
                ("key", models.TextField()),
            ],
        ),
        migrations.CreateModel(
            name="MessageClass",
            fields=[
                (
                    "message",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="visibility",
                        serialize=False,
                        to="mail.message",
                    ),
                ),
                (
                    "visibility_class",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="sharing.visibilityclass",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="messageclass",
            name="date",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="messageclass",
            name="from_address",
            field=models.CharField(blank=True, max_length=254),
        ),
        migrations.AddField(
            model_name="messageclass",
            name="sent",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(_triggers, _no_triggers),
    ]
