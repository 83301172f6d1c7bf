from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "crmail.search"
    label = "search"
    verbose_name = "Search"

    def ready(self) -> None:
        from crmail.search import receivers  # noqa: F401  (indexes mail as its parse commits)
