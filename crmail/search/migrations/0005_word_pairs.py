"""PostgreSQL's documents gain a lexeme for each two short words next to each other
(decision 048: ``_with a``, each word of at most four characters), read from the
positions the document already holds, so that a phrase of common words is found in the
index. SQLite's FTS5 holds positions in its index: nothing changes there."""

from django.db import migrations

_SHORT = (
    "SELECT u.lexeme, p FROM unnest(d.document) u, unnest(u.positions) p"
    " WHERE char_length(u.lexeme) <= 4 AND u.lexeme NOT LIKE '\\_%'"
)
POSTGRESQL = [
    # Every document is rewritten: the GIN index is built again afterwards rather than
    # updated a million times (run ``VACUUM FULL search_document`` after it on a big store).
    "DROP INDEX search_document_gin",
    "UPDATE search_document d SET document = d.document || array_to_tsvector(ARRAY("
    f"SELECT DISTINCT '_' || a.lexeme || ' ' || b.lexeme FROM ({_SHORT}) a JOIN ({_SHORT}) b"
    " ON b.p = a.p + 1))",
    "CREATE INDEX search_document_gin ON search_document USING gin (document)",
    "ANALYZE search_document",
]
POSTGRESQL_BACK = [
    "UPDATE search_document SET document = ts_delete(document, ARRAY(SELECT lexeme"
    " FROM unnest(document) WHERE lexeme LIKE '\\_% %'))",
]


def _run(statements: list[str]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("search", "0004_attachment_and_bucket_tokens")]

    operations = [migrations.RunPython(_run(POSTGRESQL), _run(POSTGRESQL_BACK))]
