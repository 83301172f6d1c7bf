from django.apps import AppConfig


class MailboxesConfig(AppConfig):
    name = "crmail.mailboxes"
    label = "mailboxes"
    verbose_name = "Mailboxes"
