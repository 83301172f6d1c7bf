"""PostgreSQL: the second index Django makes beside a text primary key goes from the
blob store's index (decision 083): a blob is looked up by its whole hash, never by a
prefix (``LIKE 'abc%'``, what ``varchar_pattern_ops`` serves), and a first sync wrote
every message's row through it. SQLite has no such index: nothing changes there."""

from django.db import migrations

TABLE, COLUMN = "blobs_blob", "sha256"


def _drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    name = schema_editor._create_index_name(TABLE, [COLUMN], suffix="_like")
    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def _create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    name = schema_editor._create_index_name(TABLE, [COLUMN], suffix="_like")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(TABLE)}"
        f" ({quote(COLUMN)} varchar_pattern_ops)"
    )


class Migration(migrations.Migration):
    dependencies = [("blobs", "0001_blob_store")]

    operations = [migrations.RunPython(_drop, _create)]
