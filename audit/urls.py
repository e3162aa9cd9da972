"""Route of the audit log page, under the settings section."""
from django.urls import path

from . import views

urlpatterns = [
    path("settings/audit/", views.audit_list, name="settings-audit"),
]
