"""The AI's breast density estimate of a study: the active density model (kind=density in the registry) run on the
study's views once the study is stable, recorded as a StudyDensity row (estimated, or why not), audited.

Asked for through the outbox when an analysis of the study ends (cases.studies.receivers), like the study's DICOM
report: due DICOM_STUDY_STABLE_SECONDS after the newest image; a later image makes a new estimate. The estimate reads
each view's working image (ingestion's 16-bit decode at the working resolution, which the density models accept);
a missing view is stood in for by the same breast's other view (inference.density's substitute_missing), and a
study without a breast's views is recorded as not estimable, with why. Shown only where the AI may be shown
(cases.ai_visibility), always as the model's estimate: the woman's letter uses the readers' density only
(cases.reading.density).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import audit_record
from cases.ai_visibility import ai_access
from cases.models import Image, Study, StudyDensity
from core import storage
from core.outbox import outbox_enqueue
from imaging.working_image import working_image_pixels
from inference.models import ModelVersion

logger = logging.getLogger(__name__)
TASK = "cases.ai_density_estimate"  # by name: cases.tasks.ai_density_estimate calls into this module
VIEWS = ("CC", "MLO")


def active_density_model() -> ModelVersion | None:
    return ModelVersion.objects.density().active().first()


def ai_density_request(*, study_id: int) -> None:
    """In the caller's transaction: estimate the study's density once it is stable (nothing without an active
    density model)."""
    if active_density_model() is None:
        return
    newest = Image.objects.filter(study_id=study_id).aggregate(t=Max("created_at"))["t"]
    if newest is None:
        return
    outbox_enqueue(
        key=f"ai-density:{study_id}",
        task=TASK,
        kwargs={"study_id": study_id},
        description=f"AI breast density estimate of study {study_id}",
        subject=f"study:{study_id}",
        send_after=max(newest + timedelta(seconds=settings.DICOM_STUDY_STABLE_SECONDS), timezone.now()),
    )


def ai_density_estimate(*, study_id: int) -> StudyDensity | None:
    """Estimate (in the worker). Idempotent: the same images with the same model are estimated once."""
    from inference.density import DensityInputError, density_model_from_file
    from inference.serving.spec import model_file_path

    version = active_density_model()
    if version is None:
        return None
    study = Study.objects.get(pk=study_id)
    images = latest_views(study)
    if not images:
        return None
    newest = max(image.created_at for image in Image.objects.filter(study=study))
    if newest + timedelta(seconds=settings.DICOM_STUDY_STABLE_SECONDS) > timezone.now():
        ai_density_request(study_id=study_id)  # not stable yet: asked again for when it will be
        return None
    key = content_key(images)
    done = StudyDensity.objects.filter(study=study, model_version=version, content_key=key).first()
    if done is not None:
        return done
    try:
        views = {f"{image.laterality}-{image.view}": working_image_pixels(storage.read(image.working_image))
                 for image in images.values()}  # fmt: skip
        result = density_model_from_file(model_file_path(version), version.card).predict(views, substitute_missing=True)
    except DensityInputError as exc:
        values = {"status": StudyDensity.Status.FAILED, "error_message": exc.reason}
    except (OSError, ValueError) as exc:
        values = {"status": StudyDensity.Status.FAILED, "error_message": f"The views could not be read: {exc}"}
    else:
        values = {"status": StudyDensity.Status.SUCCEEDED, "scale": result.scale, "category": result.category,
                  "result": result.as_dict()}  # fmt: skip
    with transaction.atomic():
        estimate, created = StudyDensity.objects.get_or_create(
            study=study, model_version=version, content_key=key, defaults=values
        )
        if created:
            audit_record(
                action="ai.density_estimated", obj=estimate, study_id=study.pk,
                details={"model": version.name, "status": estimate.status, "category": estimate.category,
                         "images": sorted(image.pk for image in images.values()), "error": estimate.error_message},
            )  # fmt: skip
    logger.info("Study %s density: %s %s", study.pk, estimate.status, estimate.category or estimate.error_message)
    return estimate


def latest_views(study: Study) -> dict[tuple[str, str], Image]:
    """The study's newest image of each CC and MLO view of each breast."""
    found: dict[tuple[str, str], Image] = {}
    for image in Image.objects.filter(study=study, view__in=VIEWS).order_by("created_at", "pk"):
        found[(image.laterality, image.view)] = image
    return found


def content_key(images: dict[tuple[str, str], Image]) -> str:
    return hashlib.sha256(",".join(str(pk) for pk in sorted(x.pk for x in images.values())).encode()).hexdigest()


def study_ai_density(*, user, study: Study) -> StudyDensity | None:
    """The current estimate of the active density model for the study's current views, where this user may see the
    study's AI (cases.ai_visibility); None otherwise or when there is none yet."""
    if not ai_access(user=user, study=study).shown:
        return None
    return current_estimate(study)


def current_estimate(study: Study) -> StudyDensity | None:
    """The active density model's estimate of the study's current views, whoever asks (the CAD SR)."""
    version = active_density_model()
    images = latest_views(study)
    if version is None or not images:
        return None
    return StudyDensity.objects.filter(study=study, model_version=version, content_key=content_key(images)).first()
