"""manage.py rotate_secrets_key: re-encrypt every Secret with the newest ENGINE_ROOM_SECRETS_KEY."""
from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workflows.crypto import fernet
from workflows.models import Secret


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret with the first key of ENGINE_ROOM_SECRETS_KEY (MultiFernet.rotate), so "
        "that older keys can then be removed from the list. Put the new key first, restart the "
        "processes, run this, then drop the old key. Values are never printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true",
                            help="Only report which secrets the newest key does not decrypt yet; change nothing.")

    def handle(self, *args, check=False, **options):
        keys = settings.ENGINE_ROOM_SECRETS_KEY
        if not keys:
            raise CommandError("ENGINE_ROOM_SECRETS_KEY is empty.")
        newest = Fernet(keys[0].encode() if isinstance(keys[0], str) else keys[0])
        rotated, current, broken = 0, 0, []
        for secret_id in Secret.objects.order_by("name").values_list("id", flat=True):
            with transaction.atomic():
                # Locked one at a time: a secret saved meanwhile is re-read, never overwritten with
                # an older value re-encrypted.
                secret = Secret.objects.select_for_update().only("name", "ciphertext").filter(id=secret_id).first()
                if secret is None:
                    continue
                token = bytes(secret.ciphertext)
                try:
                    newest.decrypt(token)
                    current += 1
                    continue
                except InvalidToken:
                    pass
                try:
                    fresh = fernet().rotate(token)
                except InvalidToken:
                    broken.append(secret.name)
                    continue
                if not check:
                    # .update(): a re-encryption is not a change of the secret (no "secret changed"
                    # audit event per row; the command records one event for the rotation).
                    Secret.objects.filter(id=secret.id).update(ciphertext=fresh)
                rotated += 1
        verb = "need re-encrypting" if check else "re-encrypted"
        self.stdout.write(f"{rotated} secret(s) {verb}, {current} already on the newest key, "
                          f"{len(broken)} undecryptable with any configured key.")
        if not check and rotated and apps.is_installed("audit"):
            # Imported here: the audit app sits above workflows and is optional to it.
            from audit.models import AuditAction
            from audit.services import audit_record

            audit_record(action=AuditAction.SECRETS_KEY_ROTATED, target=f"{rotated} secret(s)",
                         actor_name="command:rotate_secrets_key", detail={"keys_configured": len(keys)})
        if broken:
            raise CommandError(
                "These secrets decrypt with none of the configured keys (was a key removed too early?): "
                + ", ".join(broken)
            )
