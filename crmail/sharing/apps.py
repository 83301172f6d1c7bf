from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "crmail.sharing"
    label = "sharing"
    verbose_name = "Mail sharing"

    def ready(self) -> None:
        from crmail.sharing import receivers  # noqa: F401  (new users, deleted records)
