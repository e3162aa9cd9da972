"""Signal receivers that feed the audit log: sign-ins, tokens, secrets, roles and publishes.

Model signals, not calls in each view, so that every path — pages, the REST API, the Django admin,
management commands — is recorded the same way.
"""
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from api_endpoints.models import ApiToken
from api_endpoints.permissions import user_role
from workflows.models import Secret, WorkflowVersion

from .context import current_request, role_changes
from .models import AuditAction
from .services import audit_record

User = get_user_model()
# Fields of a person whose change changes what they may do.
_ROLE_FIELDS = ("is_staff", "is_superuser", "is_active")


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender, request, user, **kwargs):
    audit_record(action=AuditAction.LOGIN, target=f"user {user.get_username()}", actor=user, request=request)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action=AuditAction.LOGOUT, target=f"user {user.get_username()}", actor=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    # Only the username: Django has already masked the password, and nothing else is kept.
    username = str(credentials.get("username", ""))[:150]
    audit_record(action=AuditAction.LOGIN_FAILED, target=f"user {username}", actor_name="", request=request)


# --- API tokens -----------------------------------------------------------------------------------


def _token_target(token: ApiToken) -> str:
    return f"token {token.name} (er_{token.prefix}_…)"


@receiver(pre_save, sender=ApiToken, dispatch_uid="audit_token_before")
def _token_before(sender, instance, **kwargs):
    previous = ApiToken.objects.filter(pk=instance.pk).values_list("revoked_at", flat=True).first() if instance.pk else None
    instance._audit_was_revoked = previous is not None


@receiver(post_save, sender=ApiToken, dispatch_uid="audit_token_saved")
def _token_saved(sender, instance, created, **kwargs):
    if created:
        audit_record(action=AuditAction.TOKEN_CREATED, target=_token_target(instance),
                     detail={"admin": instance.admin})
    elif instance.revoked_at is not None and not getattr(instance, "_audit_was_revoked", False):
        audit_record(action=AuditAction.TOKEN_REVOKED, target=_token_target(instance))


@receiver(post_delete, sender=ApiToken, dispatch_uid="audit_token_deleted")
def _token_deleted(sender, instance, **kwargs):
    audit_record(action=AuditAction.TOKEN_DELETED, target=_token_target(instance))


# --- Secrets --------------------------------------------------------------------------------------


@receiver(post_save, sender=Secret, dispatch_uid="audit_secret_saved")
def _secret_saved(sender, instance, created, **kwargs):
    # The name only: the value (and its ciphertext) never reaches the audit log.
    action = AuditAction.SECRET_CREATED if created else AuditAction.SECRET_CHANGED
    audit_record(action=action, target=f"secret {instance.name}")


@receiver(post_delete, sender=Secret, dispatch_uid="audit_secret_deleted")
def _secret_deleted(sender, instance, **kwargs):
    audit_record(action=AuditAction.SECRET_DELETED, target=f"secret {instance.name}")


# --- Publishes ------------------------------------------------------------------------------------


@receiver(post_save, sender=WorkflowVersion, dispatch_uid="audit_published")
def _published(sender, instance, created, **kwargs):
    if created:
        kwargs = {"actor": instance.published_by} if instance.published_by_id else {}
        audit_record(action=AuditAction.WORKFLOW_PUBLISHED,
                     target=f"workflow {instance.workflow.name} v{instance.number}", **kwargs)


# --- People and roles -----------------------------------------------------------------------------


@receiver(pre_save, sender=User, dispatch_uid="audit_user_before")
def _user_before(sender, instance, update_fields=None, **kwargs):
    if instance.pk is None or (update_fields is not None and not set(update_fields) & set(_ROLE_FIELDS)):
        instance._audit_before = None  # a new person, or a save that cannot change a role (last_login)
        return
    instance._audit_before = User.objects.filter(pk=instance.pk).values(*_ROLE_FIELDS).first()


@receiver(post_save, sender=User, dispatch_uid="audit_user_saved")
def _user_saved(sender, instance, created, **kwargs):
    target = f"user {instance.get_username()}"
    if created:
        audit_record(action=AuditAction.USER_CREATED, target=target,
                     detail={field: getattr(instance, field) for field in _ROLE_FIELDS})
        return
    before = getattr(instance, "_audit_before", None)
    if not before:
        return
    changes = {field: [before[field], getattr(instance, field)]
               for field in _ROLE_FIELDS if before[field] != getattr(instance, field)}
    if changes:
        audit_record(action=AuditAction.ROLE_CHANGED, target=target, detail=changes)


@receiver(post_delete, sender=User, dispatch_uid="audit_user_deleted")
def _user_deleted(sender, instance, **kwargs):
    audit_record(action=AuditAction.USER_DELETED, target=f"user {instance.get_username()}")


def _people(instance, reverse: bool, pk_set) -> list:
    """The people whose groups an m2m change touches, from either side of the relation."""
    if not reverse:
        return [instance]
    if pk_set is None:  # group.user_set.clear(): every member of the group
        return list(instance.user_set.all())
    return list(User.objects.filter(pk__in=pk_set))


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="audit_groups")
def _groups_changed(sender, instance, action, reverse, pk_set, **kwargs):
    # A role is a group (api_endpoints.permissions). The effective role before the first change and
    # after the transaction commits are compared, so that role_set's "remove all, add one" is one
    # event and a change back and forth is none.
    pending = role_changes.get()
    if pending is None:
        pending = {}
        role_changes.set(pending)
    if action in ("pre_add", "pre_remove", "pre_clear"):
        for person in _people(instance, reverse, pk_set):
            pending.setdefault(person.pk, (user_role(person), False))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    request = current_request.get()
    for pk, (before, scheduled) in list(pending.items()):
        if not scheduled:
            pending[pk] = (before, True)
            transaction.on_commit(lambda pk=pk, before=before: _role_settled(pk, before, pending, request))


def _role_settled(pk, before, pending: dict, request) -> None:
    """After the commit: one event if the person's effective role differs from the one before."""
    pending.pop(pk, None)
    person = User.objects.filter(pk=pk).first()
    if person is None:
        return
    after = user_role(person)
    if before != after:
        audit_record(action=AuditAction.ROLE_CHANGED, target=f"user {person.get_username()}",
                     detail={"role": [before, after]}, request=request)
