from django.apps import AppConfig


class DropboxConfig(AppConfig):
    name = "crmail.dropbox"
    label = "dropbox"
    verbose_name = "BCC Dropbox"

    def ready(self) -> None:
        from crmail.dropbox import tasks  # noqa: F401  (registers the jobs)
