"""Job status rules that need no worker."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.studies.ingestion import IncomingFile, study_upload
from inference.models import InferenceJob
from inference.serving.pipeline import inference_job_run
from tests.dicom_factory import make_dicom


@pytest.mark.django_db
def test_it_fails_a_job_that_keeps_killing_its_worker(technologist, active_model, settings):
    study = study_upload(user=technologist, files=[IncomingFile.from_bytes("a.dcm", make_dicom(sop_uid="1.8.1"))]).study
    job = InferenceJob.objects.get()
    # Its worker died (no heartbeat for longer than the timeout) as many times as allowed, less one: this time fails.
    InferenceJob.objects.filter(pk=job.pk).update(
        status="running",
        worker="gone-host:1",
        heartbeat_at=None,
        attempts=settings.INFERENCE_MAX_ATTEMPTS,
        interruptions=settings.INFERENCE_MAX_ATTEMPTS - 1,
    )
    assert inference_job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert job.status == "failed" and "interrupted" in job.error_message
    assert job.interruptions == settings.INFERENCE_MAX_ATTEMPTS and job.transient_retries == 0
    study.refresh_from_db()
    assert study.status == "awaiting_reads"  # reading does not wait for a failed analysis


@pytest.mark.django_db
def test_it_runs_a_queued_job_once_and_ignores_repeats(technologist, active_model):
    study_upload(user=technologist, files=[IncomingFile.from_bytes("a.dcm", make_dicom(sop_uid="1.8.2"))])
    job = InferenceJob.objects.get()
    first = inference_job_run(job_id=job.pk)
    assert first is not None and first.job_id == job.pk
    assert inference_job_run(job_id=job.pk) is None  # already succeeded: nothing happens
    assert job.image.predictions.count() == 1


def test_a_job_cannot_jump_between_states():
    job = InferenceJob(status=InferenceJob.Status.SUCCEEDED)
    with pytest.raises(ValueError, match="not allowed"):
        job.transition(InferenceJob.Status.RUNNING)


@pytest.mark.django_db
def test_the_health_endpoint_needs_no_login_and_reports_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    # No worker has beaten in this test: the web is ready, analysis is not ("degraded").
    assert response.json() == {
        "status": "degraded",
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
        "workers": {"alive": 0, "last_seen": None},
        "results": {"failed_objects": 0, "failed_deliveries": 0, "failed_steps": 0, "overdue_steps": 0},
    }
    assert client.get("/livez").json() == {"status": "ok"}


@pytest.mark.django_db
def test_the_study_page_says_when_analysis_cannot_progress(client, technologist, active_model):
    """Queued images and no live worker: the study page and its status poll say so (and stop saying it once a
    worker beats)."""
    from django.utils import timezone

    from core.models import Worker

    study = study_upload(user=technologist, files=[IncomingFile.from_bytes("a.dcm", make_dicom(sop_uid="1.8.9"))]).study
    client.force_login(technologist)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "No analysis worker is running" in page
    status = client.get(f"/studies/{study.pk}/status.json").json()
    assert "No analysis worker is running" in status["stalled"]
    now = timezone.now()
    Worker.objects.create(name="host:1", started_at=now, last_seen=now)
    assert client.get(f"/studies/{study.pk}/status.json").json()["stalled"] == ""
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["workers"]["alive"] == 1


@pytest.mark.django_db
def test_an_analysis_runs_a_fixed_small_number_of_sql_statements(technologist, active_model):
    """The worker's database work per image (claim, Prediction, job, study and audit rows) is part of its speed
    (manage.py benchmark_inference): it must not grow with the study, and any statement added shows here."""
    files = [IncomingFile.from_bytes(f"{i}.dcm", make_dicom(sop_uid=f"1.8.9.{i}")) for i in range(4)]
    study = study_upload(user=technologist, files=files).study
    jobs = list(InferenceJob.objects.order_by("pk"))

    def statements(job) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert inference_job_run(job_id=job.pk) is not None
        return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]

    inference_job_run(job_id=jobs[0].pk)
    middle = statements(jobs[1])
    # Claim: lock the job, mark it running, lock the study. Store: lock the job, look for and insert the
    # Prediction, the study's AI suspicion, the job's success, lock the study, are others unfinished, the audit row
    # (with the chain's lock on PostgreSQL), and the DICOM results asked for in the outbox: the image's objects (one
    # upsert), the study's report (its newest image's time, one upsert); whether a density model is active (the study's
    # density estimate is asked for then: none here).
    assert len(middle) == (17 if connection.vendor == "postgresql" else 16), "\n".join(middle)
    inference_job_run(job_id=jobs[2].pk)
    last = statements(jobs[3])
    # The study's last analysis also moves the study to 'awaiting reads', audited.
    assert len(last) == len(middle) + (4 if connection.vendor == "postgresql" else 3), "\n".join(last)
    study.refresh_from_db()
    assert study.status == "awaiting_reads"
