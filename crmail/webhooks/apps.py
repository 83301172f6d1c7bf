from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "crmail.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from crmail.webhooks import consumer, tasks  # noqa: F401  (registers the consumer, jobs)
