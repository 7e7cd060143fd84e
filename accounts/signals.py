"""What accounts announces. The audit app records it (audit.receivers); accounts itself never imports audit."""

from django.dispatch import Signal

# Sent with user=, address= when an API token is handed out.
token_issued = Signal()
