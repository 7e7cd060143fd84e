from cases.models.clinical import Image, Patient, Study
from cases.models.reading import BreastAssessment, Outcome, Read, ReadAddendum
from cases.models.strategies import StrategyReport

__all__ = ["BreastAssessment", "Image", "Outcome", "Patient", "Read", "ReadAddendum", "StrategyReport", "Study"]
