"""The words the SQLite index holds (an fts5vocab table over ``search_fts``): search looks
up the words a last word may be the start of (decision 045). Nothing on PostgreSQL."""

from django.db import migrations


def _vocabulary(create: bool):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "sqlite":
            return
        if create:
            sql = "CREATE VIRTUAL TABLE search_vocab USING fts5vocab(search_fts, row)"
        else:
            sql = "DROP TABLE IF EXISTS search_vocab"
        schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("search", "0001_index")]

    operations = [migrations.RunPython(_vocabulary(True), _vocabulary(False))]
