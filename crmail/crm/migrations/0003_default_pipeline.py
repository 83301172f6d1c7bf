"""The starting sales pipeline."""

from django.db import migrations

STAGES = [
    ("Qualification", 10, "open"),
    ("Needs Analysis", 20, "open"),
    ("Value Proposition", 40, "open"),
    ("Proposal/Price Quote", 75, "open"),
    ("Negotiation/Review", 90, "open"),
    ("Closed Won", 100, "won"),
    ("Closed Lost", 0, "lost"),
]


def seed(apps, schema_editor):
    Pipeline = apps.get_model("crm", "Pipeline")
    Stage = apps.get_model("crm", "Stage")
    if Pipeline.objects.exists():
        return
    pipeline = Pipeline.objects.create(name="Standard", is_default=True)
    for position, (name, probability, kind) in enumerate(STAGES):
        Stage.objects.create(pipeline=pipeline, name=name, position=position,
                             probability=probability, kind=kind)


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
