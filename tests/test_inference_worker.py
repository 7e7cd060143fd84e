"""The asynchronous path with a real Celery worker process, Redis and PostgreSQL, and a real small Keras model."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection
from pydicom.uid import RLELossless

from cases.models import Study
from cases.studies.ingestion import IncomingFile, study_upload
from core import storage
from inference.models import InferenceJob, Prediction
from tests.conftest import api_client_for, wait_for
from tests.dicom_factory import make_dicom
from tests.dicom_honesty import json_malignancy_claims

pytestmark = pytest.mark.worker


def _upload_one(user, *, sop_uid: str = "1.2.3.4.5.1", **kwargs) -> Study:
    data = make_dicom(rows=320, columns=240, sop_uid=sop_uid, **kwargs)
    result = study_upload(user=user, files=[IncomingFile.from_bytes("L_CC.dcm", data)])
    assert result.study is not None, result.outcomes
    return result.study


def _job(study: Study) -> InferenceJob:
    return InferenceJob.objects.get(image__study=study)


def test_it_analyses_an_upload_in_the_worker_and_serves_the_result(celery_worker, radiologist, active_model):
    client = api_client_for(radiologist)
    files = [
        ("L_CC.dcm", make_dicom(rows=320, columns=240, sop_uid="1.2.3.9.1", laterality="L", view="CC")),
        ("R_MLO.dcm", make_dicom(rows=320, columns=240, sop_uid="1.2.3.9.2", laterality="R", view="MLO",
                                 transfer_syntax=RLELossless)),
    ]  # fmt: skip
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        "/api/studies/",
        {"files": [SimpleUploadedFile(name, data) for name, data in files]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    study_id = response.json()["study"]["id"]

    def both_done():
        return InferenceJob.objects.filter(image__study_id=study_id, status="succeeded").count() == 2

    wait_for(both_done, worker=celery_worker)
    body = client.get(f"/api/studies/{study_id}/").json()
    assert body["status"] == "awaiting_reads"
    for image in body["images"]:
        prediction = image["prediction"]
        assert image["job_status"] == "succeeded"
        # The tiny model is not validated: a research score, no call (inference.serving.outputs).
        assert 0.0 <= prediction["score"] <= 1.0 and prediction["score_kind"] == "research_score"
        assert prediction["call"] is None and "label" not in prediction and "probability" not in prediction
        assert prediction["model_version"] == active_model.name
        assert set(prediction["timings_ms"]) >= {"read_ms", "preprocess_ms", "model_and_gradcam_ms", "total_ms"}
        heatmap = client.get(prediction["heatmap_url"])
        assert heatmap.status_code == 200 and heatmap["Content-Type"] == "image/png"
    assert {b["laterality"] for b in body["breasts"]} == {"L", "R"}
    assert json_malignancy_claims(body) == []
    assert Prediction.objects.filter(image__study_id=study_id).count() == 2


def test_it_does_not_duplicate_a_prediction_when_the_task_is_delivered_twice(celery_worker, radiologist, active_model):
    from inference.tasks import run_inference

    study = _upload_one(radiologist)
    job = _job(study)
    # The same message again, as a broker redelivery would do, plus a third copy later.
    run_inference.apply_async(kwargs={"job_id": job.pk})
    wait_for(lambda: InferenceJob.objects.get(pk=job.pk).status == "succeeded", worker=celery_worker)
    run_inference.apply_async(kwargs={"job_id": job.pk})

    def queue_drained():
        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        return client.llen(settings.CELERY_TASK_DEFAULT_QUEUE) == 0

    wait_for(queue_drained, worker=celery_worker)
    import time

    time.sleep(1.0)
    assert Prediction.objects.filter(image__study=study).count() == 1
    assert InferenceJob.objects.get(pk=job.pk).status == "succeeded"


def test_it_finishes_a_job_after_the_worker_is_killed_mid_task(celery_worker, radiologist, active_model):
    """The worker dies (SIGKILL) while the job is running; a restarted worker finishes it, exactly once."""
    db = connection.settings_dict
    blocker = psycopg.connect(
        f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}", autocommit=False
    )
    try:
        # Hold the prediction table: the worker computes the result, then blocks on writing it, mid-task.
        blocker.execute("LOCK TABLE inference_prediction IN ACCESS EXCLUSIVE MODE")
        study = _upload_one(radiologist)
        job = _job(study)
        wait_for(lambda: InferenceJob.objects.get(pk=job.pk).status == "running", worker=celery_worker)
        import time

        time.sleep(2.0)  # let it get past the model and block on the insert
        assert InferenceJob.objects.get(pk=job.pk).status == "running"
        celery_worker.kill()
    finally:
        blocker.rollback()
        blocker.close()
    assert not Prediction.objects.filter(image__study=study).exists()
    celery_worker.start()
    wait_for(lambda: InferenceJob.objects.get(pk=job.pk).status == "succeeded", timeout=120, worker=celery_worker)
    job.refresh_from_db()
    assert job.attempts == 2 and job.interruptions == 1
    assert Prediction.objects.filter(image__study=study).count() == 1


def test_it_retries_a_transient_storage_error_with_backoff(celery_worker, radiologist, active_model, settings):
    """The store briefly loses the image: the job waits and retries (counted as a transient retry, not as a worker
    crash), then succeeds once the file is back."""
    celery_worker.stop()  # upload first, break storage, then let the worker at it
    study = _upload_one(radiologist)
    image = study.images.get()
    saved = storage.read(image.working_image)
    storage.delete(image.working_image)
    celery_worker.start()
    wait_for(lambda: InferenceJob.objects.get(image=image).transient_retries >= 1, worker=celery_worker)
    job = InferenceJob.objects.get(image=image)
    assert job.status in ("queued", "running")  # waiting to retry, not failed
    storage.put(image.working_image, saved)
    wait_for(lambda: InferenceJob.objects.get(image=image).status == "succeeded", worker=celery_worker)
    job = InferenceJob.objects.get(image=image)
    assert job.interruptions == 0 and job.transient_retries >= 1
    assert Prediction.objects.filter(image=image).count() == 1


def test_transient_errors_fail_the_job_with_the_storage_reason_not_as_a_crash(
    celery_worker, radiologist, active_model, settings
):
    celery_worker.stop()
    celery_worker.env["INFERENCE_MAX_TRANSIENT_RETRIES"] = "2"
    study = _upload_one(radiologist)
    image = study.images.get()
    storage.delete(image.working_image)
    celery_worker.start()
    wait_for(lambda: InferenceJob.objects.get(image=image).status == "failed", timeout=120, worker=celery_worker)
    job = InferenceJob.objects.get(image=image)
    assert job.transient_retries == 2 and job.interruptions == 0
    assert "unavailable" in job.error_message and "worker stopped" not in job.error_message


def test_it_fails_a_job_with_a_reason_and_a_user_can_retry_it(celery_worker, technologist, active_model):
    study = _upload_one(technologist)
    image = study.images.get()
    wait_for(lambda: InferenceJob.objects.get(image=image).status == "succeeded", worker=celery_worker)
    # A second study whose stored original gets corrupted on disk after upload.
    study2 = _upload_one(technologist, sop_uid="1.2.3.4.5.2")
    image2 = study2.images.get()
    good = storage.read(image2.working_image)
    celery_worker.stop()
    InferenceJob.objects.filter(image=image2).update(status="queued")
    storage.put(image2.working_image, good[:-5000] + b"\0" * 10, overwrite=True)
    celery_worker.start()
    from inference.tasks import run_inference

    run_inference.apply_async(kwargs={"job_id": InferenceJob.objects.get(image=image2).pk})
    wait_for(lambda: InferenceJob.objects.get(image=image2).status == "failed", worker=celery_worker)
    job2 = InferenceJob.objects.get(image=image2)
    assert "checksum" in job2.error_message
    assert job2.error_detail
    client = api_client_for(technologist)
    detail = client.get(f"/api/studies/{study2.pk}/").json()
    assert detail["images"][0]["job_status"] == "failed"
    assert "checksum" in detail["images"][0]["error"]

    storage.put(image2.working_image, good, overwrite=True)
    response = client.post(f"/api/jobs/{job2.pk}/retry/")
    assert response.status_code == 202, response.content
    wait_for(lambda: InferenceJob.objects.get(image=image2).status == "succeeded", worker=celery_worker)
    assert Prediction.objects.filter(image=image2).count() == 1


def test_it_sends_again_a_job_whose_message_was_lost(celery_worker, radiologist, active_model):
    """The broker lost the job's message (its queue deleted): the outbox sweep finds the message sent long ago and
    never started, sends it again, once, and the worker analyses the image once."""
    from datetime import timedelta

    import redis
    from django.conf import settings
    from django.utils import timezone

    from core.models import OutboxMessage
    from core.outbox import outbox_sweep

    celery_worker.stop()
    study = _upload_one(radiologist)
    job = _job(study)
    message = OutboxMessage.objects.get(key=f"inference-job:{job.pk}")
    assert message.status == "sent" and message.dispatches == 1
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # message lost
    OutboxMessage.objects.filter(pk=message.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    assert outbox_sweep() == {"reopened": 1, "sent": 1}
    # Sent again once: a second sweep leaves the fresh dispatch alone (no pile of copies).
    assert outbox_sweep() == {"reopened": 0, "sent": 0}
    celery_worker.start(beat=False)
    wait_for(lambda: InferenceJob.objects.get(pk=job.pk).status == "succeeded", worker=celery_worker)
    assert Prediction.objects.filter(image__study=study).count() == 1
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).status == "done", worker=celery_worker)
    message.refresh_from_db()
    assert message.dispatches == 2 and message.finished_at is not None


def test_celery_beat_sweeps_lost_messages_by_itself(celery_worker, radiologist, active_model):
    """The worker as run.sh starts it (--beat, a threads pool of two): with no one running a command, the periodic
    outbox sweep finds the job whose message was lost and the worker then analyses it, once."""
    from datetime import timedelta

    import redis
    from django.conf import settings
    from django.utils import timezone

    from core.models import OutboxMessage

    celery_worker.stop()
    study = _upload_one(radiologist)
    job = _job(study)
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # message lost
    OutboxMessage.objects.filter(key=f"inference-job:{job.pk}").update(sent_at=timezone.now() - timedelta(hours=1))
    celery_worker.env.update({"OUTBOX_SWEEP_SECONDS": "1", "OUTBOX_LOST_AFTER_SECONDS": "60"})
    celery_worker.start(beat=True, pool="threads", concurrency=2)
    wait_for(lambda: InferenceJob.objects.get(pk=job.pk).status == "succeeded", worker=celery_worker)
    assert OutboxMessage.objects.get(key=f"inference-job:{job.pk}").dispatches == 2
    assert Prediction.objects.filter(image__study=study).count() == 1
    assert "core.outbox_sweep" in celery_worker.log.read_text()
