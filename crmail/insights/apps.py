from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "crmail.insights"
    label = "insights"
    verbose_name = "Email insights"

    def ready(self) -> None:
        from crmail.insights import tasks  # noqa: F401  (registers the jobs)
