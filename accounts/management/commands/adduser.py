import getpass
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import Role
from accounts.services import user_create


class Command(BaseCommand):
    help = (
        "Create a user with a role. The password is read from standard input when it is not a terminal "
        "(echo 'secret' | manage.py adduser ...), otherwise asked for twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--email", default="")
        parser.add_argument("--name", default="", help="Full name shown in reads and the audit trail.")

    def handle(self, *args, username, role, email, name, **options):
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The two passwords differ.")
        else:
            password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise CommandError("No password given on standard input.")
        try:
            user = user_create(username=username, password=password, role=role, email=email, full_name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {user.username} with role {user.get_role_display()}."))
