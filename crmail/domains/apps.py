from django.apps import AppConfig


class DomainsConfig(AppConfig):
    name = "crmail.domains"
    label = "domains"
    verbose_name = "Email authentication"

    def ready(self) -> None:
        from crmail.domains import tasks  # noqa: F401  (registers the jobs)
