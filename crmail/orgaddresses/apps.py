from django.apps import AppConfig


class OrgAddressesConfig(AppConfig):
    name = "crmail.orgaddresses"
    label = "orgaddresses"
    verbose_name = "Organisation addresses"
