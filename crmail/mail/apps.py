from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "crmail.mail"
    label = "mail"
    verbose_name = "Mail"
