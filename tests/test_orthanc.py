"""The Orthanc harness (tests/orthanc.py) the DICOM network tests rely on: it starts a private Orthanc, stores an
instance through the REST API, finds it again, and shuts down."""

from __future__ import annotations

from io import BytesIO

import pydicom
import pytest

from tests.dicom_factory import make_dicom
from tests.orthanc import Orthanc, orthanc_running


@pytest.fixture
def orthanc(tmp_path_factory):
    with orthanc_running(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


def test_it_starts_a_private_orthanc_that_stores_and_finds_an_instance(orthanc):
    data = make_dicom(patient_id="HARNESS-1", laterality="R")
    sent = pydicom.dcmread(BytesIO(data))
    answer = orthanc.upload(data)
    assert answer["Status"] == "Success"
    [found] = orthanc.find_instances(PatientID="HARNESS-1")
    assert found["MainDicomTags"]["SOPInstanceUID"] == sent.SOPInstanceUID
    back = pydicom.dcmread(BytesIO(orthanc.instance_file(found["ID"])))
    assert (back.pixel_array == sent.pixel_array).all()
    system = orthanc.get("/system")
    assert system["DicomAet"] == orthanc.aet and system["DicomPort"] == orthanc.dicom_port
    plugins = orthanc.get("/plugins")
    assert "dicom-web" in plugins
    assert orthanc.get("/dicom-web/studies") != []  # the DICOMweb plugin answers QIDO-RS


def test_two_servers_do_not_share_anything(tmp_path_factory):
    first, second = (Orthanc(workdir=tmp_path_factory.mktemp("pacs")) for _ in range(2))
    first.start()
    second.start()
    try:
        first.upload(make_dicom(patient_id="ONLY-IN-FIRST"))
        assert first.find_instances(PatientID="ONLY-IN-FIRST")
        assert second.find_instances(PatientID="ONLY-IN-FIRST") == []
        assert {first.http_port, first.dicom_port}.isdisjoint({second.http_port, second.dicom_port})
    finally:
        first.stop()
        second.stop()
    assert first.process.returncode is not None and second.process.returncode is not None
