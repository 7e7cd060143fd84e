"""What every AI result object shares: the result as the objects need it, derived UIDs, and what each object copies
from its source image (patient and study, laterality, orientation, spacing, dates)."""

from __future__ import annotations

import copy
import datetime
import math
import re
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID, generate_uid

LOCAL_SCHEME = "99MAMMOAI"
LOCAL_SCHEME_NAME = "Mammography screening platform AI result concepts"
MANUFACTURER = "Mammography screening platform"
# Series numbers high enough not to collide with a modality's own series.
SR_IMAGE_SERIES_NUMBER = 9001
SR_STUDY_SERIES_NUMBER = 9002
SC_SERIES_NUMBER = 9003
CAD_SR_SERIES_NUMBER = 9004
RESEARCH_PREFIX = "RESEARCH USE ONLY: "
# Attributes highdicom reads from the evidence as attributes (not .get): Type 2 in the source's modules, so a
# source may lack them; an empty value is what the standard allows then.
_TYPE2_STUDY_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
)
# One Patient Orientation value (PS3.3 C.7.6.1.1.1): a direction made of up to three of these letters, e.g. A, FR.
_ORIENTATION_VALUE = re.compile(r"^[APRLHF]{1,3}$")


@dataclass(frozen=True)
class AiResult:
    """One image's AI result as the platform records it, free of any database type."""

    model_name: str
    model_version: str
    model_sha256: str  # of the model file: with the source SOP Instance UID it keys the derived UIDs
    validated: bool  # False for research models (not for clinical use): no call, a research score
    validation_summary: str  # a few words on the model's validation, e.g. "not validated (test AUC 0.38, 0.21–0.56)"
    score: float  # 0..1: the calibrated probability of a validated model, else a research score
    operating_point: float  # a validated model flags an image whose score is at or above it
    # The heatmap's peak as the platform records it: the row and column index of the source pixel under it; None
    # for a model that gives no heatmap (its score is then reported without a location).
    peak_row: float | None
    peak_column: float | None
    created_at: datetime.datetime  # when the result was produced: the objects' content date and time
    overlay_rgb: np.ndarray | None = None  # H x W x 3 uint8: the source image with the heatmap blended in
    # 'L' | 'R' as the platform recorded it, when the header does not say (CBIS-DDSM has it only in PatientID).
    laterality: str = ""
    view: str = ""  # 'CC', 'MLO', ... as the platform recorded it

    def __post_init__(self) -> None:
        for name in ("score", "operating_point"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], not {value!r}")
        if not self.model_sha256 or not self.model_name or not self.model_version:
            raise ValueError("model_name, model_version and model_sha256 are required")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        if (self.peak_row is None) != (self.peak_column is None):
            raise ValueError("peak_row and peak_column are both given or both None")
        if self.laterality not in ("", "L", "R"):
            raise ValueError(f"laterality must be 'L', 'R' or empty, not {self.laterality!r}")

    @property
    def flagged(self) -> bool | None:
        """A validated model's call at its operating point; None: a model that is not validated makes no call."""
        return self.score >= self.operating_point if self.validated else None

    @property
    def has_location(self) -> bool:
        return self.peak_row is not None

    @property
    def model_label(self) -> str:
        return f"{self.model_name} {self.model_version}"


def ascii_text(text: str) -> str:
    """Text for attributes in the default character repertoire (the objects declare no other): dashes become
    hyphens, anything else outside ASCII a question mark."""
    return text.replace("\u2013", "-").replace("\u2014", "-").encode("ascii", "replace").decode("ascii")


def derived_uid(*parts: str) -> UID:
    """A UID that depends only on `parts`: the same inputs always give the same UID."""
    return generate_uid(entropy_srcs=["mammo-ai-results-v1", *parts])


def evidence_header(source: Dataset) -> Dataset:
    """The source's attributes without pixel data, with absent Type 2 patient/study attributes set empty and person
    names in their complete form (person_names_completed)."""
    header = Dataset()
    for element in source:
        if element.tag.group != 0x7FE0 and element.tag != 0x00020000:
            header.add(copy.deepcopy(element) if element.VR == "PN" else element)
    for keyword in _TYPE2_STUDY_ATTRIBUTES:
        if keyword not in header:
            setattr(header, keyword, "")
    person_names_completed(header)
    if getattr(source, "file_meta", None) is not None:
        header.file_meta = source.file_meta
    return header


