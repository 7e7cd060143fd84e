"""Episodes and appointments (cases/screening): booking, the state machine, immutable status rows, check-in, the
day's clinic list (page and API) and who may do what."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import DatabaseError, transaction

from audit.models import AuditEvent
from cases.models import Appointment, AppointmentStatusChange, Patient
from cases.screening.appointments import (
    appointment_cancel,
    appointment_check_in,
    appointment_outcome_record,
    appointment_transition,
)
from core.errors import ApplicationError
from tests.conftest import api_client_for
from tests.screening_factory import at, book

pytestmark = pytest.mark.django_db
Status = Appointment.Status


def test_it_books_an_appointment_with_its_accession_number_and_first_status_row(technologist, settings):
    settings.SCREENING_ACCESSION_PREFIX = "LDS"
    appointment = book(technologist)
    assert appointment.accession_number == f"LDS{appointment.pk:08d}" and len(appointment.accession_number) <= 16
    assert appointment.status == Status.SCHEDULED and appointment.study_instance_uid
    woman = appointment.episode.patient
    assert (woman.patient_id, woman.name, woman.birth_date, woman.sex) == ("9434765919", "Jones^Ada",
                                                                         date(1968, 4, 2), "F")  # fmt: skip
    [row] = appointment.status_changes.all()
    assert (row.from_status, row.to_status, row.changed_by, row.reason) == ("", Status.SCHEDULED, technologist,
                                                                          "Booked")  # fmt: skip
    event = AuditEvent.objects.get(action="appointment.scheduled")
    assert event.details["accession_number"] == appointment.accession_number and event.actor_id == technologist.pk


def test_a_woman_has_one_active_appointment_and_is_rebooked_in_her_episode_after_a_missed_one(technologist):
    first = book(technologist)
    with pytest.raises(ApplicationError, match="already has an appointment"):
        book(technologist, starts_at=at(11))
    appointment_outcome_record(appointment_id=first.pk, user=technologist, outcome=Status.DID_NOT_ATTEND)
    second = book(technologist, starts_at=at(10, days=7))
    assert second.episode_id == first.episode_id  # rebooked, not a new episode
    appointment_check_in(appointment_id=second.pk, user=technologist, identity_confirmed=True)
    appointment_outcome_record(appointment_id=second.pk, user=technologist, outcome=Status.SCREENED)
    third = book(technologist, starts_at=at(10, days=3 * 365))
    assert third.episode_id != first.episode_id  # screened: the next round is a new episode
    assert third.accession_number not in (first.accession_number, second.accession_number)


def test_a_booking_is_never_put_on_a_woman_recorded_with_another_name_or_birth_date(technologist):
    Patient.objects.create(patient_id="9434765919", name="Smith^Jane", birth_date=date(1970, 1, 1))
    with pytest.raises(ApplicationError, match="already recorded with name Smith.Jane and date of birth"):
        book(technologist)
    assert not Appointment.objects.exists()
    # A woman known only by her ID (images came first, without a name) gets the typed details.
    Patient.objects.create(patient_id="P-2")
    appointment = book(technologist, patient_id="P-2")
    assert appointment.episode.patient.name == "Jones^Ada"


@pytest.mark.parametrize("start", list(Status))
def test_the_state_machine_makes_only_its_moves(technologist, start):
    for target in Status:
        appointment = book(technologist, patient_id=f"W-{start}-{target}")
        Appointment.objects.filter(pk=appointment.pk).update(status=start)  # set up the starting state directly
        allowed = target in Appointment.ALLOWED[start] or target == start
        try:
            appointment_transition(appointment_id=appointment.pk, to=target, user=technologist, reason="why")
        except ApplicationError:
            assert not allowed, f"{start} -> {target} was refused"
        else:
            assert allowed, f"{start} -> {target} was allowed"
        Appointment.objects.filter(pk=appointment.pk).update(status=Status.CANCELLED)  # free the woman's slot


def test_statuses_that_need_a_reason_are_refused_without_one(technologist):
    appointment = book(technologist)
    with pytest.raises(ApplicationError, match="Say why the appointment is cancelled"):
        appointment_cancel(appointment_id=appointment.pk, user=technologist, reason="  ")
    appointment_check_in(appointment_id=appointment.pk, user=technologist, identity_confirmed=True)
    for outcome in (Status.PARTIALLY_SCREENED, Status.ATTENDED_NOT_SCREENED):
        with pytest.raises(ApplicationError, match="Say why"):
            appointment_outcome_record(appointment_id=appointment.pk, user=technologist, outcome=outcome)
    appointment_outcome_record(appointment_id=appointment.pk, user=technologist, outcome=Status.PARTIALLY_SCREENED,
                               reason="She asked to stop after the CC views")  # fmt: skip
    rows = list(appointment.status_changes.values_list("from_status", "to_status", "reason"))
    assert rows == [("", "scheduled", "Booked"), ("scheduled", "checked_in", "Identity confirmed"),
                    ("checked_in", "partially_screened", "She asked to stop after the CC views")]  # fmt: skip
    assert AuditEvent.objects.filter(action="appointment.status_changed").count() == 2


def test_status_rows_cannot_be_changed_or_removed_by_the_model_nor_the_database(technologist):
    appointment = book(technologist)
    row = appointment.status_changes.get()
    row.reason = "rewritten"
    with pytest.raises(ValueError, match="immutable"):
        row.save()
    with pytest.raises(ValueError, match="immutable"):
        row.delete()
    for attempt in (
        lambda: AppointmentStatusChange.objects.filter(pk=row.pk).update(reason="rewritten"),
        lambda: AppointmentStatusChange.objects.filter(pk=row.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert AppointmentStatusChange.objects.get(pk=row.pk).reason == "Booked"


def test_checking_in_needs_her_identity_confirmed(technologist):
    appointment = book(technologist)
    with pytest.raises(ApplicationError, match="Confirm the woman's identity"):
        appointment_check_in(appointment_id=appointment.pk, user=technologist, identity_confirmed=False)
    appointment = appointment_check_in(appointment_id=appointment.pk, user=technologist, identity_confirmed=True)
    assert appointment.status == Status.CHECKED_IN and appointment.identity_confirmed_by == technologist


# --- Pages and API --------------------------------------------------------------------------------------------


def test_the_clinic_list_shows_the_days_appointments_by_site(client, technologist):
    morning = book(technologist, starts_at=at(9, 15))
    book(technologist, patient_id="P-22", family_name="Khan", starts_at=at(10, 45), site="Hospital")
    book(technologist, patient_id="P-33", family_name="Tomorrow", starts_at=at(9, days=1))
    client.force_login(technologist)
    page = client.get("/clinic/").content.decode()
    assert "Jones^Ada" in page and "Khan" in page and "Tomorrow" not in page
    assert page.index("09:15") < page.index("10:45") and morning.accession_number in page
    page = client.get("/clinic/", {"site": "Hospital"}).content.decode()
    assert "Khan" in page and "Jones^Ada" not in page
    tomorrow = at(9, days=1).date().isoformat()
    assert "Tomorrow" in client.get("/clinic/", {"date": tomorrow}).content.decode()
    assert client.get("/").headers["Location"] == "/clinic/"  # the mammographer starts on today's clinic

    body = api_client_for(technologist).get("/api/appointments/", {"site": "Leeds mobile 1"}).json()
    assert [(a["accession_number"], a["status"], a["patient_id"]) for a in body] == [
        (morning.accession_number, "scheduled", "9434765919")
    ]


def test_a_technologist_books_checks_in_and_records_the_outcome_on_the_pages(client, technologist):
    client.force_login(technologist)
    refused = client.post("/clinic/appointments/new/", {"patient_id": "", "family_name": "Jones", "day": "x"})
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "There is a problem" in text and 'href="#id_patient_id"' in text and "Enter a valid date." in text
    response = client.post("/clinic/appointments/new/", {
        "patient_id": "9434765919", "family_name": "Jones", "given_name": "Ada", "birth_date": "1968-04-02",
        "day": at(9).date().isoformat(), "time": "09:30", "site": "Leeds mobile 1", "station_ae_title": "mg_room_1",
    })  # fmt: skip
    appointment = Appointment.objects.get()
    assert response.status_code == 302 and response.headers["Location"] == f"/clinic/appointments/{appointment.pk}/"
    assert appointment.station_ae_title == "MG_ROOM_1"
    url = f"/clinic/appointments/{appointment.pk}/"
    refused = client.post(url + "check-in/", {})
    assert refused.status_code == 400 and "Confirm her identity" in refused.content.decode()
    assert client.post(url + "check-in/", {"checkin-identity_confirmed": "on"}).status_code == 302
    refused = client.post(url + "outcome/", {"outcome-outcome": "attended_not_screened"})
    assert refused.status_code == 400 and "Say why" in refused.content.decode()
    client.post(url + "outcome/", {"outcome-outcome": "attended_not_screened", "outcome-reason": "Too anxious"})
    appointment.refresh_from_db()
    assert appointment.status == Status.ATTENDED_NOT_SCREENED
    page = client.get(url).content.decode()
    assert "Too anxious" in page and "Identity confirmed" in page  # the status history, row by row


def test_leads_book_and_cancel_but_only_technologists_attend(client, lead, technologist):
    appointment = book(lead)
    client.force_login(lead)
    url = f"/clinic/appointments/{appointment.pk}/"
    assert client.get(url).status_code == 200
    assert client.post(url + "check-in/", {"checkin-identity_confirmed": "on"}).status_code == 403
    assert client.post(url + "record/history/", {"history-implants": "B"}).status_code == 403
    assert client.post(url + "cancel/", {"cancel-reason": "Clinic closed"}).status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == Status.CANCELLED
    api = api_client_for(lead)
    other = book(technologist, patient_id="P-9")
    response = api.post(f"/api/appointments/{other.pk}/status/", {"action": "check_in", "identity_confirmed": True},
                        format="json")  # fmt: skip
    assert response.status_code == 403


@pytest.mark.parametrize("role_fixture", ["radiologist", "auditor", "admin_user"])
def test_it_refuses_the_clinic_to_roles_that_do_not_run_it(client, technologist, role_fixture, request):
    appointment = book(technologist)
    user = request.getfixturevalue(role_fixture)
    client.force_login(user)
    for url in ("/clinic/", "/clinic/appointments/new/", f"/clinic/appointments/{appointment.pk}/", "/clinic/held/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/clinic/appointments/{appointment.pk}/check-in/",
                       {"checkin-identity_confirmed": "on"}).status_code == 403  # fmt: skip
    api = api_client_for(user)
    for url in ("/api/appointments/", f"/api/appointments/{appointment.pk}/", "/api/held-studies/"):
        assert api.get(url).status_code == 403, url
    assert api.post("/api/appointments/", {}, format="json").status_code == 403


def test_signed_out_users_go_to_the_login_page_and_the_api_answers_401(client, technologist):
    appointment = book(technologist)
    for url in ("/clinic/", f"/clinic/appointments/{appointment.pk}/", "/clinic/held/"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/accounts/login/"), url
    assert client.get("/api/appointments/").status_code == 401


def test_the_api_books_and_moves_an_appointment(technologist):
    api = api_client_for(technologist)
    response = api.post("/api/appointments/", {
        "patient_id": "9434765919", "family_name": "Jones", "given_name": "Ada", "birth_date": "1968-04-02",
        "starts_at": at(14).isoformat(), "site": "Hospital",
    }, format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "scheduled" and body["mammographer_record"]["symptoms"] == []
    url = f"/api/appointments/{body['id']}/status/"
    refused = api.post(url, {"action": "check_in"}, format="json")
    assert refused.status_code == 400 and "Confirm the woman's identity" in refused.json()["detail"]
    assert api.post(url, {"action": "check_in", "identity_confirmed": True}, format="json").json()["status"] == (
        "checked_in"
    )
    done = api.post(url, {"action": "outcome", "outcome": "screened"}, format="json").json()
    assert done["status"] == "screened"
    assert [c["to_status"] for c in done["status_changes"]] == ["scheduled", "checked_in", "screened"]
    refused = api.post(url, {"action": "cancel", "reason": "late"}, format="json")
    assert refused.status_code == 400 and "cannot become cancelled" in refused.json()["detail"]
