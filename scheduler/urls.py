"""Routes of the scheduler pages."""
from django.urls import path

from scheduler import views

urlpatterns = [
    path("scheduler/", views.scheduled_list, name="scheduler-page"),
    path("scheduler/scheduled/change/", views.scheduled_change, name="scheduler-scheduled-change"),
    path("scheduler/recurring/", views.recurring_list, name="scheduler-recurring"),
    path("scheduler/recurring/new/", views.recurring_create, name="scheduler-recurring-new"),
    path("scheduler/recurring/<uuid:id>/", views.recurring_edit, name="scheduler-recurring-edit"),
    path("scheduler/recurring/<uuid:id>/change/", views.recurring_change, name="scheduler-recurring-change"),
    path("scheduler/batches/", views.batch_list, name="scheduler-batches"),
    path("scheduler/batches/progress/", views.batch_progress, name="scheduler-batches-progress"),
    path("scheduler/batches/<uuid:id>/cancel/", views.batch_cancel, name="scheduler-batch-cancel"),
]
