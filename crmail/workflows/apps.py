from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "crmail.workflows"
    label = "workflows"
    verbose_name = "Email workflows"

    def ready(self) -> None:
        from crmail.workflows import consumer, tasks  # noqa: F401  (the consumer, the jobs)
