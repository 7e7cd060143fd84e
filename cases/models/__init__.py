from cases.models.clinical import Image, Patient, Study
from cases.models.dicom import DicomDelivery, DicomResultObject
from cases.models.reading import BreastAssessment, Outcome, Read, ReadAddendum
from cases.models.strategies import StrategyReport

__all__ = [
    "BreastAssessment",
    "DicomDelivery",
    "DicomResultObject",
    "Image",
    "Outcome",
    "Patient",
    "Read",
    "ReadAddendum",
    "StrategyReport",
    "Study",
]
