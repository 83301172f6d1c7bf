from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "crmail.jobs"
    label = "jobs"
    verbose_name = "Background jobs"
