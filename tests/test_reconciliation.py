"""Storage reconciliation, and the fault it repairs reproduced for real: a web worker killed in the middle of an
upload leaves its streamed file behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from cases.studies.ingestion import IncomingFile, study_upload
from cases.studies.reconciliation import storage_reconcile
from core import storage
from tests.conftest import REPO, api_client_for, wait_for
from tests.dicom_factory import make_dicom


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


@pytest.mark.slow
def test_a_web_worker_killed_mid_upload_leaves_a_file_that_reconciliation_removes(
    transactional_db, technologist, settings
):
    from django.db import connection

    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MODEL_DIR": str(settings.MODEL_DIR),
        "CONN_MAX_AGE": "0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mammo_platform.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--timeout", "120"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    token = api_client_for(technologist)._credentials["HTTP_AUTHORIZATION"]
    try:

        def answers():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(answers, timeout=60)
        boundary = "mammo-boundary"
        payload = make_dicom(rows=1024, columns=768, sop_uid="8.1.1")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="L_CC.dcm"\r\n'
            "Content-Type: application/dicom\r\n\r\n"
        ).encode()
        body_length = len(head) + len(payload) + len(f"\r\n--{boundary}--\r\n")
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(
            (
                f"POST /api/studies/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {body_length}\r\n\r\n"
            ).encode()
            + head
            + payload[: len(payload) // 2]
        )
        incoming = Path(settings.MEDIA_ROOT) / storage.INCOMING
        wait_for(lambda: incoming.exists() and any(incoming.iterdir()), timeout=30)
        os.killpg(server.pid, signal.SIGKILL)  # the web server dies with half the file received
        server.wait(timeout=10)
        client.close()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    left = list(incoming.iterdir())
    assert len(left) == 1 and left[0].stat().st_size > 0
    # Recent: an upload may still be in progress, so the default grace period keeps it.
    assert storage_reconcile().removed == []
    assert left[0].exists()
    _age(left[0], settings.STORAGE_RECONCILE_GRACE_SECONDS + 60)
    result = storage_reconcile()
    assert result.removed == [f"{storage.INCOMING}/{left[0].name}"]
    assert not left[0].exists()
    event = AuditEvent.objects.get(action="storage.reconciled")
    assert event.details["removed"] == 1


@pytest.mark.django_db
def test_it_removes_only_old_unreferenced_files_and_reports_missing_ones(technologist, active_model, settings, capsys):
    study = study_upload(
        user=technologist, files=[IncomingFile.from_bytes("L_CC.dcm", make_dicom(sop_uid="8.2.1"))]
    ).study
    image = study.images.get()
    root = Path(settings.MEDIA_ROOT)
    for name in (image.original, image.preview, image.working_image):
        _age(root / name, 10 * 24 * 3600)  # old, but referenced: kept
    orphan_old = root / "previews" / "ab" / "orphan-old.png"
    orphan_new = root / "heatmaps" / "cd" / "orphan-new.png"
    for path in (orphan_old, orphan_new):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
    _age(orphan_old, 2 * 24 * 3600)
    (root / image.preview).unlink()  # a row points at a file that is gone

    call_command("reconcile_storage", "--dry-run")
    report = capsys.readouterr().out
    assert "Unreferenced: previews/ab/orphan-old.png" in report and f"Missing: {image.preview}" in report
    assert orphan_old.exists()  # a dry run removes nothing

    result = storage_reconcile()
    assert result.removed == ["previews/ab/orphan-old.png"]
    assert result.missing == [image.preview]
    assert result.recent_unreferenced == 1
    assert not orphan_old.exists() and orphan_new.exists()
    assert (root / image.original).exists() and (root / image.working_image).exists()


@pytest.mark.django_db
def test_letters_and_shadow_analyses_keep_their_files(technologist, lead):
    """Reconciliation removes what no row names: the women's letters and a shadow model's heatmaps are named by rows
    that readers' queries leave out or that live outside the images, and must never be taken for litter."""
    from cases.letters.services import result_confirm
    from cases.studies.reconciliation import referenced_names
    from inference.models import Prediction
    from tests.conftest import make_user
    from tests.test_model_monitoring import START, Seeder, make_model
    from tests.test_result_letters import _final

    readers = make_user("radiologist", "ann"), make_user("radiologist", "ben")
    letter = result_confirm(study=_final(technologist, readers, tag="51"), seen_result="routine_recall",
                            user=lead).letters.get()  # fmt: skip
    Seeder(technologist).day(make_model("shadowed", status="shadow"), START)
    shadow = Prediction.all_objects.filter(model_version__name="shadowed").first()
    Prediction.all_objects.filter(pk=shadow.pk).update(shadow=True, heatmap="heatmaps/sh/shadow.png")
    assert not Prediction.objects.filter(pk=shadow.pk).exists()  # readers' queries never see it
    names = referenced_names()
    assert letter.pdf_name in names and "heatmaps/sh/shadow.png" in names
    result = storage_reconcile(grace_seconds=0)
    assert letter.pdf_name not in result.removed and storage.exists(letter.pdf_name)
