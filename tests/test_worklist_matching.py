"""The Modality Worklist's matching and answers (cases/dicom/worklist.py, PS3.4 C.2.2.2 and K), without a network:
universal, single value, wildcard, range and sequence matching; the answer holds the keys asked for only."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydicom.dataset import Dataset

from cases.dicom.worklist import (
    CANCELLED,
    IDENTIFIER_DOES_NOT_MATCH,
    PENDING,
    SUCCESS,
    UNABLE_TO_PROCESS,
    answer,
    item_dataset,
    matches,
    query_filter,
    worklist_find,
)
from cases.screening.worklist import WorklistEntry, WorklistFilter


def entry(**changes) -> WorklistEntry:
    values = dict(
        accession_number="MA00000042", study_instance_uid="1.2.3.4", patient_id="9434765919",
        patient_name="Jones^Ada", patient_birth_date=date(1968, 4, 2), patient_sex="F",
        starts_at=datetime(2026, 12, 7, 9, 30), station_ae_title="MG_ROOM_1", site="Leeds mobile 1",
        step_status="SCHEDULED", requested_procedure_id="MA00000042",
    )  # fmt: skip
    return WorklistEntry(**{**values, **changes})


def query(**keys) -> Dataset:
    """Top-level keys as given; 'sps_<Keyword>' keys go into the Scheduled Procedure Step Sequence's item."""
    ds, sps = Dataset(), Dataset()
    for keyword, value in keys.items():
        if keyword.startswith("sps_"):
            setattr(sps, keyword[4:], value)
        else:
            setattr(ds, keyword, value)
    if len(sps):
        ds.ScheduledProcedureStepSequence = [sps]
    return ds


ITEM = item_dataset(entry())


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"PatientName": ""}, True),  # universal
        ({"PatientName": "jones^ada"}, True),  # person names without regard to case
        ({"PatientName": "Jon*"}, True),
        ({"PatientName": "J?nes^*"}, True),
        ({"PatientName": "Smith*"}, False),
        ({"PatientID": "9434765919"}, True),
        ({"PatientID": "94347659"}, False),
        ({"AccessionNumber": "MA*42"}, True),
        ({"StudyInstanceUID": ["1.2.3.4", "9.9"]}, True),  # list of UIDs
        ({"StudyInstanceUID": ["5.6", "9.9"]}, False),
        ({"sps_Modality": "MG"}, True),
        ({"sps_Modality": "CT"}, False),
        ({"sps_ScheduledStationAETitle": "MG_ROOM_*"}, True),
        ({"sps_ScheduledStationAETitle": "MG_ROOM_2"}, False),
        ({"sps_ScheduledProcedureStepStartDate": "20261207"}, True),
        ({"sps_ScheduledProcedureStepStartDate": "20261206-20261208"}, True),
        ({"sps_ScheduledProcedureStepStartDate": "20261208-"}, False),
        ({"sps_ScheduledProcedureStepStartDate": "-20261207"}, True),
        ({"sps_ScheduledProcedureStepStartTime": "0900-1000"}, True),
        ({"sps_ScheduledProcedureStepStartTime": "0930"}, True),
        ({"sps_ScheduledProcedureStepStartTime": "1000-"}, False),
        ({"sps_Modality": "MG", "PatientID": "OTHER"}, False),  # every key must match
        ({"ScheduledProcedureStepSequence": []}, True),  # universal sequence matching
        ({"PatientComments": "anything"}, True),  # a key the platform does not hold is no condition
    ],
)
def test_worklist_matching(keys, expected):
    assert matches(query(**keys), ITEM) is expected


def test_the_answer_holds_the_keys_asked_for_and_nothing_else():
    asked = query(PatientName="", AccessionNumber="", PatientComments="", sps_Modality="MG",
                  sps_ScheduledProcedureStepStartTime="")  # fmt: skip
    result = answer(asked, ITEM)
    assert result.SpecificCharacterSet == "ISO_IR 192"
    assert sorted(e.keyword for e in result) == ["AccessionNumber", "PatientComments", "PatientName",
                                                 "ScheduledProcedureStepSequence", "SpecificCharacterSet"]  # fmt: skip
    assert str(result.PatientName) == "Jones^Ada" and result.PatientComments in (None, "")
    [sps] = result.ScheduledProcedureStepSequence
    assert sorted(e.keyword for e in sps) == ["Modality", "ScheduledProcedureStepStartTime"]
    assert sps.ScheduledProcedureStepStartTime == "093000"
    whole = answer(query(ScheduledProcedureStepSequence=[]), ITEM)
    assert whole.ScheduledProcedureStepSequence[0].ScheduledProcedureStepLocation == "Leeds mobile 1"


def test_an_appointment_on_no_particular_unit_is_scheduled_on_the_modality_that_asks():
    item = item_dataset(entry(station_ae_title=""), calling_ae_title="MG_ROOM_3")
    assert matches(query(sps_ScheduledStationAETitle="MG_ROOM_3"), item)
    assert item.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "MG_ROOM_3"


def test_the_database_narrows_by_date_and_exact_identifiers_only():
    assert query_filter(query(PatientID="94*", sps_ScheduledProcedureStepStartDate="20261207-20261209")) == (
        WorklistFilter(date_from=date(2026, 12, 7), date_to=date(2026, 12, 9))
    )
    assert query_filter(query(AccessionNumber="MA1", PatientID="P1")) == WorklistFilter(
        patient_id="P1", accession_number="MA1"
    )


def test_the_find_answers_each_item_then_success_and_refuses_a_bad_range():
    sources = [
        entry(),
        entry(accession_number="MA2", patient_name="Khan^Zara"),
        entry(accession_number="MA3", station_ae_title="ROOM2"),
    ]
    answers = list(worklist_find(query(AccessionNumber="", sps_ScheduledStationAETitle="MG_ROOM_1"),
                                 source=lambda where: sources, cancelled=lambda: False))  # fmt: skip
    assert [(s, a.AccessionNumber if a else None) for s, a in answers] == [
        (PENDING, "MA00000042"), (PENDING, "MA2"), (SUCCESS, None)]  # fmt: skip
    with pytest.warns(UserWarning, match="Invalid value for VR DA"):  # pydicom says so too; the modality is told
        malformed = query(sps_ScheduledProcedureStepStartDate="2026-12-07")
    [(status, nothing)] = list(worklist_find(malformed, source=lambda where: sources, cancelled=lambda: False))
    assert status.Status == IDENTIFIER_DOES_NOT_MATCH and "not valid" in status.ErrorComment and nothing is None
    assert list(worklist_find(query(), source=lambda where: sources, cancelled=lambda: True)) == [(CANCELLED, None)]

    def broken(where):
        raise RuntimeError("database away")

    [(status, _)] = list(worklist_find(query(), source=broken, cancelled=lambda: False))
    assert status.Status == UNABLE_TO_PROCESS
