"""manage.py bootstrap: first-run setup for `make run` — an admin account and the demo workspace, once."""
import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from workflows.models import Secret, Workflow
from workflows.services import bundle_import, secret_set

DEMO_BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "demo.json"


class Command(BaseCommand):
    help = "Create the admin account and load the demo workspace on first run; say which broker is used."

    def handle(self, *args, **options):
        self._admin()
        self._demo()
        broker = settings.CELERY_BROKER_URL
        if broker.startswith("filesystem://"):
            self.stdout.write(f"Broker: no Redis at {settings.REDIS_URL}; using the local filesystem broker "
                              f"under {settings.VAR_DIR / 'broker'}.")
        else:
            self.stdout.write(f"Broker: Redis at {broker}.")
        self.stdout.write(f"Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}.")

    def _admin(self):
        user_model = get_user_model()
        password_file = settings.VAR_DIR / "admin-password.txt"
        if user_model.objects.filter(is_superuser=True).exists():
            if password_file.exists():
                self.stdout.write(f"Admin account: admin, password in {password_file}")
            return
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser("admin", "admin@example.com", password)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        self.stdout.write(f"Created the admin account: admin, password in {password_file}")

    def _demo(self):
        if Workflow.objects.exists():
            return
        if not Secret.objects.filter(name="STRIPE_WEBHOOK_SECRET").exists():
            # A placeholder signing key, so the Stripe demo validates; replace it with your endpoint's.
            secret_set(name="STRIPE_WEBHOOK_SECRET", value="whsec_" + secrets.token_urlsafe(24),
                       description="Stripe endpoint signing secret (demo placeholder)")
        imported = bundle_import(document=json.loads(DEMO_BUNDLE.read_text()))
        self.stdout.write(f"Loaded the demo workspace: {', '.join(w.name for w in imported)}.")
