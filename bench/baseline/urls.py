"""URLs of the baseline project."""
from django.urls import path

from .views import HookApi, SyncApi

urlpatterns = [
    path("hook", HookApi.as_view()),
    path("sync", SyncApi.as_view()),
]
