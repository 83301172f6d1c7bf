from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "crmail.web"
    label = "web"
    verbose_name = "Web interface"
