"""DICOMweb's study search (QIDO-RS /dicomweb/studies) at a site's size: candidate studies come from SQL in answer
order (images walked by key a chunk at a time, each study at its first image) and are built and matched a batch at a
time until the page is full. The answers must be exactly those of building and matching every study the user may see
(PS3.4 matching in cases.dicom.dicomweb.qido), in the same order, with the same paging; and a page must cost the same
number of queries whatever the archive's size."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from cases.dicom.dicomweb import index, qido
from cases.dicom.dicomweb.index import dicomweb_instances
from cases.models import Image, Study
from cases.scale_data import Mix, build_site
from inference.models import ModelVersion
from tests.conftest import make_user

QUERIES = (
    {},
    {"PatientID": "SCALE-1*"},
    {"PatientID": "SCALE-1?"},
    {"PatientName": "Woman 2*"},
    {"AccessionNumber": "ACC0000001?"},
    {"AccessionNumber": "*7"},
    {"StudyDate": "-"},
    {"ModalitiesInStudy": "MG"},
)


@pytest.fixture
def site(db, technologist, lead):
    readers = [make_user(Role.RADIOLOGIST, "rad"), make_user(Role.RADIOLOGIST, "ann")]
    version = ModelVersion.objects.create(
        name="scale-model", backbone="b0", input_size=64, file="x.keras", file_sha256="0" * 64,
        preprocessing_version="test", threshold=0.3, is_active=True, status="active",
    )  # fmt: skip

    def grow(n: int, start: int) -> None:
        build_site(
            n, technologist=technologist, readers=readers, lead=lead, model_version=version, mix=Mix(), start=start
        )

    return grow


def reference(user, keys: dict, *, limit: int, offset: int) -> list[dict]:
    """What the search answered before: every study the user may see built, matched, then paged."""
    found = dicomweb_instances(user=user)
    return qido.page(qido.studies(found, keys, base_url="http://x/dicomweb"), limit=limit, offset=offset)


def test_the_batched_study_search_answers_exactly_what_matching_every_study_answers(site, lead, monkeypatch):
    site(40, 0)
    monkeypatch.setattr(qido, "STUDY_SEARCH_BATCH", 3)  # many batches, pages across their edges
    monkeypatch.setattr(index, "STUDY_UID_CHUNK", 5)  # a study's four images split across the reads of the index
    dates = sorted(d for d in Study.objects.values_list("study_date", flat=True) if d)
    middle = dates[len(dates) // 2].strftime("%Y%m%d")
    uids = list(Image.objects.values_list("dicom_study_instance_uid", flat=True).distinct()[:3])
    queries = [
        *QUERIES,
        {"StudyDate": middle},
        {"StudyDate": f"{middle}-"},
        {"StudyDate": f"-{middle}"},
        {"StudyInstanceUID": ",".join(uids)},
        {"StudyInstanceUID": uids[1], "PatientID": "SCALE-*"},
    ]
    for keys in queries:
        for limit, offset in ((1000, 0), (5, 0), (5, 7), (4, 38), (10, 100)):
            got = qido.study_search(user=lead, keys=keys, limit=limit, offset=offset, base_url="http://x/dicomweb")
            assert got == reference(lead, keys, limit=limit, offset=offset), (keys, limit, offset)
    assert len(qido.study_search(user=lead, keys={}, limit=1000, offset=0, base_url="")) == 40


def test_a_page_of_the_study_search_costs_the_same_queries_for_a_small_and_a_larger_archive(site, lead, client):
    client.force_login(lead)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/dicomweb/studies?limit=5")
        assert response.status_code == 200
        assert len(response.json()) == 5
        return len(captured)

    site(10, 0)
    small = queries()
    site(60, 10)
    assert queries() == small
