"""What serving announces. The clinical side listens (cases.studies.receivers moves the study along), so serving
never imports cases."""

from django.dispatch import Signal

# Sent with job= and previous= (the status it had) inside the transaction that changed the job's status.
job_status_changed = Signal()
