from django.apps import AppConfig


class LinkingConfig(AppConfig):
    name = "crmail.linking"
    label = "linking"
    verbose_name = "Mail on records"

    def ready(self) -> None:
        from crmail.linking import receivers  # noqa: F401  (connects the record events)
