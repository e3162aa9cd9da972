"""The real stack for the template tests: a worker (and beat), the app on a live server, SMTP on loopback."""
import email
import json
import time
from email import policy
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from api_endpoints.services import token_create
from logs.models import RunStatus, WorkflowRun
from tests.integration.conftest import _empty_test_queues, processes, wait_until  # noqa: F401 - fixtures
from workflows.templates_library import BUNDLE_DIR, template_load

# Short ticks, as the scheduler's own integration tests use: dispatch and recount every second.
FAST = {
    "ENGINE_ROOM_DISPATCH_SECONDS": "1",
    "ENGINE_ROOM_BATCH_RECOUNT_SECONDS": "1",
    "ENGINE_ROOM_RECURRING_MISSED_AFTER_SECONDS": "30",
    "ENGINE_ROOM_RECURRING_FALLBACK_SECONDS": "1",
}
FINISHED = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.TERMINATED, RunStatus.CANCELLED}


class Stack:
    """One test's running Engine Room: import a template, start the processes, call it, read the mail."""

    def __init__(self, *, running, smtp, live_server, media: Path, token: str, tmp_path: Path):
        self.processes = running
        self.smtp = smtp
        self.base = live_server.url
        self.media = media
        self.token = token
        self.tmp_path = tmp_path

    # --- setting up -----------------------------------------------------------------------
    def install(self, slug: str, change=None) -> dict:
        """`manage.py workflows import` the template's file, or a copy that `change(bundle)` adapted first."""
        path = BUNDLE_DIR / f"{slug}.json"
        bundle = template_load(slug)
        if change is not None:
            change(bundle)
            path = self.tmp_path / f"{slug}.json"
            path.write_text(json.dumps(bundle))
        call_command("workflows", "import", str(path), stdout=None)
        return bundle

    def start(self, *, beat: bool = False) -> None:
        env = {
            **FAST,
            "EMAIL_URL": f"smtp://127.0.0.1:{self.smtp.port}",
            "ENGINE_ROOM_MEDIA_ROOT": str(self.media),
            "ENGINE_ROOM_BASE_URL": self.base,
        }
        self.processes.worker(concurrency=2, env=env)
        if beat:
            self.processes.beat(env=env)

    # --- using it -------------------------------------------------------------------------
    def call(self, name: str, body: dict, **headers) -> requests.Response:
        """POST to the workflow's endpoint with the admin token, as the app's backend would."""
        return requests.post(f"{self.base}/api/wf/{name}", json=body, timeout=60,
                             headers={"Authorization": f"Bearer {self.token}", **headers})

    def run_of(self, answer: requests.Response, timeout: float = 60) -> WorkflowRun:
        """The run a call started, once it has finished."""
        run_id = answer.json().get("run_id") or answer.json()["response"]["run_id"]
        return wait_until(lambda: WorkflowRun.objects.filter(id=run_id, status__in=FINISHED).first(),
                          timeout=timeout, message=f"run {run_id} to finish\n{self.processes.logs()}")

    def mail(self, count: int, timeout: float = 60) -> list[email.message.EmailMessage]:
        """The first `count` messages the SMTP server received, parsed, once they are there."""
        wait_until(lambda: len(self.smtp.envelopes) >= count, timeout=timeout,
                   message=f"{count} email(s), got {len(self.smtp.envelopes)}\n{self.processes.logs()}")
        return [email.message_from_bytes(envelope.content, policy=policy.default)
                for envelope in self.smtp.envelopes[:count]]

    def quiet(self, seconds: float) -> None:
        """Let the processes go on for a while (to show that nothing more happens)."""
        time.sleep(seconds)


@pytest.fixture
def stack(processes, smtp_server, live_server, settings, tmp_path) -> Stack:  # noqa: F811 - the fixture above
    media = tmp_path / "media"
    media.mkdir()
    # The live server (this process) serves download links from the directory the worker writes to.
    settings.MEDIA_ROOT = media
    settings.ENGINE_ROOM_BASE_URL = live_server.url
    return Stack(running=processes, smtp=smtp_server, live_server=live_server, media=media,
                 token=token_create(name="templates-admin").value, tmp_path=tmp_path)


def body_text(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()
