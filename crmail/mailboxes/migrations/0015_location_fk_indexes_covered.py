"""The single-column indexes of Location's mailbox and folder go: the composite indexes
start with those columns (a first sync writes every location through each index).

Only the indexes are dropped (``DROP INDEX``), never the table remade: on SQLite,
``AlterField`` would copy the table and lose the visibility triggers on it (decision 063).
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "mailboxes_location_folder_id_c7ad4b17": "folder_id",
    "mailboxes_location_mailbox_id_a9110dab": "mailbox_id",
}


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0014_storage_usage"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "mailboxes_location" ("{column}")',
                )
                for name, column in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="location",
                    name="folder",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="locations",
                        to="mailboxes.folder",
                    ),
                ),
                migrations.AlterField(
                    model_name="location",
                    name="mailbox",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="locations",
                        to="mailboxes.mailbox",
                    ),
                ),
            ],
        ),
    ]
