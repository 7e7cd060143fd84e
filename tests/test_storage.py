"""The media store's contract (core.storage), run against both backends: the local folder and an
S3-compatible object store (moto's server: an emulator, tests/object_store.py). Then what rests on it, on both:
serving files, the storage reconciliation, and on the object store an upload analysed by a real Celery worker that
shares no disk with the web process."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.uid import RLELossless

from cases.models import Image
from cases.studies.ingestion import IncomingFile, study_upload
from cases.studies.reconciliation import storage_reconcile
from core import storage
from inference.models import InferenceJob
from tests.conftest import api_client_for, wait_for
from tests.dicom_factory import make_dicom

NAME = "previews/ab/contract.png"


def _incoming(data: bytes) -> Path:
    path = storage.incoming_dir() / f"contract-{os.urandom(4).hex()}"
    path.write_bytes(data)
    return path


# ---- the contract -------------------------------------------------------------------------------------------------


def test_it_writes_reads_and_deletes_by_name(media_store):
    assert not storage.exists(NAME)
    assert storage.put(NAME, b"first") is True
    assert storage.exists(NAME) and storage.read(NAME) == b"first"
    assert storage.put(NAME, b"other") is False  # a content-hash name: the same name is left alone
    assert storage.read(NAME) == b"first"
    assert storage.put(NAME, b"second", overwrite=True) is True  # a retried task replaces it
    assert storage.read(NAME) == b"second"
    storage.delete(NAME)
    assert not storage.exists(NAME)
    storage.delete(NAME)  # deleting what is not there is no error


def test_a_missing_file_is_file_not_found(media_store):
    with pytest.raises(FileNotFoundError):
        storage.read("originals/00/missing.dcm")
    with pytest.raises(FileNotFoundError):
        storage.open_file("originals/00/missing.dcm")
    with pytest.raises(FileNotFoundError), storage.local_path("originals/00/missing.dcm"):
        pass


def test_names_outside_the_store_are_refused(media_store):
    for name in ("../outside.png", "previews/../../outside.png"):
        with pytest.raises(SuspiciousFileOperation):
            storage.put(name, b"x")


def test_it_streams_large_files_in_and_out_without_changing_a_byte(media_store):
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one block, and past the object store's in-memory limit
    name = f"originals/{hashlib.sha256(data).hexdigest()[:2]}/big.dcm"
    assert storage.put_stream(name, io.BytesIO(data)) is True
    assert storage.sha256_of(name) == hashlib.sha256(data).hexdigest()
    with storage.open_file(name) as handle:
        assert handle.seekable()
        handle.seek(len(data) - 17)
        assert handle.read() == data[-17:]
    with storage.local_path(name) as path:
        assert path.read_bytes() == data
    if not storage.is_local():
        assert not list(storage.incoming_dir().iterdir())  # the object's temporary copy is gone


def test_a_file_on_disk_is_moved_in_or_taken_as_it_is(media_store, tmp_path):
    moved = _incoming(b"moved")
    assert storage.put_file("originals/aa/moved.dcm", moved) is True
    assert not moved.exists() and storage.read("originals/aa/moved.dcm") == b"moved"

    spooled = tmp_path / "spool.dcm"  # someone else's file (the listener's spool): used, left where it is
    spooled.write_bytes(b"borrowed")
    assert storage.put_file("originals/aa/borrowed.dcm", spooled, move=False) is True
    assert spooled.read_bytes() == b"borrowed" and storage.read("originals/aa/borrowed.dcm") == b"borrowed"
    if storage.is_local():  # the same file system: a hard link, not a copy
        with storage.local_path("originals/aa/borrowed.dcm") as path:
            assert path.stat().st_ino == spooled.stat().st_ino

    again = _incoming(b"moved")
    assert storage.put_file("originals/aa/moved.dcm", again) is False  # already stored: the new copy goes
    assert not again.exists()


def test_the_listing_gives_every_stored_file_and_not_the_incoming_folder(media_store, tmp_path):
    storage.put("previews/ab/one.png", b"1")
    storage.put("heatmaps/cd/two.png", b"22")
    _incoming(b"an upload in progress")
    listed = {f.name: f.size for f in storage.listing()}
    assert listed == {"previews/ab/one.png": 1, "heatmaps/cd/two.png": 2}
    assert not any(name.startswith(".tmp-") for name in listed)  # atomic writes leave no temporary file


def test_an_unreachable_object_store_is_an_os_error(object_store, settings):
    from tests.object_store import free_port, storages_entry

    settings.STORAGES = {
        **settings.STORAGES,
        "default": storages_entry({**object_store.env, "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}),
    }
    with pytest.raises(storage.StorageUnavailable) as raised:
        storage.read(NAME)
    assert isinstance(raised.value, OSError)  # callers retry it as they retry a disk error


def test_the_local_store_writes_atomically_into_its_folder(settings):
    storage.put(NAME, b"on disk")
    assert (Path(settings.MEDIA_ROOT) / NAME).read_bytes() == b"on disk"
    assert storage.describe() == f"folder {settings.MEDIA_ROOT}"


def test_the_object_store_keeps_the_content_hash_names(object_store):
    storage.put(NAME, b"in the bucket")
    assert object_store.keys() == [NAME]
    assert storage.describe().startswith(f"s3://{object_store.bucket} at http://127.0.0.1:")


# ---- what rests on it -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_upload_is_stored_and_served_from_either_store(media_store, technologist, radiologist):
    client = api_client_for(technologist)
    data = make_dicom(sop_uid="7.7.1", transfer_syntax=RLELossless)
    response = client.post("/api/studies/", {"files": [SimpleUploadedFile("L_CC.dcm", data)]}, format="multipart")
    assert response.status_code == 201, response.content
    image = Image.objects.get()
    names = {f.name for f in storage.listing()}
    assert {image.original, image.preview, image.working_image, image.viewer_pixels} == names
    assert list(storage.incoming_dir().iterdir()) == []  # the streamed upload was stored and removed
    original = api_client_for(radiologist).get(f"/api/images/{image.pk}/original/")
    assert original.status_code == 200 and b"".join(original.streaming_content) == data
    preview = api_client_for(radiologist).get(f"/api/images/{image.pk}/preview/")
    assert preview.status_code == 200 and b"".join(preview.streaming_content).startswith(b"\x89PNG")
    if media_store is not None:
        assert sorted(names) == media_store.keys()


@pytest.mark.django_db
def test_reconciliation_removes_old_orphans_and_reports_missing_files_on_either_store(media_store, technologist):
    study = study_upload(user=technologist, files=[IncomingFile.from_bytes("L_CC.dcm", make_dicom(sop_uid="7.7.2"))])
    image = study.study.images.get()
    storage.put("previews/ab/orphan.png", b"no row refers to me")
    storage.delete(image.preview)  # a row refers to a file that is gone

    kept = storage_reconcile(grace_seconds=3600)  # written just now: an upload may be in progress
    assert kept.removed == [] and kept.recent_unreferenced == 1 and kept.missing == [image.preview]

    result = storage_reconcile(grace_seconds=-5)  # everything counts as old
    assert result.removed == ["previews/ab/orphan.png"]
    assert result.missing == [image.preview]
    assert not storage.exists("previews/ab/orphan.png")
    assert storage.exists(image.original) and storage.exists(image.working_image)


@pytest.mark.worker
def test_a_worker_that_shares_no_disk_analyses_an_upload_through_the_object_store(
    object_store, celery_worker, radiologist, active_model, tmp_path, settings
):
    """The multi-host claim, on one machine: the worker process has its own MEDIA_ROOT (tmp_path/worker-host, see
    the celery_worker fixture) and reads and writes the files in the object store only; the web side serves the
    heatmap it wrote."""
    client = api_client_for(radiologist)
    data = make_dicom(rows=320, columns=240, sop_uid="7.7.3", laterality="L", view="CC")
    response = client.post("/api/studies/", {"files": [SimpleUploadedFile("L_CC.dcm", data)]}, format="multipart")
    assert response.status_code == 201, response.content
    study_id = response.json()["study"]["id"]
    wait_for(
        lambda: InferenceJob.objects.filter(image__study_id=study_id, status="succeeded").exists(), worker=celery_worker
    )
    assert celery_worker.env["MEDIA_STORAGE"] == "s3"
    assert celery_worker.env["MEDIA_ROOT"] == str(tmp_path / "worker-host") != str(settings.MEDIA_ROOT)
    (image,) = client.get(f"/api/studies/{study_id}/").json()["images"]
    heatmap = client.get(image["prediction"]["heatmap_url"])
    assert heatmap.status_code == 200 and b"".join(heatmap.streaming_content).startswith(b"\x89PNG")
    keys = object_store.keys()
    assert any(key.startswith("heatmaps/") for key in keys) and any(key.startswith("originals/") for key in keys)
    # Nothing of the image reached the web host's folder or the worker host's: both hold only an empty incoming/.
    for host in (Path(settings.MEDIA_ROOT), tmp_path / "worker-host"):
        assert [p for p in host.rglob("*") if p.is_file()] == [], host
