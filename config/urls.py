"""URL routes: pages, the workflow endpoints, the management API, operations."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # login/, logout/ (POST only) and the password views; LoginRequiredMiddleware exempts them.
    path("accounts/", include("django.contrib.auth.urls")),
    # --- The apps' URL modules ----------------------------------------------------------------
    # Each app serves its section of the navigation ({% url "workflows-page" %} and the others).
    path("", include("api_endpoints.urls")),
    path("", include("scheduler.urls")),
    # The dashboard is the home page ("home"); the run list is /logs/ ("logs-page").
    path("", include("logs.urls")),
    # Workflow pages and the settings pages (workflows/urls.py); data pages (datastore/urls.py).
    path("", include("workflows.urls")),
    path("", include("datastore.urls")),
    # Signed, expiring download links of files that create_file steps made (no login: the link is the key).
    path("", include("workflows.files_urls")),
]
