"""Trigram indexes for finding records by a word inside a field (decision 062).

PostgreSQL: the ``pg_trgm`` extension (trusted since PostgreSQL 13: the database's owner
may create it) and a GIN index per table on ``UPPER(field::text)``, the expression Django
writes for ``icontains``. SQLite: an FTS5 table with the ``trigram`` tokenizer per table,
external content (no copy of the text), kept by triggers on the table. Neither is a
Django model or index: ``crm.record_index`` reads them. On SQLite, contacts and leads
also get a B-tree index in their lists' order (name) covering the fields a search tests,
walked when the words are common or short (on PostgreSQL the planner walked such an
index for a name's matches too, which sit together in that order, instead of reading
them from the trigram index).
"""

from django.db import migrations

# (table, searched fields): crm.record_index.FIELDS, and the addresses.
TABLES = (
    ("crm_lead", ("first_name", "last_name", "company", "phone", "mobile")),
    ("crm_contact", ("first_name", "last_name", "phone", "mobile")),
    ("crm_account", ("name", "domain", "website", "phone")),
    ("crm_deal", ("name",)),
    ("crm_emailaddress", ("address",)),
)


def _sqlite(table: str, fields: tuple[str, ...]) -> list[str]:
    fts = f"{table}_search"
    cols = ", ".join(fields)
    new = ", ".join(f"new.{f}" for f in fields)
    old = ", ".join(f"old.{f}" for f in fields)
    insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new});"
    delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}', "
        "content_rowid='id', tokenize='trigram')",
        f"CREATE TRIGGER {fts}_inserted AFTER INSERT ON {table} BEGIN {insert} END",
        f"CREATE TRIGGER {fts}_deleted AFTER DELETE ON {table} BEGIN {delete} END",
        f"CREATE TRIGGER {fts}_updated AFTER UPDATE OF {cols} ON {table} "
        f"BEGIN {delete} {insert} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


def _postgresql(table: str, fields: tuple[str, ...]) -> list[str]:
    exprs = ", ".join(f"UPPER(({f})::text) gin_trgm_ops" for f in fields)
    return [f"CREATE INDEX {table}_trgm ON {table} USING gin ({exprs})"]


SQL = {
    "sqlite": [s for t, f in TABLES for s in _sqlite(t, f)]
    # The lists' order, with what a walk tests (the searched fields, the account, the
    # owner for visibility): walking it reads no row.
    + [
        "CREATE INDEX crm_lead_by_name ON crm_lead "
        "(last_name, first_name, id, company, phone, mobile, owner_id)",
        "CREATE INDEX crm_contact_by_name ON crm_contact "
        "(last_name, first_name, id, phone, mobile, account_id, owner_id)",
    ],
    "postgresql": ["CREATE EXTENSION IF NOT EXISTS pg_trgm"]
    + [s for t, f in TABLES for s in _postgresql(t, f)],
}
# The extension stays: another database object may use it by then.
SQL_BACK = {
    "sqlite": [f"DROP INDEX IF EXISTS {t}_by_name" for t in ("crm_lead", "crm_contact")]
    + [
        s
        for t, _ in TABLES
        for s in (
            f"DROP TRIGGER IF EXISTS {t}_search_inserted",
            f"DROP TRIGGER IF EXISTS {t}_search_deleted",
            f"DROP TRIGGER IF EXISTS {t}_search_updated",
            f"DROP TABLE IF EXISTS {t}_search",
        )
    ],
    "postgresql": [f"DROP INDEX IF EXISTS {t}_trgm" for t, _ in TABLES],
}


def _run(statements: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        vendor = schema_editor.connection.vendor
        if vendor not in statements:
            raise RuntimeError(f"crmail's record search needs SQLite or PostgreSQL, not {vendor}.")
        for sql in statements[vendor]:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("crm", "0006_contact_time_zone")]

    operations = [
        migrations.RunPython(_run(SQL), _run(SQL_BACK)),
    ]
