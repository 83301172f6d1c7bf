from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "crmail.storage"
    label = "storage"
    verbose_name = "Email storage"

    def ready(self) -> None:
        from crmail.storage import tasks  # noqa: F401  (registers the jobs)
