"""Shadow mode (docs/adr/0009): a malignancy model in shadow status analyses every new image beside the active one,
with its own jobs and predictions (queued through the outbox, keyed by image and model so a repeat adds nothing),
and no reader meets its output: not on the study, image, read or worklist pages, the study API, the status poll,
the heatmap file URLs, the DICOM result objects, the worklist's AI sort, or the performance pages.

Real small Keras models (two different networks, so their files, scores and heatmaps differ), run in this process
through the worker's own pipeline (inference.serving.pipeline.inference_job_run)."""

from __future__ import annotations

import pytest

from cases.dicom.results import dicom_image_results_build, dicom_study_results_build
from cases.models import DicomResultObject, Study
from cases.reading import claims
from core import storage
from core.models import OutboxMessage
from inference.lifecycle import model_version_status_change
from inference.models import InferenceJob, Prediction
from inference.serving.jobs import inference_jobs_create
from inference.serving.pipeline import inference_job_run
from tests.conftest import TINY_INPUT, api_client_for
from tests.test_reading import make_study


def _register_shadow(admin_user, path=None):
    from inference.serving.registry import model_version_register

    version = model_version_register(
        path=path or _second_model_file(),
        name="shadowcandidate-zq7",
        backbone="b0",
        input_size=TINY_INPUT,
        calibration_bias=1.5,
    )
    model_version_status_change(model_version=version, to_status="shadow", reason="Run beside", actor=admin_user)
    return version


_SECOND: dict = {}


def _second_model_file():
    """The second network, made once per session."""
    if "path" not in _SECOND:
        import tempfile
        from pathlib import Path

        import keras

        from inference.serving.backbones import build_classifier

        keras.utils.set_random_seed(11)
        model = build_classifier(backbone="b0", input_size=TINY_INPUT)
        path = Path(tempfile.mkdtemp(prefix="shadow-model-")) / "shadow.keras"
        model.save(path)
        _SECOND["path"] = path
    return _SECOND["path"]


@pytest.fixture
def shadow_model(db, admin_user, active_model):
    return _register_shadow(admin_user)


def _run_all(study) -> None:
    for job in InferenceJob.all_objects.filter(image__study=study, status="queued").order_by("pk"):
        inference_job_run(job_id=job.pk)


def _forbidden(predictions) -> list[str]:
    """What would betray the shadow model's output on a page: its name, its scores as the pages and API write
    them, its heatmap files' names."""
    texts = [predictions[0].model_version.name]
    for p in predictions:
        texts += [f"{p.probability:.3f}", f"research score {p.probability:.2f}", repr(p.probability), p.heatmap]
    return texts


def _assert_absent(body: str, forbidden: list[str], where: str) -> None:
    for text in forbidden:
        assert text not in body, f"{where} shows {text!r}"


