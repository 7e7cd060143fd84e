"""What the studies package announces to the packages above it (which it does not import)."""

from django.dispatch import Signal

# Images were added to a study that belongs to an appointment; sent inside the transaction that adds them, with
# `study` and `images`. cases.screening.receivers moves the appointment along (first image: in progress; a
# completed MPPS waiting for its images: screened or partially screened).
study_images_added = Signal()
