"""URL routes: pages, the workflow endpoints, the management API, operations."""
from django.contrib import admin
from django.urls import include, path, re_path

from config import health, metrics
from config.login import ThrottledLoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    # --- Operations (machine endpoints; docs/security.md says who may call them) -------------
    # /healthz is public and minimal; /metrics needs the metrics token or an admin token.
    re_path(r"^healthz/?$", health.healthz, name="healthz"),
    re_path(r"^metrics/?$", metrics.metrics, name="metrics"),
    # The login page with sign-in throttling; listed before the auth URLs so that it takes "login".
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
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
    # The audit log page (admins), under the settings section.
    path("", include("audit.urls")),
    # Signed, expiring download links of files that create_file steps made (no login: the link is the key).
    path("", include("workflows.files_urls")),
]