def test_a_shadow_model_runs_beside_the_active_one_and_no_reader_meets_it(
    settings, client, technologist, radiologist, lead, admin_user, active_model, shadow_model
):
    settings.READERS_SEE_AI, settings.AI_REVEAL = True, "open"  # readers see the active model's AI at once
    settings.DICOM_STUDY_STABLE_SECONDS = 0
    study = make_study(technologist, tag="31")
    jobs = InferenceJob.all_objects.filter(image__study=study)
    assert jobs.count() == 4 and jobs.filter(shadow=True, model_version=shadow_model).count() == 2
    assert set(InferenceJob.objects.filter(image__study=study).values_list("model_version", flat=True)) == {
        active_model.pk
    }
    keys = set(OutboxMessage.objects.values_list("key", flat=True))
    assert {f"inference-job:{job.pk}" for job in jobs} <= keys  # each asked for through the outbox
    inference_jobs_create(images=list(study.images.all()))  # a repeat (retried ingestion): nothing new
    assert InferenceJob.all_objects.filter(image__study=study).count() == 4
    _run_all(study)
    for job in jobs:  # a redelivered message: nothing runs twice
        assert inference_job_run(job_id=job.pk) is None
    shadow = list(Prediction.all_objects.filter(image__study=study, model_version=shadow_model).order_by("pk"))
    active = list(Prediction.objects.filter(image__study=study).order_by("pk"))
    assert len(shadow) == 2 and all(p.shadow and p.has_heatmap for p in shadow)
    assert len(active) == 2 and {p.model_version_id for p in active} == {active_model.pk}
    assert Prediction.all_objects.filter(image__study=study).count() == 4
    forbidden = _forbidden(shadow)
    for p in active:  # the test must be able to tell them apart
        assert f"{p.probability:.3f}" not in forbidden and f"research score {p.probability:.2f}" not in forbidden
    study.refresh_from_db()
    assert study.status == Study.Status.AWAITING_READS
    assert study.ai_suspicion == pytest.approx(max(p.probability for p in active))  # the worklist's AI sort

    # DICOM result objects: made from the active model's analyses only.
    for p in active:
        dicom_image_results_build(prediction_id=p.pk)
    dicom_study_results_build(study_id=study.pk)
    made = DicomResultObject.objects.filter(study=study)
    assert made.exists() and not made.filter(model_version=shadow_model).exists()
    for obj in made.exclude(file=""):
        data = storage.read(obj.file)
        assert shadow_model.name.encode() not in data and shadow_model.file_sha256.encode() not in data

    # Every page and API a reader reaches.
    client.force_login(radiologist)
    api = api_client_for(radiologist)
    pages = {
        "study page": client.get(f"/studies/{study.pk}/"),
        "status poll": client.get(f"/studies/{study.pk}/status.json"),
        "study list": client.get("/studies/"),
        "worklist": client.get("/reading/"),
        "study API": api.get(f"/api/studies/{study.pk}/"),
        "study list API": api.get("/api/studies/"),
        "DICOM results API": api.get(f"/api/studies/{study.pk}/dicom-results/"),
    }
    for image in study.images.all():
        pages[f"image page {image.pk}"] = client.get(f"/images/{image.pk}/")
    read = claims.read_claim(study_id=study.pk, user=radiologist)
    pages["read page"] = client.get(f"/reading/reads/{read.pk}/")
    for where, response in pages.items():
        assert response.status_code == 200, where
        _assert_absent(response.content.decode(), forbidden, where)
    study_page = pages["study page"].content.decode()
    assert any(f"research score {p.probability:.2f}" in study_page for p in active)  # the active one is shown
    body = pages["study API"].json()
    assert {i["prediction"]["model_version"] for i in body["images"]} == {active_model.name}

    # Heatmap files: the image's URLs serve the active model's, never the shadow one's.
    for p in active:
        shadow_of_image = next(s for s in shadow if s.image_id == p.image_id)
        for kind, name in (("heatmap", p.heatmap), ("overlay", p.overlay)):
            for response in (client.get(f"/images/{p.image_id}/{kind}/"), api.get(f"/api/images/{p.image_id}/{kind}/")):
                served = b"".join(response.streaming_content) if response.streaming else response.content
                assert response.status_code == 200 and served == storage.read(name)
                assert served != storage.read(getattr(shadow_of_image, kind))

    # A lead's pages: performance (the readers' figures) and the study page.
    client.force_login(lead)
    for url in ("/performance/", f"/studies/{study.pk}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_absent(response.content.decode(), forbidden, url)

    # An image analysed only in shadow (no active model then): its heatmap URL is a 404, its page shows no score.
    model_version_status_change(model_version=active_model, to_status="suspended", reason="pause", actor=admin_user)
    later = make_study(technologist, tag="32")
    assert InferenceJob.objects.filter(image__study=later).values_list("status", flat=True).distinct().get() == (
        "waiting"
    )
    _run_all(later)
    only_shadow = list(Prediction.all_objects.filter(image__study=later))
    assert len(only_shadow) == 2 and all(p.shadow for p in only_shadow)
    assert not Prediction.objects.filter(image__study=later).exists()
    later.refresh_from_db()
    assert later.ai_suspicion is None
    client.force_login(radiologist)
    for p in only_shadow:
        for kind in ("heatmap", "overlay"):
            assert client.get(f"/images/{p.image_id}/{kind}/").status_code == 404
            assert api.get(f"/api/images/{p.image_id}/{kind}/").status_code == 404
        _assert_absent(client.get(f"/images/{p.image_id}/").content.decode(), _forbidden(only_shadow), "image page")
    _assert_absent(client.get(f"/studies/{later.pk}/").content.decode(), _forbidden(only_shadow), "study page")
    _assert_absent(api.get(f"/api/studies/{later.pk}/").content.decode(), _forbidden(only_shadow), "study API")

    # The inventory counts the shadow analyses (never shows them one by one).
    client.force_login(admin_user)
    assert "4 images analysed in shadow" in client.get(f"/models/{shadow_model.pk}/").content.decode()


def test_a_real_worker_runs_the_shadow_jobs_from_the_outbox(celery_worker, technologist, admin_user, active_model):
    """The shadow jobs reach a real Celery worker through the outbox like the active model's, and the study does
    not wait for them to be read."""
    from tests.conftest import wait_for

    shadow_model = _register_shadow(admin_user)
    study = make_study(technologist, tag="34")

    def all_done():
        return InferenceJob.all_objects.filter(image__study=study, status="succeeded").count() == 4

    wait_for(all_done, worker=celery_worker)
    assert Prediction.all_objects.filter(image__study=study, model_version=shadow_model, shadow=True).count() == 2
    assert Prediction.objects.filter(image__study=study).count() == 2
    assert not Prediction.objects.filter(model_version=shadow_model).exists()


def test_a_failed_shadow_job_is_retried_only_while_its_model_is_in_shadow(technologist, admin_user, db):
    from core.errors import ApplicationError
    from inference.models import ModelVersion
    from inference.serving.jobs import inference_job_retry

    version = ModelVersion.objects.create(
        name="shadow-row", backbone="custom", input_size=64, file="s.keras", file_sha256="5" * 64,
        preprocessing_version="1", status="shadow",
    )  # fmt: skip
    study = make_study(technologist, tag="35")
    job = InferenceJob.all_objects.get(image__study=study, model_version=version, image__laterality="R")
    assert job.shadow and job.status == "queued"
    InferenceJob.all_objects.filter(pk=job.pk).update(status="failed")
    assert inference_job_retry(job=job).status == "queued"
    InferenceJob.all_objects.filter(pk=job.pk).update(status="failed")
    model_version_status_change(model_version=version, to_status="retired", reason="enough", actor=admin_user)
    with pytest.raises(ApplicationError, match="no longer in shadow"):
        inference_job_retry(job=job)
    # Readers' retry pages never find a shadow job.
    assert not InferenceJob.objects.filter(pk=job.pk).exists()
