from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "crmail.mail"
    label = "mail"
    verbose_name = "Mail"

    def ready(self) -> None:
        from crmail.mail import receivers  # noqa: F401  (bodies after a first sync, 064)
