"""Raw bytes in a table of their own (decision 015): saving parse results rewrote them."""

import django.db.models.deletion
from django.db import migrations, models

COPY = (
    "INSERT INTO mail_messageraw (message_id, raw, compression) "
    "SELECT id, raw, compression FROM mail_message"
)
COPY_BACK = (
    "UPDATE mail_message SET "
    "raw = (SELECT r.raw FROM mail_messageraw r WHERE r.message_id = mail_message.id), "
    "compression = (SELECT r.compression FROM mail_messageraw r "
    "WHERE r.message_id = mail_message.id)"
)


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="MessageRaw",
            fields=[
                (
                    "message",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="raw_row",
                        serialize=False,
                        to="mail.message",
                    ),
                ),
                ("raw", models.BinaryField()),
                (
                    "compression",
                    models.PositiveSmallIntegerField(choices=[(0, "none"), (1, "zstd")], default=0),
                ),
            ],
        ),
        # Every message's bytes move, none is left behind; reversing copies them back.
        migrations.RunSQL(COPY, reverse_sql=COPY_BACK),
        # A default only so that reversing can add the column back before copying into it.
        migrations.AlterField(
            model_name="message", name="raw", field=models.BinaryField(default=b"")
        ),
        migrations.RemoveField(model_name="message", name="compression"),
        migrations.RemoveField(model_name="message", name="raw"),
    ]
