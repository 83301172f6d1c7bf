from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "crmail.reports"
    label = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from crmail.reports import tasks  # noqa: F401  (registers the job)
