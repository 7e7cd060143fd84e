"""What accounts announces. The audit app records it (audit.receivers); accounts itself never imports audit.

Every signal carries `address` (the client's IP address, or None outside a request).
"""

from django.dispatch import Signal

# user=, address=, token_key=, expiry=: an API token was handed out.
token_issued = Signal()

# user= (the token's owner), by= (who revoked it: the owner, an administrator, or None for the system),
# token_key=, reason= ("revoked by its owner", "revoked by an administrator", "password changed"), address=.
token_revoked = Signal()

# username= (as typed), address=: a sign-in refused during a lockout, without checking the password. (Failures of
# the password check itself are Django's user_login_failed.)
sign_in_refused = Signal()

# username=, address=: too many failures; sign-ins for this name from this address are now refused for a while.
sign_in_locked = Signal()

# by=, username=, address=, attempts=: an administrator lifted a lockout.
sign_in_lock_lifted = Signal()

# user=: the user's password was set (by themselves, an administrator or a command); sessions and tokens end.
password_changed = Signal()
