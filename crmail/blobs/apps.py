from django.apps import AppConfig


class BlobsConfig(AppConfig):
    name = "crmail.blobs"
    label = "blobs"
    verbose_name = "Stored mail"
