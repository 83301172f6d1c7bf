from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crmail.crm"
    label = "crm"
    verbose_name = "CRM records"
