"""PostgreSQL's documents gain a pair lexeme for two words next to each other when one
of them is short, not only when both are (decision 049: ``_the merra``), read from the
positions each document holds. SQLite's FTS5 holds positions in its index: nothing
changes there."""

from django.db import migrations

_WORDS = (
    "SELECT u.lexeme, p FROM unnest(d.document) u, unnest(u.positions) p"
    " WHERE u.lexeme NOT LIKE '\\_%'"
)
POSTGRESQL = [
    # Every document is rewritten: the GIN index is built again afterwards rather than
    # updated a million times (run ``VACUUM FULL search_document`` after it on a big
    # store). The pairs of two short words are there already; || keeps one of each.
    "DROP INDEX search_document_gin",
    "UPDATE search_document d SET document = d.document || array_to_tsvector(ARRAY("
    f"SELECT DISTINCT '_' || a.lexeme || ' ' || b.lexeme FROM ({_WORDS}) a JOIN ({_WORDS}) b"
    " ON b.p = a.p + 1 WHERE char_length(a.lexeme) <= 4 OR char_length(b.lexeme) <= 4))",
    "CREATE INDEX search_document_gin ON search_document USING gin (document)",
    "ANALYZE search_document",
]
# Back to the pairs of two short words alone.
POSTGRESQL_BACK = [
    "UPDATE search_document SET document = ts_delete(document, ARRAY(SELECT lexeme"
    " FROM unnest(document) WHERE lexeme LIKE '\\_% %'"
    " AND (char_length(split_part(substr(lexeme, 2), ' ', 1)) > 4"
    " OR char_length(split_part(lexeme, ' ', 2)) > 4)))",
]


def _run(statements: list[str]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("search", "0006_lexeme_statistics")]

    operations = [migrations.RunPython(_run(POSTGRESQL), _run(POSTGRESQL_BACK))]
