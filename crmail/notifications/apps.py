from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "crmail.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from crmail.notifications import receivers  # noqa: F401  (the alerts consumer)
