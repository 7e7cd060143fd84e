import getpass
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from accounts.roles import Role
from accounts.services import user_create

HINT = """No accounts yet. Create one with, for example:
  .venv/bin/python manage.py adduser alice --role admin           (asks for a password)
  .venv/bin/python manage.py adduser bob --role radiologist
Roles: {roles}."""


class Command(BaseCommand):
    help = (
        "The first start's account step (run.sh): nothing when an account exists; otherwise, on a terminal, asks "
        "for the first account (you choose the password; none is preset), and without one says how to create it."
    )

    def handle(self, *args, **options):
        if get_user_model().objects.exists():
            return
        roles = ", ".join(Role.values)
        if not sys.stdin.isatty():
            self.stdout.write(HINT.format(roles=roles))
            return
        self.stdout.write("No accounts yet. Create the first one (you choose the password; none is preset).")
        for _ in range(3):
            username = input("Username: ").strip()
            role = input(f"Role [{roles}] (default radiologist): ").strip() or Role.RADIOLOGIST
            if role not in Role.values:
                self.stderr.write(f"Unknown role {role!r}.")
                continue
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                self.stderr.write("The two passwords differ.")
                continue
            try:
                user = user_create(username=username, password=password, role=role)
            except (ValidationError, ValueError) as exc:
                messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
                self.stderr.write("; ".join(messages))
                continue
            self.stdout.write(self.style.SUCCESS(f"Created {user.username} with role {user.get_role_display()}."))
            self.stdout.write("More accounts: .venv/bin/python manage.py adduser NAME --role ROLE.")
            return
        self.stdout.write(HINT.format(roles=roles))
