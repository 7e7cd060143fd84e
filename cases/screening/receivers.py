"""The appointment follows its images (cases.studies.signals.study_images_added, sent in the transaction that links
them): the first image of an appointment not yet under way puts it in progress (a modality that sends no MPPS), and
a completed MPPS that waited for its images decides the outcome once they are here."""

from django.dispatch import receiver

from cases.models import Appointment, AppointmentStatusChange
from cases.screening.appointments import appointment_transition
from cases.screening.mpps import appointment_outcome_settle
from cases.studies.signals import study_images_added


@receiver(study_images_added)
def _images_linked(sender, study, images, **kwargs):
    appointment = Appointment.objects.select_for_update().get(pk=study.appointment_id)
    if appointment.status in (Appointment.Status.SCHEDULED, Appointment.Status.CHECKED_IN):
        appointment_transition(
            appointment_id=appointment.pk,
            to=Appointment.Status.IN_PROGRESS,
            source=AppointmentStatusChange.Source.IMAGES,
            source_detail=f"Image {images[0].sop_instance_uid or images[0].pk} received",
            reason="Images received",
        )
    appointment_outcome_settle(appointment_id=appointment.pk)
