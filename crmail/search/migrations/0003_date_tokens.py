"""The message's year and month in its search document (decision 046): on SQLite a
sixth FTS5 column ``dates`` with a tokenizer that keeps ``_`` in a token (the table is
rebuilt from its own content, the tokens from ``mail_message.date``); on PostgreSQL
two more lexemes in each ``tsvector``. Both read the same tokens ``search.index``
writes: ``_y2024 _m202403``, in UTC."""

from django.db import migrations

TRIGGER = (
    "CREATE TRIGGER search_fts_message_deleted AFTER DELETE ON mail_message "
    "BEGIN DELETE FROM search_fts WHERE rowid = old.id; END"
)
SQLITE = [
    "DROP TABLE IF EXISTS search_vocab",
    "DROP TRIGGER IF EXISTS search_fts_message_deleted",
    "CREATE VIRTUAL TABLE search_fts_dated USING fts5("
    "subject, sender, recipients, body, attachments, dates,"
    " tokenize = \"unicode61 remove_diacritics 0 tokenchars '_'\")",
    "INSERT INTO search_fts_dated"
    " (rowid, subject, sender, recipients, body, attachments, dates)"
    " SELECT f.rowid, f.subject, f.sender, f.recipients, f.body, f.attachments,"
    " '_y' || strftime('%Y', m.date) || ' _m' || strftime('%Y%m', m.date)"
    " FROM search_fts f LEFT JOIN mail_message m ON m.id = f.rowid ORDER BY f.rowid",
    "DROP TABLE search_fts",
    "ALTER TABLE search_fts_dated RENAME TO search_fts",
    TRIGGER,
    "CREATE VIRTUAL TABLE search_vocab USING fts5vocab(search_fts, row)",
]
SQLITE_BACK = [
    "DROP TABLE IF EXISTS search_vocab",
    "DROP TRIGGER IF EXISTS search_fts_message_deleted",
    "CREATE VIRTUAL TABLE search_fts_undated USING fts5("
    "subject, sender, recipients, body, attachments, tokenize = 'unicode61 remove_diacritics 0')",
    "INSERT INTO search_fts_undated (rowid, subject, sender, recipients, body, attachments)"
    " SELECT rowid, subject, sender, recipients, body, attachments FROM search_fts"
    " ORDER BY rowid",
    "DROP TABLE search_fts",
    "ALTER TABLE search_fts_undated RENAME TO search_fts",
    TRIGGER,
    "CREATE VIRTUAL TABLE search_vocab USING fts5vocab(search_fts, row)",
]
POSTGRESQL = [
    "UPDATE search_document d SET document = d.document || array_to_tsvector(ARRAY["
    "'_y' || to_char(m.date AT TIME ZONE 'UTC', 'YYYY'),"
    " '_m' || to_char(m.date AT TIME ZONE 'UTC', 'YYYYMM')])"
    " FROM mail_message m WHERE m.id = d.message_id AND m.date IS NOT NULL",
]
POSTGRESQL_BACK = [
    "UPDATE search_document SET document = ts_delete(document,"
    " ARRAY(SELECT lexeme FROM unnest(document) WHERE lexeme LIKE '\\_%'))",
]


def _run(statements: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        for sql in statements[schema_editor.connection.vendor]:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("search", "0002_vocabulary")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRESQL}),
            _run({"sqlite": SQLITE_BACK, "postgresql": POSTGRESQL_BACK}),
        )
    ]
