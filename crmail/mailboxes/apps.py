from django.apps import AppConfig


class MailboxesConfig(AppConfig):
    name = "crmail.mailboxes"
    label = "mailboxes"
    verbose_name = "Mailboxes"

    def ready(self) -> None:
        from crmail.mailboxes import receivers  # noqa: F401  (locations follow parsing, links)
        from crmail.mailboxes.labels import receivers as labels  # noqa: F401  (deals move mail)
