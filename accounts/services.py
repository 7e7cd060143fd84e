from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from accounts.models import User
from accounts.roles import Role


@transaction.atomic
def user_create(*, username: str, password: str, role: str, email: str = "", full_name: str = "") -> User:
    """Create an active user with a role. The password is validated with the project's password rules."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}.")
    first, _, last = full_name.partition(" ")
    user = User(username=username, email=email, role=role, first_name=first, last_name=last)
    validate_password(password, user)
    user.set_password(password)
    # Nobody is a superuser; admin-site access (is_staff) follows the role in User.save().
    user.full_clean()
    user.save()
    return user
