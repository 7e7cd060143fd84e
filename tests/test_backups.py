"""Backup and restore as a hospital would run them: a backup of the real PostgreSQL database and media while the
platform holds data, restored onto a fresh database and an empty media folder (a new server), after which the
audit trail verifies and every image opens."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cases.studies.ingestion import IncomingFile, study_upload
from inference.models import InferenceJob
from inference.serving.pipeline import inference_job_run
from tests.conftest import REPO
from tests.dicom_factory import make_dicom

pytestmark = pytest.mark.slow


def _manage(*args: str, database: str, media: Path, models: Path, store: dict | None = None):
    """manage.py on another server: its database, media folder and (`store`: the object store's environment) media
    store."""
    env = {**os.environ, "DATABASE_URL": database, "MEDIA_ROOT": str(media), "MODEL_DIR": str(models), **(store or {})}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def fresh_database():
    """An empty PostgreSQL database of its own, as on a new server."""
    from django.db import connection

    db = connection.settings_dict
    name = f"mammo_restore_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", "-h", db["HOST"], "-p", str(db["PORT"]), "-U", db["USER"], name], check=True)
    yield f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    subprocess.run(["dropdb", "-h", db["HOST"], "-p", str(db["PORT"]), "-U", db["USER"], "--if-exists", name])


def test_a_backup_restores_onto_a_fresh_server_with_the_audit_trail_and_every_image_intact(
    transactional_db, media_store, technologist, active_model, settings, tmp_path, fresh_database
):
    """On either media store: from the live server's folder or bucket onto a new server's empty one."""
    from django.db import connection

    from tests.conftest import media_env
    from tests.object_store import ObjectStore

    files = [
        IncomingFile.from_bytes("L_CC.dcm", make_dicom(sop_uid="9.1.1")),
        IncomingFile.from_bytes("R_CC.dcm", make_dicom(sop_uid="9.1.2", laterality="R")),
    ]
    study = study_upload(user=technologist, files=files).study
    for job in InferenceJob.objects.filter(image__study=study):
        assert inference_job_run(job_id=job.pk) is not None
    db = connection.settings_dict
    live = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    backup = tmp_path / "backup"
    live_store = media_env(settings)
    made = _manage(
        "backup_platform", str(backup), database=live, media=settings.MEDIA_ROOT, models=settings.MODEL_DIR,
        store=live_store,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "2 image(s), 2 prediction(s)" in made.stdout
    names = _archive_names(backup)
    assert not any(name.startswith("incoming") for name in names)
    from core import storage

    assert sorted(names) == sorted(f.name for f in storage.listing())  # every stored file, from either store

    new_media = tmp_path / "new-server-media"
    new_store = None
    if media_store is not None:  # a new server's empty bucket
        new_store = ObjectStore(server=media_store.server, bucket=media_store.server.new_bucket())
    new_env = new_store.env if new_store else None
    restored = _manage(
        "restore_platform", str(backup), database=fresh_database, media=new_media, models=tmp_path, store=new_env
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "audit trail intact" in restored.stdout and "all 2 image(s) open" in restored.stdout
    if new_store is not None:
        assert new_store.keys() == sorted(names)
    # Again onto the now restored server: refused, nothing overwritten.
    again = _manage(
        "restore_platform", str(backup), database=fresh_database, media=new_media, models=tmp_path, store=new_env
    )
    assert again.returncode != 0 and "not empty" in again.stderr


def test_a_damaged_backup_is_refused_before_anything_is_restored(
    transactional_db, technologist, active_model, settings, tmp_path, fresh_database
):
    from django.db import connection

    study_upload(user=technologist, files=[IncomingFile.from_bytes("L_CC.dcm", make_dicom(sop_uid="9.2.1"))])
    db = connection.settings_dict
    live = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    backup = tmp_path / "backup"
    assert (
        _manage("backup_platform", str(backup), database=live, media=settings.MEDIA_ROOT, models=tmp_path).returncode
        == 0
    )
    archive = backup / "media.tar"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    new_media = tmp_path / "new-server-media"
    restored = _manage("restore_platform", str(backup), database=fresh_database, media=new_media, models=tmp_path)
    assert restored.returncode != 0 and "damaged" in restored.stderr
    assert not new_media.exists()


def _archive_names(backup: Path) -> list[str]:
    import tarfile

    with tarfile.open(backup / "media.tar") as archive:
        return archive.getnames()
