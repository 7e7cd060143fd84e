"""The AI's breast density in the product (issue 22, item 4): the active density model (the shipped NYU histogram
port, registered as kind=density) estimates a stable study's density from its views; shown where the AI may be
shown, in the API, and in the Mammography CAD SR's breast composition; a study without the views it needs is
recorded as not estimable, with why. Real models, no mocks."""

from __future__ import annotations

from io import BytesIO

import pydicom
import pytest
from django.conf import settings as django_settings

from cases.models import StudyDensity
from cases.studies.ai_density import ai_density_estimate
from cases.studies.ingestion import IncomingFile, study_upload
from core import storage
from tests.conftest import api_client_for
from tests.dicom_factory import make_dicom

COMPOSITION_CODES = {"129716005": "a", "129717001": "b", "129718006": "c", "129719003": "d"}


@pytest.fixture
def density_model(db):
    """The shipped NYU histogram density model, registered and activated as install_default_model does."""
    from inference.imports.density import density_model_register
    from inference.lifecycle import model_version_accept_for_research, model_version_activate

    version = density_model_register(
        folder=django_settings.DEFAULT_MODEL_DIR / "density-nyu-histogram", registered_by="test"
    )
    model_version_accept_for_research(model_version=version, accepted_by="test")
    return model_version_activate(model_version=version, confirm_unvalidated=True, confirmed_by="test",
                                  reason="test")  # fmt: skip


def exam(technologist, *, views=(("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")), tag="1"):
    files = [
        IncomingFile.from_bytes(f"{side}{view}.dcm", make_dicom(laterality=side, view=view, patient_id=f"D{tag}",
                                                                study_uid=f"1.2.826.0.1.9.{tag}",
                                                                sop_uid=f"1.2.826.0.1.9.{tag}.{n}"))
        for n, (side, view) in enumerate(views)
    ]  # fmt: skip
    return study_upload(user=technologist, files=files).study


@pytest.mark.django_db
def test_a_stable_study_gets_the_density_models_estimate_shown_where_the_ai_is(
    settings, technologist, radiologist, density_model, client
):
    settings.DICOM_STUDY_STABLE_SECONDS = 0
    study = exam(technologist)
    estimate = ai_density_estimate(study_id=study.pk)
    assert estimate.status == "succeeded" and estimate.scale == "birads" and estimate.category in "abcd"
    assert set(estimate.result["probabilities"]) == {"a", "b", "c", "d"}
    assert abs(sum(estimate.result["probabilities"].values()) - 1) < 1e-5
    assert estimate.result["validated"] is False  # a research estimate, shown as such
    assert ai_density_estimate(study_id=study.pk).pk == estimate.pk  # the same views: estimated once
    api = api_client_for(radiologist).get(f"/api/studies/{study.pk}/").json()
    assert api["ai_density"]["result"]["category"] == estimate.category
    assert api_client_for(technologist).get(f"/api/studies/{study.pk}/").json()["ai_density"] is None
    client.force_login(radiologist)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "AI breast density estimate" in page and "never used for the woman" in page


@pytest.mark.django_db
def test_a_study_without_a_breasts_views_is_not_estimated_and_says_why(settings, technologist, density_model):
    settings.DICOM_STUDY_STABLE_SECONDS = 0
    study = exam(technologist, views=(("R", "CC"), ("R", "MLO")), tag="2")
    estimate = ai_density_estimate(study_id=study.pk)
    assert estimate.status == "failed" and "No image of the L breast" in estimate.error_message


@pytest.mark.django_db
def test_the_estimate_waits_for_a_stable_study(settings, technologist, density_model):
    from core.models import OutboxMessage

    settings.DICOM_STUDY_STABLE_SECONDS = 60
    study = exam(technologist, tag="3")
    assert ai_density_estimate(study_id=study.pk) is None and not StudyDensity.objects.exists()
    assert OutboxMessage.objects.get(key=f"ai-density:{study.pk}").status == "pending"


@pytest.mark.django_db
def test_the_cad_sr_carries_the_estimate_as_breast_composition(settings, technologist, density_model, active_model):
    from cases.dicom.results import dicom_study_results_build
    from inference.models import InferenceJob
    from inference.serving.pipeline import inference_job_run

    settings.DICOM_STUDY_STABLE_SECONDS = 0
    settings.DICOM_RESULT_OBJECTS = ["cad_sr"]
    study = exam(technologist, tag="4")
    for job in InferenceJob.objects.filter(image__study=study):
        inference_job_run(job_id=job.pk)
    estimate = ai_density_estimate(study_id=study.pk)
    [cad] = dicom_study_results_build(study_id=study.pk)
    ds = pydicom.dcmread(BytesIO(storage.read(cad.file)))
    found = {COMPOSITION_CODES[str(item.ConceptCodeSequence[0].CodeValue)]
             for item in _items(ds) if "ConceptCodeSequence" in item
             and str(item.ConceptCodeSequence[0].CodeValue) in COMPOSITION_CODES}  # fmt: skip
    assert estimate.category in found


def _items(ds):
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _items(item)
