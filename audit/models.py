"""AuditEvent: one security-relevant change or sign-in, with who did it and from where."""
from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Sign-in failed"
    LOGIN_THROTTLED = "login_throttled", "Sign-in refused (too many failures)"
    LOGOUT = "logout", "Signed out"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    TOKEN_DELETED = "token_deleted", "API token deleted"
    SECRET_CREATED = "secret_created", "Secret created"
    SECRET_CHANGED = "secret_changed", "Secret changed"
    SECRET_DELETED = "secret_deleted", "Secret deleted"
    SECRETS_KEY_ROTATED = "secrets_key_rotated", "Secrets re-encrypted with the newest key"
    ROLE_CHANGED = "role_changed", "Role changed"
    USER_CREATED = "user_created", "Person added"
    USER_DELETED = "user_deleted", "Person deleted"
    WORKFLOW_PUBLISHED = "workflow_published", "Workflow published"


class AuditEvent(models.Model):
    """A row per event; written by audit.services.audit_record only, never edited (the log is evidence)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices, db_index=True)
    # The person who acted (kept as a name too: the user row may be deleted later), or a token or
    # command ("token:ci", "command:rotate_secrets_key"); empty for anonymous sign-in attempts.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    # What was acted on: "token er_ab12cd34_…", "secret STRIPE_KEY", "user ada", "workflow billing v3".
    target = models.CharField(max_length=200, blank=True, default="")
    # Details that help an investigation; never a secret value, token value or password.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["action", "-at"], name="audit_action_at")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.target} by {self.actor_name or '—'}"
