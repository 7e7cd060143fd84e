from axes.models import AccessAttempt
from django.contrib.auth.models import AbstractUser
from django.db import models
from knox.models import AuthToken

from accounts.roles import Role
from accounts.signals import password_changed

# Roles that use the Django admin: administrators (users, models) and auditors (the read-only audit trail). What
# they may do there is still decided by the role matrix (accounts.permissions.CapabilityAdminMixin).
ADMIN_SITE_ROLES = (Role.ADMIN, Role.AUDITOR)


class User(AbstractUser):
    role = models.CharField(max_length=32, choices=Role.choices)

    def save(self, *args, **kwargs):
        # Admin-site access follows the role, so a role change through the admin or a command cannot leave it stale.
        self.is_staff = self.role in ADMIN_SITE_ROLES
        if kwargs.get("update_fields") is not None and "role" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "is_staff"}
        # set_password() keeps the new raw password in _password until the next save (Django's own
        # password_changed validators hook uses it the same way): an existing user's password changed here.
        new_password = self.pk is not None and self._password is not None
        super().save(*args, **kwargs)
        if new_password:
            password_changed.send(sender=User, user=self)

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username


class ApiToken(AuthToken):
    """knox's API token, shown to administrators under Accounts (accounts.admin)."""

    class Meta:
        proxy = True
        verbose_name = "API token"


class FailedSignIn(AccessAttempt):
    """django-axes' failure record (one per name, address and browser), shown to administrators under Accounts,
    where deleting it lifts the lockout it caused (accounts.admin)."""

    class Meta:
        proxy = True
        verbose_name = "failed sign-in"
