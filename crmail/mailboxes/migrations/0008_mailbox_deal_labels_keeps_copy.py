from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0007_inbox_consumer_gone"),
    ]

    operations = [
        migrations.AddField(
            model_name="mailbox",
            name="deal_labels",
            field=models.BooleanField(
                default=False,
                help_text="Sort Inbox mail from contacts under labels by their deals' state "
                "(needs customer alerts).",
            ),
        ),
        migrations.AddField(
            model_name="mailbox",
            name="keeps_copy",
            field=models.BooleanField(
                default=True,
                help_text="Keep a copy of the mail in crmail (search, reports). IMAP and POP3 "
                "always do; a Gmail API or Graph mailbox without it is asked live and stores "
                "nothing of the mail.",
            ),
        ),
    ]
