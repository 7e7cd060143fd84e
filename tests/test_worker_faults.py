"""Faults of the real processes: a broker that is down while images arrive, a worker killed with jobs running.

A private Redis server (its own port, started and killed here: the shared one is never touched) and real Celery
worker processes; no mocks."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from cases.models import Study
from cases.studies.ingestion import IncomingFile, study_upload
from core import storage
from core.models import OutboxMessage
from inference.models import InferenceJob, Prediction
from tests.conftest import api_client_for, wait_for
from tests.dicom_factory import make_dicom

pytestmark = pytest.mark.worker


def test_an_upload_while_the_broker_is_down_is_kept_and_analysed_when_it_is_back(
    private_broker, celery_worker, technologist, active_model, settings
):
    private_broker.kill()
    client = api_client_for(technologist)
    started = time.monotonic()
    response = client.post(
        "/api/studies/",
        {"files": [SimpleUploadedFile("L_CC.dcm", make_dicom(rows=320, columns=240, sop_uid="7.1.1"))]},
        format="multipart",
    )
    # The upload is committed and answered as JSON, promptly, with the analysis queued (not lost, not failed).
    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json"
    assert time.monotonic() - started < 20
    study = Study.objects.get()
    image = study.images.get()
    for name in (image.original, image.preview, image.working_image):
        assert storage.exists(name), name
    job = InferenceJob.objects.get(image=image)
    assert job.status == "queued"
    # Asked for in the upload's transaction, not sent: the outbox holds it with the reason.
    message = OutboxMessage.objects.get(key=f"inference-job:{job.pk}")
    assert message.status == "pending" and message.send_failures >= 1 and "broker" in message.last_error
    # The study page says why nothing happens.
    page = client.get(f"/api/studies/{study.pk}/")
    assert page.status_code == 200
    # The broker comes back; the worker (with its beat) sends the job and analyses it, once.
    private_broker.start()
    celery_worker.env.update({"OUTBOX_SWEEP_SECONDS": "1"})
    celery_worker.start(beat=True)
    wait_for(lambda: InferenceJob.objects.get(pk=job.pk).status == "succeeded", timeout=120, worker=celery_worker)
    assert Prediction.objects.filter(image=image).count() == 1
    # Re-sending the same file is recognised as the stored one (it can never be orphaned half-way).
    again = client.post(
        "/api/studies/",
        {"files": [SimpleUploadedFile("L_CC.dcm", make_dicom(rows=320, columns=240, sop_uid="7.1.1"))]},
        format="multipart",
    )
    assert again.json()["files"][0]["status"] == "duplicate"


def test_a_killed_workers_jobs_finish_soon_after_another_worker_is_available(
    celery_worker, technologist, active_model, settings
):
    """Two jobs are running in a threads worker (as docker runs it) when it is killed with SIGKILL. The broker
    would hand them back only after its visibility timeout (600 s here); the heartbeat sweep of another worker
    must get them done within about two minutes, each with exactly one prediction."""
    celery_worker.stop()
    celery_worker.env.update({"CELERY_VISIBILITY_TIMEOUT": "600"})
    db = connection.settings_dict
    blocker = psycopg.connect(
        f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}", autocommit=False
    )
    try:
        # Hold the prediction table: both jobs compute their result, then block on writing it, mid-task.
        blocker.execute("LOCK TABLE inference_prediction IN ACCESS EXCLUSIVE MODE")
        # Through the service, not the API: the API's answer reads predictions, which the lock holds.
        result = study_upload(
            user=technologist,
            files=[
                IncomingFile.from_bytes("L_CC.dcm", make_dicom(rows=320, columns=240, sop_uid="7.2.1")),
                IncomingFile.from_bytes("R_CC.dcm", make_dicom(rows=320, columns=240, sop_uid="7.2.2", laterality="R")),
            ],
        )
        assert len(result.accepted) == 2, result.outcomes
        # Both messages are on the broker before the worker starts (a failed send would leave them pending).
        assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
        celery_worker.start(pool="threads", concurrency=2, beat=False)
        # Generous: a cold worker loads TensorFlow and the model first (slow on a busy machine).
        wait_for(lambda: InferenceJob.objects.filter(status="running").count() == 2, timeout=300, worker=celery_worker)
        time.sleep(2.0)
        celery_worker.kill()
    finally:
        blocker.rollback()
        blocker.close()
    assert InferenceJob.objects.filter(status="running").count() == 2
    available = time.monotonic()
    celery_worker.env.update({"OUTBOX_SWEEP_SECONDS": "5"})
    celery_worker.start(beat=True)
    wait_for(lambda: InferenceJob.objects.filter(status="succeeded").count() == 2, timeout=150, worker=celery_worker)
    took = time.monotonic() - available
    assert took < 120, f"the interrupted jobs took {took:.0f} s after a worker was available"
    assert Prediction.objects.count() == 2
    for job in InferenceJob.objects.all():
        assert job.interruptions == 1 and job.transient_retries == 0
