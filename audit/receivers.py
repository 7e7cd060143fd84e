"""Sign-ins, failed sign-ins, sign-outs, API tokens and user/role changes go into the audit trail. accounts announces
them (Django's auth signals, accounts.signals, model signals of accounts.models.User); this app records them."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts.models import User
from accounts.signals import token_issued
from accounts.throttling import client_address
from audit.services import audit_record


def _address(request) -> str | None:
    return client_address(request) if request is not None else None


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    audit_record(action="auth.login", actor=user, obj=user, ip_address=_address(request))


@receiver(token_issued)
def _token_issued(sender, user, address, **kwargs):
    audit_record(action="auth.token_issued", actor=user, obj=user, ip_address=address)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action="auth.logout", actor=user, obj=user, ip_address=_address(request))


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # The password is never recorded; Django already replaces it in `credentials`.
    audit_record(
        action="auth.login_failed",
        details={"username": str(credentials.get("username", ""))[:150]},
        ip_address=_address(request),
    )


@receiver(pre_save, sender=User)
def _remember_previous(sender, instance: User, **kwargs):
    if instance.pk:
        previous = User.objects.filter(pk=instance.pk).values("role", "is_active", "is_staff").first()
        instance._audit_previous = previous
    else:
        instance._audit_previous = None


@receiver(post_save, sender=User)
def _user_saved(sender, instance: User, created: bool, update_fields=None, **kwargs):
    if created:
        audit_record(
            action="user.created", obj=instance, details={"username": instance.username, "role": instance.role}
        )
        return
    previous = getattr(instance, "_audit_previous", None) or {}
    changes = {
        field: {"from": previous.get(field), "to": getattr(instance, field)}
        for field in ("role", "is_active", "is_staff")
        if field in previous and previous[field] != getattr(instance, field)
    }
    if changes:
        audit_record(action="user.changed", obj=instance, details={"username": instance.username, **changes})