def person_names_completed(ds: Dataset) -> None:
    """Top-level person names written with their component delimiter: "Mass-Test_P_00173_LEFT_CC" (CBIS-DDSM) as
    "Mass-Test_P_00173_LEFT_CC^". PS3.5 6.2 makes them the same name (a single component is the family name, and
    trailing empty components may be left out), but a name without any "^" is also the retired ACR-NEMA form that
    validators warn about, so what the platform writes is unambiguous. Names with a "^" or "=" are left alone."""
    for element in ds:
        if element.VR != "PN" or element.VM != 1 or not element.value:
            continue
        text = str(element.value)
        if "^" not in text and "=" not in text:
            element.value = f"{text}^"


def standard_patient_orientation(source: Dataset) -> tuple[str, str] | None:
    """The source's Patient Orientation when it is two standard values (A\\R, P\\FL...), else None.

    Real units write combined values such as A\\FR for an MLO view; CBIS-DDSM writes the view name (CC, MLO) in
    it, which is no orientation at all. Which way a digitised film's rows run cannot be told from its pixels, so
    nothing is made up: a result object then leaves the attribute empty, as the standard allows."""
    value = source.get("PatientOrientation")
    if value is None:
        return None
    values = [str(v).strip().upper() for v in (value if isinstance(value, (MultiValue, list, tuple)) else [value])]
    if len(values) == 2 and all(_ORIENTATION_VALUE.match(v) for v in values):
        return values[0], values[1]
    return None


def laterality_of(source: Dataset, recorded: str) -> str:
    value = str(source.get("ImageLaterality") or source.get("Laterality") or "").strip().upper()
    return value if value in ("L", "R") else recorded


def imager_pixel_spacing(source: Dataset) -> tuple[float, float] | None:
    spacing = source.get("ImagerPixelSpacing") or source.get("PixelSpacing")
    try:
        row_mm, column_mm = float(spacing[0]), float(spacing[1])
    except (TypeError, ValueError, IndexError):
        return None
    return (row_mm, column_mm) if row_mm > 0 and column_mm > 0 else None


def instance_number(source: Dataset) -> int:
    try:
        number = int(source.get("InstanceNumber") or 1)
    except (TypeError, ValueError):
        return 1
    return number if number > 0 else 1


def series_description(what: str, result: AiResult) -> str:
    # LO holds 64 characters: the research status goes first so that truncation can never drop it.
    status = "" if result.validated else RESEARCH_PREFIX
    return f"{status}{what} ({result.model_label})"[:64]


def research_statement(result: AiResult) -> str:
    """One line on what the object is, for its ImageComments and the overlay's banner."""
    if result.validated:
        return ascii_text(f"AI result of {result.model_label}, {result.validation_summary}")
    return f"AI research score of {result.model_label}: NOT VALIDATED FOR CLINICAL USE, NOT FOR DIAGNOSIS"


def code_item(concept: hd.sr.CodedConcept) -> Dataset:
    item = Dataset()
    item.CodeValue = concept.value
    item.CodingSchemeDesignator = concept.scheme_designator
    item.CodeMeaning = concept.meaning
    return item


def set_content_datetime(ds: Dataset, moment: datetime.datetime, *, acquired: str) -> None:
    """Dates and times from the result, not from the clock: rebuilding gives the same bytes."""
    utc = moment.astimezone(datetime.UTC)
    date, time = utc.strftime("%Y%m%d"), utc.strftime("%H%M%S.%f")
    ds.ContentDate, ds.ContentTime = date, time
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.TimezoneOffsetFromUTC = "+0000"
    if "DateOfSecondaryCapture" in ds:
        ds.DateOfSecondaryCapture, ds.TimeOfSecondaryCapture = date, time
    # highdicom stamps the source's acquisition equipment with the clock; the source's own acquisition time is
    # the true value, and without one the optional attribute is left out.
    for item in ds.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            del item.ContributionDateTime
        if acquired:
            item.ContributionDateTime = acquired


def acquisition_datetime(source: Dataset) -> str:
    if source.get("AcquisitionDateTime"):
        return str(source.AcquisitionDateTime)
    date, time = source.get("AcquisitionDate") or source.get("ContentDate"), source.get("AcquisitionTime")
    return f"{date}{time or ''}" if date else ""
