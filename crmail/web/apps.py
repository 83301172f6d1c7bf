from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class WebConfig(AppConfig):
    name = "crmail.web"
    label = "web"
    verbose_name = "Web interface"


class BackOfficeConfig(admin_apps.AdminConfig):
    """Django's admin, as crmail's back office: signing in goes through crmail's sign-in."""

    default = False  # named in INSTALLED_APPS; crmail.web's own config stays WebConfig
    default_site = "crmail.web.backoffice.BackOfficeSite"
