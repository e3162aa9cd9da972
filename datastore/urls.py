"""Routes of the data pages."""
from django.urls import path, re_path

from datastore import views

# Data type names are ^[a-z][a-z0-9_]{0,62}$; record ids are UUIDs.
TYPE = r"(?P<name>[a-z][a-z0-9_]{0,62})"
RECORD = r"(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"

urlpatterns = [
    path("data/", views.data_type_list, name="data-page"),
    re_path(rf"^data/{TYPE}/$", views.record_list, name="data-records"),
    re_path(rf"^data/{TYPE}/fields/$", views.data_type_fields, name="data-type-fields"),
    re_path(rf"^data/{TYPE}/delete/$", views.data_type_delete, name="data-type-delete"),
    re_path(rf"^data/{TYPE}/new/$", views.record_new, name="data-record-new"),
    re_path(rf"^data/{TYPE}/export\.csv$", views.record_export, name="data-records-export"),
    re_path(rf"^data/{TYPE}/import/$", views.record_import, name="data-records-import"),
    re_path(rf"^data/{TYPE}/{RECORD}/$", views.record_edit, name="data-record"),
    re_path(rf"^data/{TYPE}/{RECORD}/delete/$", views.record_delete, name="data-record-delete"),
]
