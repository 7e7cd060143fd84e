"""The transactional outbox (core/outbox.py): every asynchronous step is recorded in the transaction of the change
that asks for it, sent after the commit, and whatever the broker could not take, lost, or a dead process held is
sent again by one sweep. Real PostgreSQL, real Redis brokers (a private one that the test kills), real workers."""

from __future__ import annotations

import time
from io import BytesIO

import pydicom
import pytest
from django.db import transaction

from core.models import OutboxMessage
from core.outbox import outbox_enqueue, outbox_retry, outbox_sweep
from tests.conftest import celery_use_broker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_broker_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_a_step_asked_for_by_a_change_that_rolls_back_is_never_recorded_nor_sent():
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_enqueue(key="test:rolled-back", task="core.outbox_sweep", kwargs={}, description="a step")
        raise RuntimeError("the change fails")
    assert not OutboxMessage.objects.exists()


def test_a_step_the_broker_cannot_take_waits_with_the_reason_and_the_sweep_sends_it(settings, monkeypatch):
    from mammo_platform.celery import app

    real, closed = settings.CELERY_BROKER_URL, _closed_broker_url()
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (test.sh exports it).
    monkeypatch.setenv("CELERY_BROKER_URL", closed)
    celery_use_broker(app, closed)
    try:
        with transaction.atomic():
            message = outbox_enqueue(key="test:broker-down", task="core.outbox_sweep", kwargs={}, description="x")
            assert OutboxMessage.objects.get(pk=message.pk).status == "pending"  # nothing sent before the commit
        message.refresh_from_db()
        assert message.status == "pending" and message.send_failures == 1 and message.dispatches == 0
        assert "could not be reached" in message.last_error
        assert outbox_sweep()["sent"] == 0  # still down: still waiting, nothing lost
    finally:
        monkeypatch.setenv("CELERY_BROKER_URL", real)
        celery_use_broker(app, real)
    assert outbox_sweep() == {"reopened": 0, "sent": 1}
    message.refresh_from_db()
    assert message.status == "sent" and message.dispatches == 1


def test_asking_again_for_waiting_work_delays_it_and_never_duplicates_it():
    from datetime import timedelta

    from django.utils import timezone

    later = timezone.now() + timedelta(minutes=5)
    outbox_enqueue(key="test:stable", task="core.outbox_sweep", kwargs={}, description="x", send_after=later)
    even_later = later + timedelta(minutes=1)
    outbox_enqueue(key="test:stable", task="core.outbox_sweep", kwargs={}, description="x", send_after=even_later)
    [message] = OutboxMessage.objects.all()
    assert message.send_after == even_later and message.status == "pending"
    assert outbox_sweep()["sent"] == 0  # not due


@pytest.mark.worker
def test_a_step_that_raises_is_failed_with_the_reason_shown_and_a_retry_runs_it_again(celery_worker, client):
    """The worker records the task's end on its message: a step that raised is failed with the error, listed for
    IT and counted by /healthz, and a retry sends it again."""
    message = outbox_enqueue(
        key="dicom-image-results:999999", task="cases.dicom_image_results_build",
        kwargs={"prediction_id": 999999}, description="DICOM results of an image that does not exist",
    )  # fmt: skip
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).status == "failed", worker=celery_worker)
    message.refresh_from_db()
    assert "DoesNotExist" in message.last_error and message.worker and message.finished_at
    health = client.get("/healthz").json()
    assert health["status"] == "degraded" and health["results"]["failed_steps"] == 1
    outbox_retry(message_id=message.pk)
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).dispatches == 2, worker=celery_worker)
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).status == "failed", worker=celery_worker)


@pytest.mark.worker
def test_each_kind_of_step_asked_for_while_the_broker_is_down_is_done_once_it_is_back(
    private_broker, celery_worker, active_model, technologist, lead, settings, tmp_path_factory, monkeypatch
):
    """The broker is killed; then each kind of step is asked for by its change, which commits: an analysis (an
    upload), an image's DICOM objects and the study's report (an analysis that ends, here run in this process),
    deliveries to the archive (objects made), a strategies report (a lead asks). None can be sent. The broker
    comes back: the worker's sweep sends every one, and each is done once."""
    from cases.dicom.results import dicom_image_results_build
    from cases.models import DicomDelivery, DicomResultObject, StrategyReport
    from cases.performance.strategy_services import strategy_report_request
    from cases.studies.ingestion import IncomingFile, study_upload
    from inference.models import InferenceJob, Prediction
    from inference.serving.pipeline import inference_job_run
    from tests.dicom_factory import make_dicom
    from tests.orthanc import orthanc_running

    with orthanc_running(tmp_path_factory.mktemp("pacs")) as pacs:
        settings.DICOM_DESTINATION_STOW_URL = pacs.dicomweb_url
        settings.DICOM_STUDY_STABLE_SECONDS = 1
        celery_worker.env.update({"DICOM_DESTINATION_STOW_URL": pacs.dicomweb_url, "OUTBOX_SWEEP_SECONDS": "1"})
        private_broker.kill()
        files = [
            IncomingFile.from_bytes(
                f"{side}.dcm", make_dicom(laterality=side, study_uid="1.2.3.99", sop_uid=f"1.2.3.99.{n}")
            )
            for n, side in enumerate("RL")
        ]  # fmt: skip
        study = study_upload(user=technologist, files=files).study
        first, second = InferenceJob.objects.filter(image__study=study).order_by("pk")
        inference_job_run(job_id=first.pk)  # its end asks for the image's objects and the study's report
        prediction = Prediction.objects.get(job=first)
        made = dicom_image_results_build(prediction_id=prediction.pk)  # made: each asks for its delivery
        assert len(made) == 2
        report = strategy_report_request(user=lead, trigger=StrategyReport.Trigger.REQUEST)
        waiting = {m.key.split(":")[0]: m for m in OutboxMessage.objects.all()}
        assert set(waiting) == {"inference-job", "dicom-image-results", "dicom-study-results", "dicom-delivery",
                                "strategy-report"}  # fmt: skip
        assert {m.status for m in OutboxMessage.objects.all()} == {"pending"}
        assert all(m.send_failures >= 1 for m in OutboxMessage.objects.exclude(key__startswith="dicom-study"))

        private_broker.start()
        celery_worker.start(beat=True)

        def all_done() -> bool:
            return (
                InferenceJob.objects.get(pk=second.pk).status == "succeeded"
                and DicomResultObject.objects.filter(study=study).count() == 6
                and DicomDelivery.objects.filter(status="delivered").count() == 6
                and StrategyReport.objects.get(pk=report.pk).status == StrategyReport.Status.SUCCEEDED
            )

        wait_for(all_done, timeout=240, worker=celery_worker)
        wait_for(lambda: not OutboxMessage.objects.exclude(status="done").exists(), timeout=60, worker=celery_worker)
        # Done once: one prediction per image, one object per kind and view, each in the archive once.
        assert Prediction.objects.filter(image__study=study).count() == 2
        for obj in DicomResultObject.objects.filter(study=study):
            [found] = pacs.find_instances(SOPInstanceUID=obj.sop_instance_uid)
            assert pydicom.dcmread(BytesIO(pacs.instance_file(found["ID"]))).SOPInstanceUID == obj.sop_instance_uid
        assert InferenceJob.objects.get(pk=first.pk).attempts == 1  # run here, never again by the worker
        time.sleep(0)  # nothing else to wait for
