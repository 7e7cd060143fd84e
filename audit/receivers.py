"""Sign-ins, failed and refused sign-ins, lockouts, sign-outs, API tokens, passwords and user/role changes go into
the audit trail. accounts announces them (Django's auth signals, accounts.signals, model signals of
accounts.models.User); this app records them."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts import signals as accounts_signals
from accounts.addresses import client_address
from accounts.models import User
from audit.services import audit_record


def _address(request) -> str | None:
    return client_address(request) if request is not None else None


def _username_tried(value) -> str:
    return str(value or "")[:150]


def _account_named(username: str) -> User | None:
    """The account a sign-in attempt named, if there is one (the row's object: the auditor can follow it)."""
    return User.objects.filter(username=username).first() if username else None


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    audit_record(action="auth.login", actor=user, obj=user, ip_address=_address(request))


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action="auth.logout", actor=user, obj=user, ip_address=_address(request))


# Nobody is signed in during a failed sign-in, so these rows have no actor ("system" on the auditor's page); the
# name that was typed is in the details and, when such an account exists, it is the row's object.
@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # The password is never recorded; Django already replaces it in `credentials`.
    username = _username_tried(credentials.get("username"))
    audit_record(
        action="auth.login_failed",
        obj=_account_named(username),
        details={"username": username, "locked_out": False},
        ip_address=_address(request),
    )


@receiver(accounts_signals.sign_in_refused)
def _sign_in_refused(sender, username, address, **kwargs):
    username = _username_tried(username)
    audit_record(
        action="auth.login_failed",
        obj=_account_named(username),
        details={"username": username, "locked_out": True},
        ip_address=address,
    )


@receiver(accounts_signals.sign_in_locked)
def _sign_in_locked(sender, username, address, **kwargs):
    username = _username_tried(username)
    audit_record(
        action="auth.locked_out", obj=_account_named(username), details={"username": username}, ip_address=address
    )


@receiver(accounts_signals.sign_in_lock_lifted)
def _sign_in_lock_lifted(sender, by, username, address, attempts, **kwargs):
    username = _username_tried(username)
    audit_record(
        action="auth.lockout_lifted",
        actor=by,
        obj=_account_named(username),
        details={"username": username, "address": address, "failures": attempts},
    )


@receiver(accounts_signals.token_issued)
def _token_issued(sender, user, address, token_key, expiry, **kwargs):
    audit_record(
        action="auth.token_issued",
        actor=user,
        obj=user,
        details={"token": token_key, "expiry": expiry},
        ip_address=address,
    )


@receiver(accounts_signals.token_revoked)
def _token_revoked(sender, user, by, token_key, reason, address=None, **kwargs):
    # by=None: revoked by the system (a password change); the actor is then whoever is signed in, if anyone.
    audit_record(
        action="auth.token_revoked",
        actor=by,
        obj=user,
        details={"token": token_key, "reason": reason, "owner": user.get_username()},
        ip_address=address,
    )


@receiver(accounts_signals.password_changed)
def _password_changed(sender, user, **kwargs):
    audit_record(action="user.password_changed", obj=user, details={"username": user.get_username()})


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
