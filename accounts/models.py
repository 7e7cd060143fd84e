from django.contrib.auth.models import AbstractUser
from django.db import models

from accounts.roles import Role

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
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username
