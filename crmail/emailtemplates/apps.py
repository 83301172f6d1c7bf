from django.apps import AppConfig


class EmailTemplatesConfig(AppConfig):
    name = "crmail.emailtemplates"
    label = "emailtemplates"
    verbose_name = "Email templates"
