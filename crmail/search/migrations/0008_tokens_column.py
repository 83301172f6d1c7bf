"""PostgreSQL's lexemes of its own (the date tokens, ``_a``, the id's buckets and the
pairs: every lexeme that starts with ``_``) move from ``document`` to a column of their
own, ``extra`` (decision 051), so that the document a search ranks holds the words
alone. The GIN index covers both columns: a search asks for its words in one and its
tokens in the other, in one scan of the index. SQLite's FTS5 keeps its date tokens in a
column of their own already: nothing changes there."""

from django.db import migrations

_TOKENS = "ARRAY(SELECT lexeme FROM unnest(document) WHERE lexeme LIKE '\\_%')"
POSTGRESQL = [
    "ALTER TABLE search_document ADD COLUMN extra tsvector NOT NULL DEFAULT ''",
    # A row past about 2 kB is cut down by moving its largest values to TOAST: the
    # document (words alone: median 1.6 kB on the bench store) would go first and be
    # read back for each match ranked, ``extra`` (median 1.1 kB) for each match
    # rechecked (a phrase's, or every row of a bitmap's lossy pages). MAIN keeps both
    # in the row unless it cannot hold them (past about 8 kB; decision 051).
    "ALTER TABLE search_document ALTER COLUMN document SET STORAGE MAIN,"
    " ALTER COLUMN extra SET STORAGE MAIN",
    # Every document is rewritten: the GIN index is built again afterwards rather than
    # updated a million times (run ``VACUUM FULL search_document`` after it on a big
    # store). Both expressions read the document as it was.
    "DROP INDEX search_document_gin",
    f"UPDATE search_document SET extra = array_to_tsvector({_TOKENS}),"
    f" document = ts_delete(document, {_TOKENS})",
    "CREATE INDEX search_document_gin ON search_document USING gin (document, extra)",
    "ALTER TABLE search_document ALTER COLUMN extra SET STATISTICS 1000",
    "ANALYZE search_document",
]
POSTGRESQL_BACK = [
    "DROP INDEX search_document_gin",
    "ALTER TABLE search_document ALTER COLUMN document SET STORAGE EXTENDED",
    "UPDATE search_document SET document = document || extra",
    "ALTER TABLE search_document DROP COLUMN extra",
    "CREATE INDEX search_document_gin ON search_document USING gin (document)",
    "ANALYZE search_document",
]


def _run(statements: list[str]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("search", "0007_pairs_with_one_short_word")]

    operations = [migrations.RunPython(_run(POSTGRESQL), _run(POSTGRESQL_BACK))]
