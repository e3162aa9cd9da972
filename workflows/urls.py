"""Routes of the workflow pages, and of the settings pages (config/settings_pages.py)."""
from django.urls import path, re_path

from config import settings_pages
from workflows.views import editing, listing, testing, versions

# Workflow names are ^[a-z][a-z0-9_]{0,62}$, so no name collides with the list's own sub-paths.
NAME = r"(?P<name>[a-z][a-z0-9_]{0,62})"


def workflow_path(suffix: str, view, name: str):
    return re_path(rf"^workflows/{NAME}/{suffix}$", view, name=name)


urlpatterns = [
    path("workflows/", listing.workflow_list, name="workflows-page"),
    path("workflows/export/", listing.workflows_export, name="workflows-export"),
    path("workflows/from-template/", listing.workflow_from_template, name="workflow-from-template"),
    workflow_path("", editing.workflow_edit, "workflow-edit"),
    workflow_path("check/", editing.workflow_check, "workflow-check"),
    workflow_path("steps/new/", editing.workflow_step_new, "workflow-step-new"),
    workflow_path("parameters/new/", editing.workflow_parameter_new, "workflow-parameter-new"),
    workflow_path("test-inputs/", editing.workflow_test_inputs, "workflow-test-inputs"),
    workflow_path("test-run/", testing.workflow_test_run, "workflow-test-run"),
    workflow_path("detect/", testing.workflow_detect, "workflow-detect"),
    re_path(rf"^workflows/{NAME}/runs/(?P<id>[0-9a-f-]{{36}})/$", testing.workflow_run, name="workflow-run"),
    workflow_path("export/", listing.workflow_export, "workflow-export"),
    workflow_path("duplicate/", listing.workflow_duplicate, "workflow-duplicate"),
    workflow_path("delete/", listing.workflow_delete_view, "workflow-delete"),
    workflow_path("enabled/", listing.workflow_enabled, "workflow-enabled"),
    workflow_path("versions/", versions.workflow_versions, "workflow-versions"),
    re_path(rf"^workflows/{NAME}/versions/(?P<number>[0-9]{{1,9}})/restore/$", versions.workflow_version_restore,
            name="workflow-version-restore"),
    # --- Settings ---------------------------------------------------------------------------------
    path("settings/", settings_pages.settings_home, name="settings-page"),
    path("settings/tokens/", settings_pages.token_list, name="settings-tokens"),
    re_path(r"^settings/tokens/(?P<id>[0-9]{1,18})/revoke/$", settings_pages.token_revoke_view, name="settings-token-revoke"),
    path("settings/secrets/", settings_pages.secret_list, name="settings-secrets"),
    path("settings/secrets/<str:secret>/delete/", settings_pages.secret_delete_view, name="settings-secret-delete"),
    path("settings/users/", settings_pages.user_list, name="settings-users"),
    re_path(r"^settings/users/(?P<id>[0-9]{1,18})/$", settings_pages.user_edit, name="settings-user"),
]
