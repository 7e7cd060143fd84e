"""Ingestion: what is refused and why, what is kept when things go wrong, and who may add images when.

The real pydicom test corpus, crafted files, the real upload handler (a multipart request through Django's stack),
the real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cases.models import Image, Read, Study
from cases.studies.ingestion import IncomingFile, study_upload
from core import storage
from core.errors import ApplicationError
from imaging.mammogram import BREAST_TOMOSYNTHESIS, SECONDARY_CAPTURE
from tests.conftest import api_client_for
from tests.dicom_factory import make_dicom, make_png, patch_dicom

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def _outcome(user, name: str, data: bytes, **kwargs):
    result = study_upload(user=user, files=[IncomingFile.from_bytes(name, data)], **kwargs)
    return result.outcomes[0]


# ---- not a mammogram --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_no_file_of_pydicoms_test_corpus_is_accepted_as_a_mammogram(technologist, settings):
    """None of pydicom's own test files (CT, MR, US, NM, RT, SEG, SR, secondary captures of other things...) is a
    mammogram; with side and view given in the form they must still all be refused, each with a reason."""
    import pydicom.data

    # The files installed with pydicom (get_testdata_files would try to download more from the internet).
    corpus = sorted(p for p in (Path(pydicom.data.__file__).parent / "test_files").glob("*") if p.is_file())
    assert len(corpus) > 50, "pydicom's test corpus is not installed with pydicom"
    accepted = []
    for path in corpus:
        outcome = _outcome(technologist, path.name, path.read_bytes(), patient_id="CORPUS", laterality="L", view="CC")
        if outcome.status == "accepted":
            accepted.append(path.name)
        else:
            assert outcome.reason.endswith("."), (path.name, outcome.reason)
    assert accepted == []
    assert not Image.objects.exists()
    assert [p for p in _files(settings.MEDIA_ROOT)] == []  # nothing left behind, not even in incoming/


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"Modality": "CT", "SOPClassUID": CT_IMAGE, "BodyPartExamined": "CHEST"}, "chest"),
        ({"Modality": "CT", "SOPClassUID": CT_IMAGE, "BodyPartExamined": "BREAST"}, "CT Image Storage"),
        (
            {"Modality": "OT", "SOPClassUID": SECONDARY_CAPTURE, "BodyPartExamined": ""},
            "does not say it is a mammogram",
        ),
        ({"SOPClassUID": BREAST_TOMOSYNTHESIS}, "tomosynthesis"),
        # A CT (MR, US...) slice captured as Secondary Capture is no mammogram, whatever its body part says.
        ({"Modality": "CT", "SOPClassUID": SECONDARY_CAPTURE, "BodyPartExamined": "BREAST"}, "CT imaging"),
        ({"Modality": "MR", "SOPClassUID": SECONDARY_CAPTURE, "BodyPartExamined": "BREAST"}, "MR imaging"),
        ({"Modality": "US", "SOPClassUID": SECONDARY_CAPTURE, "BodyPartExamined": ""}, "US imaging"),
    ],
)
def test_it_refuses_dicoms_that_are_not_2d_mammograms_and_says_what_the_model_is_for(
    technologist, attributes, expected
):
    data = patch_dicom(make_dicom(), **attributes)
    outcome = _outcome(technologist, "x.dcm", data)
    assert outcome.status == "rejected" and outcome.code == "not_a_mammogram"
    assert expected in outcome.reason and "screening mammograms" in outcome.reason


@pytest.mark.django_db
def test_it_accepts_cbis_ddsm_style_secondary_captures_of_mammograms(technologist):
    data = patch_dicom(make_dicom(sop_class=SECONDARY_CAPTURE), Modality="MG")
    assert _outcome(technologist, "x.dcm", data).status == "accepted"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "pixels",
    [np.zeros((300, 200), np.uint8), np.full((300, 200), 255, np.uint8), np.full((300, 200), 90, np.uint8)],
    ids=["black", "white", "grey"],
)
def test_it_refuses_a_picture_in_which_no_breast_can_be_found(technologist, pixels, settings):
    outcome = _outcome(technologist, "L_CC.png", make_png(pixels=pixels), patient_id="P9")
    assert outcome.status == "rejected" and outcome.code == "no_breast"
    assert "No breast" in outcome.reason
    assert _files(settings.MEDIA_ROOT) == []


@pytest.mark.django_db
def test_a_real_mini_mias_mammogram_is_accepted(technologist, settings):
    path = Path(settings.MAMMO_DATA_DIR) / "mini-mias" / "mdb001.png"
    if not path.exists():
        pytest.skip(f"real mini-MIAS data not found at {path.parent} (set MAMMO_DATA_DIR)")
    outcome = _outcome(technologist, "mdb001.png", path.read_bytes(), patient_id="MIAS-1", laterality="R", view="MLO")
    assert outcome.status == "accepted", outcome


# ---- streaming uploads, size limits -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_oversized_request_is_refused_from_its_headers_before_the_body_is_read(technologist, client, settings):
    settings.MAMMO_MAX_REQUEST_BYTES = 10_000
    api = api_client_for(technologist)
    # The body is a few bytes; the header claims more than the limit: the answer must not wait for the body.
    response = api.generic(
        "POST", "/api/studies/", b"--x--", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="10001"
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]
    client.force_login(technologist)
    page = client.generic(
        "POST", "/studies/new/", b"--x--", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="999999"
    )
    assert page.status_code == 413 and b"Upload too large" in page.content
    assert not Study.objects.exists()


@pytest.mark.django_db
def test_a_file_over_the_limit_is_refused_by_name_and_never_fully_written(technologist, active_model, settings):
    good = make_dicom(sop_uid="1.9.1")
    settings.MAMMO_MAX_FILE_BYTES = len(good) + 10
    big = make_dicom(rows=512, columns=384, sop_uid="1.9.2")
    assert len(big) > settings.MAMMO_MAX_FILE_BYTES
    response = api_client_for(technologist).post(
        "/api/studies/",
        {"files": [SimpleUploadedFile("L_CC.dcm", good), SimpleUploadedFile("big.dcm", big)]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    outcomes = {o["filename"]: o for o in response.json()["files"]}
    assert outcomes["L_CC.dcm"]["status"] == "accepted"
    assert outcomes["big.dcm"]["code"] == "file_too_large"
    assert list(storage.incoming_dir().iterdir()) == []  # the streamed files were moved or removed


# ---- adding images to a study ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_images_cannot_be_added_once_reading_has_started(technologist, radiologist, active_model):
    from cases.reading.claims import read_claim

    study = study_upload(
        user=technologist, files=[IncomingFile.from_bytes("L_CC.dcm", make_dicom(sop_uid="1.9.3"))]
    ).study
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    read_claim(study_id=study.pk, user=radiologist)
    more = [IncomingFile.from_bytes("R_CC.dcm", make_dicom(sop_uid="1.9.4", laterality="R"))]
    with pytest.raises(ApplicationError, match="Reading of study .* has started"):
        study_upload(user=technologist, files=more, study=study)
    # The API says so too, and nothing is stored.
    response = api_client_for(technologist).post(
        f"/api/studies/{study.pk}/images/",
        {"files": [SimpleUploadedFile("R_CC.dcm", make_dicom(sop_uid="1.9.5", laterality="R"))]},
        format="multipart",
    )
    assert response.status_code == 400 and "has started" in response.json()["detail"]
    assert study.images.count() == 1 and Read.objects.count() == 1


@pytest.mark.django_db
def test_a_png_joins_an_existing_study_only_when_its_patient_is_confirmed(technologist, active_model):
    study = study_upload(
        user=technologist, files=[IncomingFile.from_bytes("L_CC.dcm", make_dicom(sop_uid="1.9.6", patient_id="W42"))]
    ).study
    unconfirmed = study_upload(user=technologist, files=[IncomingFile.from_bytes("R_CC.png", make_png())], study=study)
    assert unconfirmed.outcomes[0].code == "patient_unconfirmed" and "W42" in unconfirmed.outcomes[0].reason
    confirmed = study_upload(
        user=technologist, files=[IncomingFile.from_bytes("R_CC.png", make_png())], study=study, patient_id="W42"
    )
    assert confirmed.outcomes[0].status == "accepted"
    assert study.images.count() == 2


@pytest.mark.django_db
def test_the_same_dicom_instance_sent_again_is_acknowledged_not_stored_twice(technologist, active_model):
    first = make_dicom(sop_uid="1.9.7.1")
    # The same instance re-encoded by a PACS: other bytes, same SOP Instance UID.
    again = patch_dicom(first, InstitutionName="Re-sent by PACS")
    study_upload(user=technologist, files=[IncomingFile.from_bytes("a.dcm", first)])
    outcome = _outcome(technologist, "b.dcm", again)
    assert outcome.status == "duplicate" and "SOP Instance UID" in outcome.reason
    assert Image.objects.count() == 1


@pytest.mark.django_db
def test_a_cbis_ddsm_identifier_is_not_taken_for_the_womans_name(technologist, active_model):
    data = patch_dicom(
        make_dicom(sop_uid="1.9.8", patient_id="Mass-Test_P_00820_LEFT_CC"), PatientName="Mass-Test_P_00820_LEFT_CC"
    )
    study = study_upload(user=technologist, files=[IncomingFile.from_bytes("a.dcm", data)]).study
    assert study.patient.patient_id == "P_00820"
    assert study.patient.name == ""
    named = study_upload(
        user=technologist, files=[IncomingFile.from_bytes("b.dcm", make_dicom(sop_uid="1.9.9", patient_id="P77"))]
    ).study
    assert named.patient.name == "Test^Patient"


@pytest.mark.parametrize(
    ("attributes", "code"),
    [({}, "too_many_pixels"), ({"Modality": "CT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}, "not_a_mammogram")],
)
def test_a_dicom_its_header_rules_out_is_refused_before_its_pixel_data_is_read(settings, attributes, code):
    """Issue 9.3: a file refused from its header must not cost its size in memory (it used to be read whole and
    parsed before the check: about twice its size)."""
    import tracemalloc

    from cases.studies.preparation import file_prepare
    from imaging.decoding import ImageRejected

    settings.MAMMO_MAX_PIXELS = 2_000_000
    data = make_dicom(rows=2400, columns=1800)  # 4.3 Mpx of 16-bit pixels: 8.6 MB
    if attributes:
        settings.MAMMO_MAX_PIXELS = 60_000_000
        data = patch_dicom(data, **attributes)
    incoming = IncomingFile.from_bytes("big.dcm", data)
    tracemalloc.start()
    try:
        with pytest.raises(ImageRejected) as refused:
            file_prepare(incoming, laterality="", view="")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        incoming.discard()
    assert refused.value.code == code, refused.value.reason
    assert peak < len(data) / 8, f"{peak:,} bytes allocated to refuse a {len(data):,}-byte file"
