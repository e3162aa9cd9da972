"""Routes of the workflow endpoints and the management API; each answers with and without its slash."""
import re

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from config.exception_handler import error_body

from . import responses
from .apis import data, runs, scheduler, secrets, tokens, workflows
from .apis.schema import DocsPage, SchemaApi
from .routing import both, by_method
from .webhooks import WorkflowCallApi, WorkflowInitializeApi

SEGMENT = r"(?P<name>[^/]+)"


def _endpoints(prefix: str, style: str, draft: bool, name: str) -> list:
    call = WorkflowCallApi.as_view(style=style, draft=draft)
    initialize = WorkflowInitializeApi.as_view(style=style, draft=draft)
    return [
        re_path(rf"^{re.escape(prefix)}{SEGMENT}/initialize/?$", initialize, name=f"{name}-initialize"),
        re_path(rf"^{re.escape(prefix)}{SEGMENT}/?$", call, name=name),
    ]


@csrf_exempt
@login_not_required
def api_not_found(request, rest=""):
    """Unknown paths under /api/ answer in the API's JSON error shape, not with an HTML page."""
    return JsonResponse(error_body("not_found", f"No API route {request.path!r}."), status=404)


# The workflow endpoints: prefix, answer style, draft, URL name.
ENDPOINTS = [
    ("api/wf/", responses.PLAIN, False, "workflow-endpoint"),
    ("api/1.1/wf/", responses.BUBBLE, False, "workflow-endpoint-bubble"),
    ("version-test/api/wf/", responses.PLAIN, True, "workflow-endpoint-test"),
    ("version-test/api/1.1/wf/", responses.BUBBLE, True, "workflow-endpoint-test-bubble"),
]
# A workflow call's whole path (not /initialize, which a signed-in editor may use), for fullmatch as the
# resolver matches: config/wsgi.py serves these through settings.WEBHOOK_MIDDLEWARE.
CALL_PATH = re.compile(rf"/(?:{'|'.join(re.escape(prefix) for prefix, *_ in ENDPOINTS)}){SEGMENT}/?")

urlpatterns = [
    *(pattern for endpoint in ENDPOINTS for pattern in _endpoints(*endpoint)),
    # --- Management API ------------------------------------------------------------------------
    *both("api/workflows", by_method(GET=workflows.WorkflowListApi, POST=workflows.WorkflowCreateApi), "api-workflows"),
    *both("api/workflows/<str:name>", by_method(
        GET=workflows.WorkflowDetailApi, PUT=workflows.WorkflowReplaceApi, DELETE=workflows.WorkflowDeleteApi,
    ), "api-workflow"),
    *both("api/workflows/<str:name>/publish", by_method(POST=workflows.WorkflowPublishApi), "api-workflow-publish"),
    *both("api/workflows/<str:name>/test-run", by_method(POST=workflows.WorkflowTestRunApi), "api-workflow-test-run"),
    *both("api/workflows/<str:name>/versions", by_method(GET=workflows.WorkflowVersionListApi), "api-workflow-versions"),
    *both("api/runs", by_method(GET=runs.RunListApi), "api-runs"),
    *both("api/runs/<str:id>", by_method(GET=runs.RunDetailApi), "api-run"),
    *both("api/runs/<str:id>/cancel", by_method(POST=runs.RunCancelApi), "api-run-cancel"),
    *both("api/runs/<str:id>/rerun", by_method(POST=runs.RunRerunApi), "api-run-rerun"),
    *both("api/scheduled", by_method(GET=scheduler.ScheduledRunListApi, POST=scheduler.ScheduledRunCreateApi),
          "api-scheduled"),
    *both("api/scheduled/<str:id>", by_method(GET=scheduler.ScheduledRunDetailApi), "api-scheduled-run"),
    *both("api/scheduled/<str:id>/cancel", by_method(POST=scheduler.ScheduledRunCancelApi), "api-scheduled-cancel"),
    *both("api/scheduled/<str:id>/pause", by_method(POST=scheduler.ScheduledRunPauseApi), "api-scheduled-pause"),
    *both("api/scheduled/<str:id>/resume", by_method(POST=scheduler.ScheduledRunResumeApi), "api-scheduled-resume"),
    *both("api/recurring", by_method(GET=scheduler.RecurringEventListApi, POST=scheduler.RecurringEventCreateApi),
          "api-recurring"),
    *both("api/recurring/<str:id>", by_method(
        GET=scheduler.RecurringEventDetailApi, PATCH=scheduler.RecurringEventUpdateApi,
        DELETE=scheduler.RecurringEventDeleteApi,
    ), "api-recurring-event"),
    *both("api/datatypes", by_method(GET=data.DataTypeListApi, POST=data.DataTypeCreateApi), "api-datatypes"),
    *both("api/datatypes/<str:name>", by_method(
        GET=data.DataTypeDetailApi, PUT=data.DataTypeReplaceApi, DELETE=data.DataTypeDeleteApi,
    ), "api-datatype"),
    *both("api/records/<str:type>", by_method(GET=data.RecordListApi, POST=data.RecordCreateApi), "api-records"),
    *both("api/records/<str:type>/<str:id>", by_method(
        GET=data.RecordDetailApi, PATCH=data.RecordUpdateApi, DELETE=data.RecordDeleteApi,
    ), "api-record"),
    *both("api/tokens", by_method(GET=tokens.TokenListApi, POST=tokens.TokenCreateApi), "api-tokens"),
    *both("api/tokens/<str:id>", by_method(GET=tokens.TokenDetailApi, DELETE=tokens.TokenRevokeApi), "api-token"),
    *both("api/secrets", by_method(GET=secrets.SecretListApi, POST=secrets.SecretCreateApi), "api-secrets"),
    *both("api/secrets/<str:name>", by_method(
        GET=secrets.SecretDetailApi, PUT=secrets.SecretSetApi, DELETE=secrets.SecretDeleteApi,
    ), "api-secret"),
    *both("api/schema", SchemaApi.as_view(), "api-schema"),
    *both("api/docs", DocsPage.as_view(), "api-docs"),
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
]
