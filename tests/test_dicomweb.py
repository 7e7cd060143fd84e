"""DICOMweb at /dicomweb/ on a live server: an off-the-shelf client (dicomweb-client) and Orthanc's DICOMweb plugin
store, search and retrieve with the platform's tokens; every role gets its answer; PS3.18 statuses and JSON."""

from __future__ import annotations

import json
from io import BytesIO

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import RLELossless

from accounts.roles import Role
from tests.conftest import make_user
from tests.dicom_factory import make_dicom, make_sr_dicom
from tests.orthanc import orthanc_running

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def orthanc(tmp_path_factory):
    with orthanc_running(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


def token_of(user) -> str:
    from accounts.tokens import token_issue

    return token_issue(user=user, address="127.0.0.1")[1]


def client_for(live_server, user) -> DICOMwebClient:
    return DICOMwebClient(url=f"{live_server.url}/dicomweb", headers={"Authorization": f"Token {token_of(user)}"})


def dataset(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(data))


def test_an_off_the_shelf_client_stores_searches_and_retrieves(live_server):
    from cases.models import Image

    technologist = make_user(Role.TECHNOLOGIST)
    client = client_for(live_server, technologist)
    views = [dataset(make_dicom(laterality=s, study_uid="1.2.3.4.700", patient_id="W-700")) for s in "LR"]
    compressed = dataset(make_dicom(laterality="L", view="MLO", study_uid="1.2.3.4.700", patient_id="W-700",
                                    transfer_syntax=RLELossless))  # fmt: skip
    answer = client.store_instances([*views, compressed])
    stored = {item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence}
    assert stored == {str(ds.SOPInstanceUID) for ds in [*views, compressed]}
    assert "FailedSOPSequence" not in answer
    assert Image.objects.filter(study__patient__patient_id="W-700").count() == 3
    assert Image.objects.first().uploaded_by == technologist  # the authenticated user, not a service account

    [study] = client.search_for_studies(search_filters={"PatientID": "W-700"})
    assert study["0020000D"]["Value"] == ["1.2.3.4.700"]
    assert study["00201208"]["Value"] == [3]  # NumberOfStudyRelatedInstances
    assert client.search_for_studies(search_filters={"PatientID": "W-7*"}) == [study]
    assert client.search_for_studies(search_filters={"PatientID": "nobody"}) == []
    series = client.search_for_series(study_instance_uid="1.2.3.4.700")  # the factory gives each image a series
    assert {s["0020000E"]["Value"][0] for s in series} == {str(ds.SeriesInstanceUID) for ds in [*views, compressed]}
    assert {s["00201209"]["Value"][0] for s in series} == {1}  # NumberOfSeriesRelatedInstances
    instances = client.search_for_instances(study_instance_uid="1.2.3.4.700")
    assert {i["00080018"]["Value"][0] for i in instances} == stored

    # As stored ('*'), and by default decompressed to Explicit VR Little Endian, pixel for pixel the same.
    kwargs = {"study_instance_uid": "1.2.3.4.700", "series_instance_uid": str(compressed.SeriesInstanceUID),
              "sop_instance_uid": str(compressed.SOPInstanceUID)}  # fmt: skip
    as_stored = client.retrieve_instance(**kwargs, media_types=(("application/dicom", "*"),))
    assert as_stored.file_meta.TransferSyntaxUID == RLELossless
    plain = client.retrieve_instance(**kwargs, media_types=(("application/dicom", "1.2.840.10008.1.2.1"),))
    assert plain.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (plain.pixel_array == compressed.pixel_array).all() and (as_stored.pixel_array == plain.pixel_array).all()
    metadata = client.retrieve_instance_metadata(**kwargs)  # the instance's JSON dataset
    assert metadata["00080018"]["Value"] == [str(compressed.SOPInstanceUID)] and "7FE00010" not in metadata


def test_stow_reports_each_instance_and_answers_202_when_some_failed(live_server):
    client = client_for(live_server, make_user(Role.RADIOLOGIST))
    good = dataset(make_dicom(study_uid="1.2.3.4.701"))
    report = dataset(make_sr_dicom())
    multi_frame = dataset(make_dicom(frames=3, study_uid="1.2.3.4.701"))
    url = f"{live_server.url}/dicomweb/studies"
    body, content_type = _multipart([good, report, multi_frame])
    response = requests.post(url, data=body, headers={"Content-Type": content_type, "Accept": "application/dicom+json",
                                                       **client._session.headers}, timeout=60)  # fmt: skip
    assert response.status_code == 202 and response.headers["Content-Type"] == "application/dicom+json"
    answer = pydicom.Dataset.from_json(response.json())
    assert [i.ReferencedSOPInstanceUID for i in answer.ReferencedSOPSequence] == [good.SOPInstanceUID]
    failures = {i.ReferencedSOPInstanceUID: i.FailureReason for i in answer.FailedSOPSequence}
    assert failures == {report.SOPInstanceUID: 0x0122, multi_frame.SOPInstanceUID: 0xA900}
    # The same instance again: acknowledged (stored once), so nothing failed: 200.
    body, content_type = _multipart([good])
    again = requests.post(url, data=body, headers={"Content-Type": content_type, **client._session.headers}, timeout=60)
    assert again.status_code == 200
    # Nothing stored at all: 409.
    body, content_type = _multipart([report])
    refused = requests.post(url, data=body, headers={"Content-Type": content_type, **client._session.headers},
                            timeout=60)  # fmt: skip
    assert refused.status_code == 409
    wrong_type = requests.post(url, data=b"{}", headers={"Content-Type": "application/json", **client._session.headers},
                               timeout=60)  # fmt: skip
    assert wrong_type.status_code == 415


@pytest.mark.parametrize(
    ("role", "search", "store"), [(Role.AUDITOR, 403, 403), (Role.ADMIN, 403, 403), (Role.TECHNOLOGIST, 204, 415)]
)
def test_roles_decide_who_may_search_and_store(live_server, role, search, store):
    headers = {"Authorization": f"Token {token_of(make_user(role))}"}
    assert requests.get(f"{live_server.url}/dicomweb/studies", headers=headers, timeout=30).status_code == search
    response = requests.post(f"{live_server.url}/dicomweb/studies", data=b"x", timeout=30,
                             headers={**headers, "Content-Type": "text/plain"})  # fmt: skip
    assert response.status_code == store


def test_without_a_token_nothing_is_answered(live_server):
    for method, path in (("get", "/dicomweb/studies"), ("post", "/dicomweb/studies"),
                         ("get", "/dicomweb/studies/1.2.3/series/1.2/instances/1.2.3.4")):  # fmt: skip
        response = requests.request(method, f"{live_server.url}{path}", timeout=30, allow_redirects=False)
        assert response.status_code in (401, 403), (path, response.status_code)
        assert response.headers["Content-Type"].startswith("application/json")
    bad = requests.get(f"{live_server.url}/dicomweb/studies", headers={"Authorization": "Token nonsense"}, timeout=30)
    assert bad.status_code == 401


@pytest.fixture
def web_server(settings, tmp_path):
    from tests.dicom_network import WebServer, database_env

    server = WebServer(env=database_env(settings), workdir=tmp_path)
    server.start()
    yield server
    server.stop()


def test_orthanc_stores_into_the_platform_over_stow_rs(web_server, orthanc):
    from cases.models import Image

    live_server = web_server
    technologist = make_user(Role.TECHNOLOGIST)
    uploaded = [orthanc.upload(make_dicom(laterality=s, study_uid="1.2.3.4.702", patient_id="W-702")) for s in "LR"]
    orthanc.json_request(
        "PUT", "/dicom-web/servers/mammo",
        {"Url": f"{live_server.url}/dicomweb/", "HttpHeaders": {"Authorization": f"Token {token_of(technologist)}"}},
    )  # fmt: skip
    result = orthanc.json_request(
        "POST", "/dicom-web/servers/mammo/stow", {"Resources": [uploaded[0]["ParentStudy"]], "Synchronous": True}
    )
    assert result is None or "FailedInstancesCount" not in result or result["FailedInstancesCount"] == 0, result
    assert Image.objects.filter(study__patient__patient_id="W-702").count() == 2
    # Orthanc's DICOMweb client can search the platform too.
    found = orthanc.json_request(
        "POST", "/dicom-web/servers/mammo/get", {"Uri": "/studies", "Arguments": {"PatientID": "W-702"}}
    )
    assert [study["0020000D"]["Value"][0] for study in found] == ["1.2.3.4.702"]


def test_qido_refuses_a_malformed_date_and_warns_about_unsupported_keys(live_server):
    headers = {"Authorization": f"Token {token_of(make_user(Role.RADIOLOGIST))}"}
    bad = requests.get(f"{live_server.url}/dicomweb/studies?StudyDate=2024-13", headers=headers, timeout=30)
    assert bad.status_code == 400 and "date" in bad.json()["detail"]
    odd = requests.get(f"{live_server.url}/dicomweb/studies?ReferringPhysicianName=X", headers=headers, timeout=30)
    assert odd.status_code == 204 and "ReferringPhysicianName" in odd.headers["Warning"]


def _multipart(datasets) -> tuple[bytes, str]:
    boundary = "mammo-test-boundary"
    chunks = []
    for ds in datasets:
        out = BytesIO()
        ds.save_as(out, enforce_file_format=True)
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), out.getvalue(), b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}'


def test_json_model_is_valid_dicom_json(live_server):
    """Every QIDO answer converts back into a pydicom Dataset (PS3.18 Annex F)."""
    client = client_for(live_server, make_user(Role.RADIOLOGIST))
    client.store_instances([dataset(make_dicom(study_uid="1.2.3.4.703"))])
    for answer in client.search_for_instances(study_instance_uid="1.2.3.4.703"):
        ds = pydicom.Dataset.from_json(json.dumps(answer))
        # dicomweb-client sends its Host header without the port, and the URL follows the Host header.
        assert ds.StudyInstanceUID == "1.2.3.4.703"
        assert ds.RetrieveURL.endswith(f"/dicomweb/studies/1.2.3.4.703/series/{ds.SeriesInstanceUID}/instances/"
                                       f"{ds.SOPInstanceUID}")  # fmt: skip
