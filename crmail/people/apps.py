from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "crmail.people"
    label = "people"
    verbose_name = "People and permissions"

    def ready(self) -> None:
        from crmail.config import lookups

        lookups.register()  # ids beyond the database's integers match nothing (not a 500)
