"""PostgreSQL keeps statistics of ten times as many of the index's lexemes (decision
049): the 10,000 most common, down to about one document in a thousand, instead of the
1,000 down to one in sixty. A search sizes the slice of the index it reads first from
them, and a word or pair not listed was read through whole: up to 15,000 documents
before, about 1,500 now. SQLite keeps no such statistics: nothing changes there."""

from django.db import migrations

POSTGRESQL = [
    "ALTER TABLE search_document ALTER COLUMN document SET STATISTICS 1000",
    "ANALYZE search_document",
]
POSTGRESQL_BACK = ["ALTER TABLE search_document ALTER COLUMN document SET STATISTICS -1"]


def _run(statements: list[str]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("search", "0005_word_pairs")]

    operations = [migrations.RunPython(_run(POSTGRESQL), _run(POSTGRESQL_BACK))]
