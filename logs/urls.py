"""Routes of the logs pages; the dashboard is the home page."""
from django.urls import path, re_path

from logs import views

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("logs/", views.run_list, name="logs-page"),
    path("logs/rows/", views.run_list_rows, name="logs-run-rows"),
    re_path(r"^logs/export\.(?P<format>csv|jsonl)$", views.run_export, name="logs-export"),
    path("logs/events/", views.event_list, name="logs-events"),
    path("logs/metrics.json", views.dashboard_data, name="logs-metrics"),
    path("logs/runs/<uuid:id>/", views.run_detail, name="logs-run"),
    path("logs/runs/<uuid:id>/live/", views.run_detail_live, name="logs-run-live"),
    path("logs/runs/<uuid:id>/cancel/", views.run_cancel, name="logs-run-cancel"),
    path("logs/runs/<uuid:id>/rerun/", views.run_rerun, name="logs-run-rerun"),
]
