from cases.models.clinical import Image, Patient, Study
from cases.models.reading import BreastAssessment, Outcome, Read, ReadAddendum

__all__ = ["BreastAssessment", "Image", "Outcome", "Patient", "Read", "ReadAddendum", "Study"]
