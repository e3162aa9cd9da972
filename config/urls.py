"""URL routes: pages, the workflow endpoints, the management API, operations."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
]
