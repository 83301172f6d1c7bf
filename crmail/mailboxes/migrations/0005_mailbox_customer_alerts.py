from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0004_location_thread_date"),
    ]

    operations = [
        migrations.AddField(
            model_name="mailbox",
            name="customer_alerts",
            field=models.BooleanField(
                default=True,
                help_text="Tell the owner at once when mail from a lead or contact reaches the Inbox.",
            ),
        ),
    ]
