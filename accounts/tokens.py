"""API tokens (django-rest-knox): issued at each sign-in through the API, stored only as a hash, expiring after
API_TOKEN_LIFETIME_SECONDS, revoked by their owner (API) or an administrator (admin), and all revoked when the
owner's password changes. Each issue and revocation is announced (accounts.signals) and so audited."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver
from knox.models import AuthToken

from accounts.models import User
from accounts.signals import password_changed, token_issued, token_revoked

REVOKED_BY_OWNER = "revoked by its owner"
REVOKED_BY_ADMIN = "revoked by an administrator"
REVOKED_PASSWORD_CHANGED = "password changed"


@transaction.atomic
def token_issue(*, user: User, address: str | None) -> tuple[AuthToken, str]:
    """A new token for the user (the lifetime is knox's TOKEN_TTL, from API_TOKEN_LIFETIME_SECONDS). Returns the
    row and the token itself, which exists nowhere else: only its hash is stored."""
    instance, token = AuthToken.objects.create(user=user)
    token_issued.send(
        sender=token_issue, user=user, address=address, token_key=instance.token_key, expiry=instance.expiry
    )
    return instance, token


@transaction.atomic
def token_revoke(*, token: AuthToken, by: User | None, reason: str, address: str | None = None) -> None:
    owner, token_key = token.user, token.token_key
    token.delete()
    token_revoked.send(sender=token_revoke, user=owner, by=by, token_key=token_key, reason=reason, address=address)


@transaction.atomic
def tokens_revoke_all(*, user: User, by: User | None, reason: str, address: str | None = None) -> int:
    tokens = list(AuthToken.objects.select_for_update().filter(user=user))
    for token in tokens:
        token_revoke(token=token, by=by, reason=reason, address=address)
    return len(tokens)


@receiver(password_changed, dispatch_uid="accounts.tokens.rotate_on_password_change")
def _revoke_on_password_change(sender, user: User, **kwargs) -> None:
    # A new password ends every token issued under the old one, as Django ends the sessions (their auth hash).
    tokens_revoke_all(user=user, by=None, reason=REVOKED_PASSWORD_CHANGED)
