"""The app's own data: data types with typed fields, and their records."""
from django.apps import AppConfig


class DatastoreConfig(AppConfig):
    name = "datastore"
    verbose_name = "Data"
