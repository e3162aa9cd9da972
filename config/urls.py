"""URL routes: pages, the workflow endpoints, the management API, operations."""
from django.contrib import admin
from django.urls import include, path

from config import views

urlpatterns = [
    path("admin/", admin.site.urls),
    # login/, logout/ (POST only) and the password views; LoginRequiredMiddleware exempts them.
    path("accounts/", include("django.contrib.auth.urls")),
    # --- The apps' URL modules ----------------------------------------------------------------
    # Add each app's routes here, e.g. path("", include("workflows.urls")). They come before the
    # placeholders below on purpose: Django uses the first match, so an app's page at /workflows/
    # takes over from its placeholder, and {% url "workflows-page" %} in the navigation still
    # points at the right address until the placeholder is deleted.
    path("", include("api_endpoints.urls")),
    path("", include("scheduler.urls")),
    # The dashboard is the home page ("home"); the run list is /logs/ ("logs-page").
    path("", include("logs.urls")),
    # --- Placeholders for the navigation's sections (delete each once its app serves the path) --
    path("workflows/", views.section_placeholder, {"section": "workflows"}, name="workflows-page"),
    path("data/", views.section_placeholder, {"section": "data"}, name="data-page"),
    path("settings/", views.section_placeholder, {"section": "settings"}, name="settings-page"),
]
