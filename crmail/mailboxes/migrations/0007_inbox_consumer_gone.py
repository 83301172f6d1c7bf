from django.db import migrations


def forget(apps, schema_editor):
    """Locations follow parse results in the transaction that saves them (decision 038):
    the outbox's ``inbox`` consumer is gone, and so are its place and its failures."""
    apps.get_model("events", "Failure").objects.filter(consumer="inbox").delete()
    apps.get_model("events", "ConsumerState").objects.filter(name="inbox").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("mailboxes", "0006_conversations"),
    ]

    operations = [migrations.RunPython(forget, migrations.RunPython.noop)]
