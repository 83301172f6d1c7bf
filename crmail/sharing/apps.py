from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "crmail.sharing"
    label = "sharing"
    verbose_name = "Mail sharing"

    def ready(self) -> None:
        from crmail.sharing import (  # noqa: F401  (new users, deleted records; the job)
            receivers,
            tasks,
        )
