"""PostgreSQL: the second index Django makes beside each indexed text column goes from
the columns a sync writes with every message, participant and blob (decision 083).

That second index (``…_like``, ``varchar_pattern_ops``) serves ``LIKE 'abc%'`` outside
the C locale. crmail never asks these columns for a prefix: it looks a message up by its
hash, Message-ID or state, a participant by the whole address, a blob by its whole hash.
A first sync wrote every message through five of them and every participant and blob
through one. Only the indexes are dropped, never a table remade. SQLite has no such
indexes: nothing changes there.
"""

from django.db import migrations

# (table, column) of each index dropped; Django names it by the table and column.
PATTERN_INDEXED = [
    ("mail_message", "sha256"),
    ("mail_message", "parse_state"),
    ("mail_message", "message_id"),
    ("mail_message", "in_reply_to"),
    ("mail_message", "from_address"),
    ("mail_participant", "address"),
    ("blobs_blob", "sha256"),  # its primary key
]


def _drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in PATTERN_INDEXED:
        name = schema_editor._create_index_name(table, [column], suffix="_like")
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def _create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in PATTERN_INDEXED:
        name = schema_editor._create_index_name(table, [column], suffix="_like")
        quote = schema_editor.quote_name
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)}"
            f" ({quote(column)} varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("mail", "0009_received_at"), ("blobs", "0001_blob_store")]

    operations = [migrations.RunPython(_drop, _create)]
