from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "crmail.events"
    label = "events"
    verbose_name = "Events"
