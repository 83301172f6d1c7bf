"""The search index: an FTS5 table on SQLite, a tsvector table with a GIN index on
PostgreSQL (decision 027). Neither is a Django model: ``search.index`` writes them."""

from django.db import migrations

SQLITE = [
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "subject, sender, recipients, body, attachments, tokenize = 'unicode61 remove_diacritics 0')",
    "CREATE TRIGGER search_fts_message_deleted AFTER DELETE ON mail_message "
    "BEGIN DELETE FROM search_fts WHERE rowid = old.id; END",
]
SQLITE_BACK = [
    "DROP TRIGGER IF EXISTS search_fts_message_deleted",
    "DROP TABLE IF EXISTS search_fts",
]
POSTGRESQL = [
    "CREATE TABLE search_document (message_id bigint PRIMARY KEY, document tsvector NOT NULL)",
    "CREATE INDEX search_document_gin ON search_document USING gin (document)",
    "CREATE FUNCTION search_document_forget() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN IF TG_OP = 'TRUNCATE' THEN TRUNCATE search_document; "
    "ELSE DELETE FROM search_document WHERE message_id = OLD.id; END IF; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER search_document_message_deleted AFTER DELETE ON mail_message "
    "FOR EACH ROW EXECUTE FUNCTION search_document_forget()",
    "CREATE TRIGGER search_document_messages_truncated AFTER TRUNCATE ON mail_message "
    "FOR EACH STATEMENT EXECUTE FUNCTION search_document_forget()",
]
POSTGRESQL_BACK = [
    "DROP TRIGGER IF EXISTS search_document_messages_truncated ON mail_message",
    "DROP TRIGGER IF EXISTS search_document_message_deleted ON mail_message",
    "DROP FUNCTION IF EXISTS search_document_forget()",
    "DROP TABLE IF EXISTS search_document",
]


def _run(statements: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        vendor = schema_editor.connection.vendor
        if vendor not in statements:
            raise RuntimeError(f"crmail's search index needs SQLite or PostgreSQL, not {vendor}.")
        for sql in statements[vendor]:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("mail", "0002_messageraw")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRESQL}),
            _run({"sqlite": SQLITE_BACK, "postgresql": POSTGRESQL_BACK}),
        )
    ]
