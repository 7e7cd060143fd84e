"""A study's images as people meet them: in mammography's reading order (RCC, LCC, RMLO, LMLO, then other views)
on the study page, the worklist, the reading page's image list, the API and the DICOM study report; and the
"Add images" form offered only while the study still takes images."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.roles import Role
from cases.models import Image, Read, Study
from cases.models.clinical import image_reading_key
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.presenters import image_items, worklist_rows, worklist_studies
from cases.reading.worklist import Queue, WorklistQuery
from cases.studies.ingestion import IncomingFile, study_upload
from tests.conftest import api_client_for, make_user
from tests.dicom_factory import make_dicom
from tests.test_reading import both

# Uploaded in an order that is none of the orders a sort by name gives.
UPLOAD_ORDER = (("L", "MLO"), ("R", "ML"), ("L", "CC"), ("R", "MLO"), ("R", "CC"))
READING_ORDER = ["R CC", "L CC", "R MLO", "L MLO", "R ML"]


def _exam(user, *, tag: str = "7") -> Study:
    files = [
        IncomingFile.from_bytes(
            f"{side}_{view}.dcm",
            make_dicom(sop_uid=f"3.{tag}.{i}", laterality=side, view=view, patient_id=f"ORDER-{tag}"),
        )
        for i, (side, view) in enumerate(UPLOAD_ORDER)
    ]
    result = study_upload(user=user, files=files)
    assert result.study is not None, [(o.filename, o.reason) for o in result.outcomes]
    assert result.study.images.count() == len(UPLOAD_ORDER)
    return result.study


def _names(images) -> list[str]:
    return [f"{image.laterality} {image.view}" for image in images]


@pytest.mark.django_db
def test_images_are_in_reading_order_in_queries_and_in_memory(technologist):
    study = _exam(technologist)
    assert _names(study.images.all()) == READING_ORDER
    assert _names(Image.objects.filter(study=study)) == READING_ORDER
    shuffled = sorted(study.images.all(), key=lambda image: image.pk, reverse=True)
    assert _names(sorted(shuffled, key=image_reading_key)) == READING_ORDER
    assert _names(item["image"] for item in image_items(user=technologist, study=study, reads=[], show_ai=False)) == (
        READING_ORDER
    )


@pytest.mark.django_db
def test_the_study_page_and_the_api_list_the_images_in_reading_order(client, technologist, radiologist):
    study = _exam(technologist)
    by_pk = {image.pk: f"{image.laterality} {image.view}" for image in study.images.all()}
    client.force_login(radiologist)
    html = client.get(reverse("cases:study_detail", args=[study.pk])).content.decode()
    on_page = [by_pk[int(pk)] for pk in re.findall(r'<article class="thumb" data-image="(\d+)"', html)]
    assert on_page == READING_ORDER
    api = api_client_for(radiologist)
    detail = api.get(f"/api/studies/{study.pk}/").json()
    assert [f"{i['laterality']} {i['view']}" for i in detail["images"]] == READING_ORDER


@pytest.mark.django_db
def test_the_worklist_names_the_views_in_reading_order(technologist, radiologist):
    study = _exam(technologist)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    query = WorklistQuery(queue=Queue.AWAITING_FIRST)
    studies = worklist_studies(user=radiologist, query=query)
    row = next(row for row in worklist_rows(user=radiologist, query=query, studies=studies) if row.study.pk == study.pk)
    assert row.views == READING_ORDER


# ------------------------------------------------------------------------------------------------- add images


def _add_images_offered(client, study: Study) -> bool:
    html = client.get(reverse("cases:study_detail", args=[study.pk])).content.decode()
    return reverse("cases:study_add_images", args=[study.pk]) in html or "Add images" in html


@pytest.mark.django_db
def test_add_images_is_offered_only_while_the_study_takes_images(client, technologist):
    ann, ben = make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")
    study = _exam(technologist, tag="8")
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    client.force_login(technologist)
    assert _add_images_offered(client, study)

    first = claims.read_claim(study_id=study.pk, user=ann)
    html = client.get(reverse("cases:study_detail", args=[study.pk])).content.decode()
    assert not _add_images_offered(client, study)
    assert "images can no longer be added" in html and "new study" in html  # the service's own reason, and a way on

    reading.read_submit(density="b", read_id=first.pk, user=ann, assessments=both())
    second = claims.read_claim(study_id=study.pk, user=ben)
    reading.read_submit(density="b", read_id=second.pk, user=ben, assessments=both())
    study.refresh_from_db()
    assert study.status == Study.Status.FINAL
    assert not _add_images_offered(client, study)
    assert Read.objects.filter(study=study).count() == 2
