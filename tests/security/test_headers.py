"""Security headers and the Content-Security-Policy on every kind of response, the templates kept
inside the policy, and `manage.py check --deploy` clean with the production settings."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.test import Client

from .conftest import bearer

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split("; ")}


@pytest.fixture
def admin_client(make_user):
    client = Client()
    client.force_login(make_user("admin", username="boss"))
    return client


@pytest.mark.parametrize("path", ["/", "/workflows/", "/logs/", "/settings/", "/scheduler/", "/data/",
                                  "/settings/audit/", "/api/docs/"])
def test_pages_carry_the_security_headers_and_a_strict_policy(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    # Swagger UI's page opens OAuth pop-ups, so drf-spectacular relaxes COOP there on purpose.
    assert response["Cross-Origin-Opener-Policy"] == ("unsafe-none" if path == "/api/docs/" else "same-origin")
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"]
    assert directives["form-action"] == ["'self'"] and directives["base-uri"] == ["'self'"]
    for directive in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in directives[directive] and "'unsafe-eval'" not in directives[directive]
        assert not any(source.startswith(("http:", "https:", "*")) for source in directives[directive]), \
            "scripts and styles come from /static/ only, never a CDN"


def test_login_page_api_and_errors_carry_them_too(admin_token):
    for response in (Client().get("/accounts/login/"), Client().get("/api/workflows/", **bearer(admin_token)),
                     Client().post("/api/wf/nothing"), Client().get("/healthz")):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in response["Content-Security-Policy"]


def test_the_swagger_page_runs_its_inline_script_by_the_responses_nonce(admin_client):
    response = admin_client.get("/api/docs/")
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    inline = re.findall(rb"<(script|style)( nonce=\"([^\"]*)\")?>", response.content)
    assert inline and all(found_nonce.decode() == nonce for _, _, found_nonce in inline)
    assert admin_client.get("/api/docs/")["Content-Security-Policy"] != response["Content-Security-Policy"]


def test_templates_stay_inside_the_policy():
    """No inline script or style block without a nonce, no javascript: URL, and every inline event
    handler exactly one the policy allows by hash (ENGINE_ROOM_CSP_INLINE_HANDLERS)."""
    problems = []
    allowed = set(settings.ENGINE_ROOM_CSP_INLINE_HANDLERS)
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        where = path.relative_to(TEMPLATES)
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and "nonce=" not in tag and 'type="application/json"' not in tag:
                problems.append(f"{where}: inline {tag}")
        for tag in re.findall(r"<style\b[^>]*>", text):
            if "nonce=" not in tag:
                problems.append(f"{where}: inline {tag}")
        if "javascript:" in text:
            problems.append(f"{where}: javascript: URL")
        for handler in re.findall(r"\son[a-z]+=\"([^\"]*)\"", text):
            if handler not in allowed:
                problems.append(f"{where}: inline handler {handler!r} is not in ENGINE_ROOM_CSP_INLINE_HANDLERS")
    assert not problems, "\n".join(problems)


def test_static_scripts_need_no_eval():
    for path in (ROOT / "static" / "js").glob("*.js"):
        text = path.read_text()
        assert not re.search(r"\beval\(|new Function\(|setTimeout\(\s*['\"]", text), path


def test_check_deploy_is_clean_with_the_production_settings(database_url, tmp_path):
    env = {
        "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", "ENGINE_ROOM_ENV": "production",
        "SECRET_KEY": Fernet.generate_key().decode() + Fernet.generate_key().decode(),
        "ENGINE_ROOM_SECRETS_KEY": Fernet.generate_key().decode(), "ALLOWED_HOSTS": "er.example.com",
        "DATABASE_URL": database_url, "REDIS_URL": settings.REDIS_URL, "ENGINE_ROOM_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    shown = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings as s; "
         "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert shown.stdout.split() == ["False", "True", "True", "True", "31536000"], shown.stderr
