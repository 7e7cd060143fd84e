from cases.models.clinical import Image, Patient, Study
from cases.models.density import StudyDensity
from cases.models.dicom import DicomDelivery, DicomResultObject
from cases.models.letters import Letter, LetterTemplate, ScreeningResultConfirmation, ScreeningResultKind
from cases.models.reading import (
    BreastAssessment,
    Density,
    Outcome,
    Read,
    ReadAddendum,
    ReadingSession,
    TechnicalRecall,
)
from cases.models.screening import (
    Appointment,
    AppointmentStatusChange,
    MammographerRecord,
    PerformedProcedureStep,
    PreviousSurgery,
    ScreeningEpisode,
    Symptom,
)
from cases.models.strategies import StrategyReport

__all__ = [
    "Appointment",
    "AppointmentStatusChange",
    "BreastAssessment",
    "Density",
    "DicomDelivery",
    "DicomResultObject",
    "Image",
    "Letter",
    "LetterTemplate",
    "MammographerRecord",
    "Outcome",
    "Patient",
    "PerformedProcedureStep",
    "PreviousSurgery",
    "Read",
    "ReadAddendum",
    "ReadingSession",
    "ScreeningEpisode",
    "ScreeningResultConfirmation",
    "ScreeningResultKind",
    "StrategyReport",
    "TechnicalRecall",
    "Study",
    "StudyDensity",
    "Symptom",
]
