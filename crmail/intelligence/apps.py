from django.apps import AppConfig


class IntelligenceConfig(AppConfig):
    name = "crmail.intelligence"
    label = "intelligence"
    verbose_name = "Email intelligence"

    def ready(self) -> None:
        from crmail.intelligence import receivers, tasks  # noqa: F401  (registers them)
