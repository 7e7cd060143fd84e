from django.contrib.auth.models import AbstractUser
from django.db import models

from accounts.roles import Role


class User(AbstractUser):
    role = models.CharField(max_length=32, choices=Role.choices)

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username
