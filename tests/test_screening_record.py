"""What the mammographer records (cases/screening/records.py): the forms and their errors, the rules (expected
views, repeats, an incomplete exam), and where readers see it: the reading and arbitration pages (before the
images), the study page and the study API."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.roles import Role
from audit.models import AuditEvent
from cases.models import Appointment, MammographerRecord, PreviousSurgery, Read, Study, Symptom
from cases.reading import claims
from cases.reading import services as reading
from cases.screening import records
from cases.screening.appointments import appointment_check_in
from cases.screening.records import ViewTaken, expected_views, symptom_quadrant
from cases.studies.ingestion import IncomingFile, study_upload
from core.errors import ApplicationError
from tests.conftest import api_client_for, make_user
from tests.screening_factory import book, mammogram
from tests.test_reading import both

pytestmark = pytest.mark.django_db


@pytest.fixture
def appointment(technologist):
    appointment = book(technologist)
    return appointment_check_in(appointment_id=appointment.pk, user=technologist, identity_confirmed=True)


def url(appointment, tail: str = "") -> str:
    return f"/clinic/appointments/{appointment.pk}/{tail}"


def test_symptoms_are_recorded_with_side_and_position_and_drawn_on_the_diagram(client, technologist, appointment):
    client.force_login(technologist)
    refused = client.post(url(appointment, "record/symptoms/"), {"symptom-kind": "lump", "symptom-laterality": "R",
                                                                 "symptom-area": "clock"})  # fmt: skip
    text = refused.content.decode()
    assert refused.status_code == 400 and "Give the clock position" in text
    assert 'href="#id_symptom-clock_hour"' in text  # the error summary links to the field
    client.post(url(appointment, "record/symptoms/"), {
        "symptom-kind": "lump", "symptom-laterality": "R", "symptom-area": "clock", "symptom-clock_hour": "10",
        "symptom-distance_cm": "3", "symptom-onset": "under_3_months", "symptom-description": "hard, fixed",
    })  # fmt: skip
    client.post(url(appointment, "record/symptoms/"), {"symptom-kind": "nipple_change", "symptom-laterality": "L",
                                                       "symptom-area": "central"})  # fmt: skip
    refused = client.post(url(appointment, "record/symptoms/"), {"symptom-kind": "other", "symptom-laterality": "L",
                                                                 "symptom-area": "axilla"})  # fmt: skip
    assert refused.status_code == 400 and "Describe the symptom." in refused.content.decode()
    lump, nipple = Symptom.objects.order_by("pk")
    assert (lump.laterality, lump.clock_hour, float(lump.distance_cm)) == ("R", 10, 3.0)
    assert nipple.clock_hour is None
    page = client.get(url(appointment)).content.decode()
    assert "Lump, right breast, 10 o&#x27;clock (upper outer quadrant), 3 cm from the nipple, for less than 3 " \
           "months: hard, fixed" in page  # fmt: skip
    assert page.count('class="marker"') == 2 and "data-diagram-input" in page
    assert "<script>" not in page and " style=" not in page  # the strict CSP: no inline code
    assert AuditEvent.objects.filter(action="appointment.record_changed", details__what="symptom_added").count() == 2
    response = client.post(url(appointment, f"record/symptoms/{nipple.pk}/remove/"))
    assert response.status_code == 302 and list(Symptom.objects.all()) == [lump]


@pytest.mark.parametrize(
    ("side", "hour", "quadrant"),
    [("R", 10, "upper outer quadrant"), ("R", 2, "upper inner quadrant"), ("L", 2, "upper outer quadrant"),
     ("L", 8, "lower inner quadrant"), ("R", 7, "lower outer quadrant"), ("L", 9, "inner, on the horizontal"),
     ("R", 12, "upper, on the midline"), ("R", 6, "lower, on the midline")],
)  # fmt: skip
def test_a_clock_position_names_its_quadrant_as_the_examiner_faces_her(side, hour, quadrant):
    assert symptom_quadrant(Symptom(laterality=side, area="clock", clock_hour=hour)) == quadrant


def test_implants_and_a_mastectomy_change_the_views_expected(technologist, appointment):
    assert expected_views(None).keys == ("R-CC", "L-CC", "R-MLO", "L-MLO")
    record = records.record_history_save(appointment_id=appointment.pk, user=technologist, implants="B",
                                         previous_mammograms_elsewhere=False, previous_mammograms_details="",
                                         special_needs="")  # fmt: skip
    expected = expected_views(record)
    assert expected.image_count == 8 and "R-CC-ID" in expected.keys and "implant-displaced" in expected.note
    records.record_surgery_add(appointment_id=appointment.pk, user=technologist, kind=PreviousSurgery.Kind.MASTECTOMY,
                               laterality="L", year=2019, details="")  # fmt: skip
    expected = expected_views(MammographerRecord.objects.get())
    assert expected.keys == ("R-CC", "R-MLO", "R-CC-ID", "R-MLO-ID") and expected.pairs == {("R", "CC"), ("R", "MLO")}


def test_images_taken_repeats_need_reasons_and_a_missing_view_an_incomplete_exam(client, technologist, appointment):
    client.force_login(technologist)
    data = {f"images-{k}-taken": "1" for k in ("R-CC", "L-CC", "R-MLO", "L-MLO")}
    data |= {f"images-{k}-repeats": "0" for k in ("R-CC", "L-CC", "R-MLO", "L-MLO")}
    refused = client.post(url(appointment, "record/images/"), {**data, "images-R-MLO-taken": "2",
                                                                "images-R-MLO-repeats": "1"})  # fmt: skip
    assert refused.status_code == 400 and "RMLO: give the reason for the repeat." in refused.content.decode()
    refused = client.post(url(appointment, "record/images/"), {**data, "images-L-MLO-taken": "0"})
    assert refused.status_code == 400 and "No LMLO image: mark the exam incomplete and say why." in (
        refused.content.decode()
    )
    refused = client.post(url(appointment, "record/images/"), {**data, "images-L-CC-repeats": "1"})
    assert "repeats are among the images taken" in refused.content.decode()
    done = client.post(url(appointment, "record/images/"), {
        **data, "images-R-MLO-taken": "2", "images-R-MLO-repeats": "1", "images-R-MLO-repeat_reason": "movement",
        "images-L-MLO-taken": "0", "images-incomplete": "on", "images-incomplete_reason": "Shoulder pain: no LMLO",
    })  # fmt: skip
    assert done.status_code == 302
    record = MammographerRecord.objects.get()
    assert record.images_taken["R-MLO"] == {"taken": 2, "repeats": 1, "repeat_reason": "movement",
                                            "repeat_detail": ""}  # fmt: skip
    assert record.exam_incomplete and record.incomplete_reason == "Shoulder pain: no LMLO"


def test_the_forms_need_the_csrf_token(technologist, appointment):
    client = Client(enforce_csrf_checks=True)
    client.force_login(technologist)
    response = client.post(url(appointment, "record/history/"), {"history-implants": "B"})
    assert response.status_code == 403 and not MammographerRecord.objects.exists()


def test_the_record_is_refused_before_check_in_and_frozen_once_reading_starts(technologist):
    appointment = book(technologist)
    with pytest.raises(ApplicationError, match="check the woman in"):
        records.record_symptom_add(
            appointment_id=appointment.pk, user=technologist, kind="pain", laterality="L", area="whole",
            clock_hour=None, distance_cm=None, onset="", description="",
        )  # fmt: skip
    study = _appointment_study(technologist, appointment)
    claims.read_claim(study_id=study.pk, user=make_user(Role.RADIOLOGIST, "r1"))
    with pytest.raises(ApplicationError, match="Reading of her images has started"):
        records.record_history_save(appointment_id=appointment.pk, user=technologist, implants="",
                                    previous_mammograms_elsewhere=False, previous_mammograms_details="",
                                    special_needs="")  # fmt: skip


def _appointment_study(user, appointment: Appointment) -> Study:
    files = [IncomingFile.from_bytes(f"{side}{view}.dcm", mammogram(accession=appointment.accession_number,
                                                                   side=side, view=view))
             for side, view in (("R", "CC"), ("L", "CC"))]  # fmt: skip
    study = study_upload(user=user, files=files).study
    assert study.appointment_id == appointment.pk and study.episode_id == appointment.episode_id
    Study.objects.filter(pk=study.pk).update(status=Study.Status.AWAITING_READS)
    study.refresh_from_db()
    return study


def _record_everything(user, appointment):
    records.record_history_save(appointment_id=appointment.pk, user=user, implants="R",
                                previous_mammograms_elsewhere=True, previous_mammograms_details="Leeds, 2023",
                                special_needs="Wheelchair user")  # fmt: skip
    records.record_symptom_add(appointment_id=appointment.pk, user=user, kind="lump", laterality="L", area="clock",
                               clock_hour=2, distance_cm=None, onset="", description="")  # fmt: skip
    records.record_surgery_add(appointment_id=appointment.pk, user=user, kind="lumpectomy", laterality="L",
                               year=2015, details="")  # fmt: skip
    views = [ViewTaken(key=k, taken=1) for k in ("R-CC", "L-CC", "R-MLO", "L-MLO", "R-CC-ID")]
    records.record_images_taken(appointment_id=appointment.pk, user=user, views=[*views, ViewTaken("R-MLO-ID", 0)],
                                incomplete=True, incomplete_reason="Implant MLO not tolerated")  # fmt: skip


def test_readers_see_the_record_before_the_images_on_the_reading_and_arbitration_pages(client, technologist, lead,
                                                                                       appointment):  # fmt: skip
    study = _appointment_study(technologist, appointment)
    _record_everything(technologist, appointment)
    ann, ben = make_user(Role.RADIOLOGIST, "ann"), make_user(Role.RADIOLOGIST, "ben")
    read = claims.read_claim(study_id=study.pk, user=ann)
    client.force_login(ann)
    page = client.get(f"/reading/reads/{read.pk}/").content.decode()
    panel = page.index("What the mammographer recorded")
    assert panel < page.index('class="reading-workspace"')
    for shown in (
        "Lump, left breast, 2 o&#x27;clock (upper outer quadrant)",
        "Implants (right breast)",
        "Incomplete exam",
        "Implant MLO not tolerated",
        "Lumpectomy (breast-conserving surgery) (left, 2015)",
        "Yes: Leeds, 2023",
        "Wheelchair user",
        "implant-displaced views expected",
        "identity confirmed",
    ):
        assert shown in page, shown  # fmt: skip
    assert " style=" not in page[panel : page.index('class="reading-workspace"')]
    assert "{#" not in page and "{%" not in page  # no template comment or tag leaks into the page
    reading.read_submit(read_id=read.pk, user=ann, assessments=both(recall_left=True), comments="", density="b")
    second = claims.read_claim(study_id=study.pk, user=ben)
    reading.read_submit(read_id=second.pk, user=ben, assessments=both(), comments="", density="b")
    client.force_login(lead)
    page = client.get(f"/reading/studies/{study.pk}/arbitrate/").content.decode()
    assert page.index("What the mammographer recorded") < page.index('class="reading-workspace"')


def test_the_study_page_and_api_show_the_record_to_clinical_roles_only(client, technologist, radiologist, auditor,
                                                                     appointment):  # fmt: skip
    study = _appointment_study(technologist, appointment)
    _record_everything(technologist, appointment)
    client.force_login(radiologist)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "What the mammographer recorded" in page and appointment.accession_number in page
    body = api_client_for(radiologist).get(f"/api/studies/{study.pk}/").json()
    record = body["screening"]["mammographer_record"]
    assert body["screening"]["appointment"]["accession_number"] == appointment.accession_number
    assert record["implants"] == "R" and record["implant_displaced_views_expected"] is True
    assert record["symptoms"][0]["quadrant"] == "upper outer quadrant" and record["exam_incomplete"] is True
    assert record["expected_views"] == ["R-CC", "L-CC", "R-MLO", "L-MLO", "R-CC-ID", "R-MLO-ID"]
    assert api_client_for(auditor).get(f"/api/studies/{study.pk}/").status_code == 403
    client.force_login(auditor)
    assert client.get(f"/studies/{study.pk}/").status_code == 403
    # A study of no appointment says so: no record, no panel.
    plain = study_upload(user=technologist, files=[IncomingFile.from_bytes("x.dcm", mammogram(accession=""))]).study
    assert api_client_for(radiologist).get(f"/api/studies/{plain.pk}/").json()["screening"] is None
    assert Read.objects.count() == 0
