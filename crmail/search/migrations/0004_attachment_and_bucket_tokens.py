"""PostgreSQL's documents gain lexemes no one can type (decision 047): ``_a`` for a
message with attachments, ``_b<id // 10000>`` and ``_c<id // 100000>``, the buckets of
its id, so that the index itself narrows a search to attachments or to the newest
messages; and ``search_vocab``, every word the index holds, for the words a prefix is
the start of (SQLite has its own, an fts5vocab table). SQLite's FTS5 needs no tokens (it
tests attachments on each match, and hands matches over newest first): nothing changes
there. The statistics the search sizes its slices from are gathered at the end
(``ANALYZE``)."""

from django.db import migrations

POSTGRESQL = [
    # Every document is rewritten: the GIN index is built again afterwards rather than
    # updated a million times (run ``VACUUM FULL search_document`` after it on a big store).
    "DROP INDEX search_document_gin",
    "UPDATE search_document d SET document = d.document || array_to_tsvector("
    "CASE WHEN m.has_attachments THEN ARRAY['_a'] ELSE ARRAY[]::text[] END"
    " || ARRAY['_b' || (d.message_id / 10000)::text, '_c' || (d.message_id / 100000)::text])"
    " FROM mail_message m WHERE m.id = d.message_id",
    "CREATE INDEX search_document_gin ON search_document USING gin (document)",
    "CREATE TABLE search_vocab (term text COLLATE \"C\" PRIMARY KEY)",
    "INSERT INTO search_vocab (term) SELECT DISTINCT lexeme FROM search_document,"
    " unnest(document) WHERE lexeme NOT LIKE '\\_%' ORDER BY 1",
    "ANALYZE search_document",
]
POSTGRESQL_BACK = [
    "DROP TABLE search_vocab",
    "UPDATE search_document SET document = ts_delete(document, ARRAY(SELECT lexeme"
    " FROM unnest(document) WHERE lexeme = '_a' OR lexeme LIKE '\\_b%' OR lexeme LIKE '\\_c%'))",
]


def _run(statements: list[str]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("search", "0003_date_tokens")]

    operations = [migrations.RunPython(_run(POSTGRESQL), _run(POSTGRESQL_BACK))]
