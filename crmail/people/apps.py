from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "crmail.people"
    label = "people"
    verbose_name = "People and permissions"
