from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "crmail.reports"
    label = "reports"
    verbose_name = "Reports"
