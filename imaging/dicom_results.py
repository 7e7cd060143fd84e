"""AI results as DICOM objects a PACS can archive: a Structured Report and a Secondary Capture of the overlay.

The SR is a TID 1500 Imaging Measurement Report in a Comprehensive SR (1.2.840.10008.5.1.4.1.1.88.33), the SR
class most PACS accept: for each analysed image one TID 1410 planar-ROI group that references the source image,
names the model (TID 4019 Algorithm Identification: name, version, threshold), and holds the calibrated
"Probability of cancer" (DCM 111047), the threshold as "CAD Operating Point" (DCM 111071), the result at the
threshold (Malignant/Benign, SCT), whether the model is validated (Yes/No, SCT), the breast as finding site, and
the heatmap's peak as an image region (SCOORD POINT in the source image's pixel space). The study-level report
holds every image's group plus a TID 1501 summary (the highest probability and the study's result).

Concepts with no standard code use the local coding scheme 99MAMMOAI (PS3.16 8.2: local designators start with
"99"), declared in the Coding Scheme Identification Sequence.

UIDs are derived from the source SOP Instance UID and the model file's SHA-256 (pydicom's generate_uid with
entropy sources), and the dates from the result's own time, so building the same result again gives the same
object byte for byte: a retried send never creates a second instance in the PACS.

Django-free on purpose: the Celery worker and the tests use it bare.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID, generate_uid

LOCAL_SCHEME = "99MAMMOAI"
LOCAL_SCHEME_NAME = "Mammography screening platform AI result concepts"
AI_RESULT = hd.sr.CodedConcept("AI-RESULT", LOCAL_SCHEME, "AI result at the operating point")
MODEL_VALIDATED = hd.sr.CodedConcept("MODEL-VALIDATED", LOCAL_SCHEME, "Model validated for clinical use")
HEATMAP_PEAK = "Grad-CAM heatmap peak"
STUDY_SUMMARY = hd.sr.CodedConcept("STUDY-SUMMARY", LOCAL_SCHEME, "AI study summary")
LABEL_CODES = {"malignant": codes.SCT.Malignant, "benign": codes.SCT.Benign}
YES, NO = codes.SCT.Yes, codes.SCT.No
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
BREAST_SITES = {"L": codes.SCT.LeftBreast, "R": codes.SCT.RightBreast}
MANUFACTURER = "Mammography screening platform"
# Series numbers high enough not to collide with a modality's own series.
SR_IMAGE_SERIES_NUMBER = 9001
SR_STUDY_SERIES_NUMBER = 9002
SC_SERIES_NUMBER = 9003
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


@dataclass(frozen=True)
class AiResult:
    """One image's AI result as the platform records it, free of any database type."""

    model_name: str
    model_version: str
    model_sha256: str  # of the model file: with the source SOP Instance UID it keys the derived UIDs
    validated: bool  # False for research models (not for clinical use)
    probability: float  # calibrated probability of malignancy, 0..1
    threshold: float  # the operating point: probability >= threshold is 'malignant'
    label: str  # 'malignant' | 'benign'
    # The heatmap's peak as the platform records it: the row and column index of the source pixel under it.
    peak_row: float
    peak_column: float
    created_at: datetime.datetime  # when the result was produced: the objects' content date and time
    overlay_rgb: np.ndarray | None = None  # H x W x 3 uint8: the source image with the heatmap blended in
    # 'L' | 'R' as the platform recorded it, when the header does not say (CBIS-DDSM has it only in PatientID).
    laterality: str = ""

    def __post_init__(self) -> None:
        if self.label not in LABEL_CODES:
            raise ValueError(f"label must be one of {sorted(LABEL_CODES)}, not {self.label!r}")
        for name in ("probability", "threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a probability in [0, 1], not {value!r}")
        if not self.model_sha256 or not self.model_name or not self.model_version:
            raise ValueError("model_name, model_version and model_sha256 are required")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        if self.laterality not in ("", "L", "R"):
            raise ValueError(f"laterality must be 'L', 'R' or empty, not {self.laterality!r}")


def derived_uid(*parts: str) -> UID:
    """A UID that depends only on `parts`: the same inputs always give the same UID."""
    return generate_uid(entropy_srcs=["mammo-ai-results-v1", *parts])


def image_sr_uid(*, source_sop_instance_uid: str, model_sha256: str) -> UID:
    return derived_uid("image-sr", source_sop_instance_uid, model_sha256)


def study_sr_uid(*, source_sop_instance_uids: Sequence[str], model_sha256: str) -> UID:
    return derived_uid("study-sr", *sorted(source_sop_instance_uids), model_sha256)


def overlay_sc_uid(*, source_sop_instance_uid: str, model_sha256: str) -> UID:
    return derived_uid("overlay-sc", source_sop_instance_uid, model_sha256)


def image_result_sr(*, source: Dataset, result: AiResult) -> hd.sr.ComprehensiveSR:
    """The per-image report: one measurement group referencing `source`."""
    return _result_sr(
        findings=[(source, result)],
        sop_instance_uid=image_sr_uid(source_sop_instance_uid=source.SOPInstanceUID, model_sha256=result.model_sha256),
        series_instance_uid=derived_uid("image-sr-series", source.StudyInstanceUID, result.model_sha256),
        series_number=SR_IMAGE_SERIES_NUMBER,
        instance_number=_instance_number(source),
        description="AI result per image",
        with_summary=False,
    )


def study_result_sr(*, findings: Sequence[tuple[Dataset, AiResult]]) -> hd.sr.ComprehensiveSR:
    """The per-study report: every image's group and a study summary (highest probability decides).

    It belongs to the DICOM study of the first source (by SOP Instance UID order); sources of other DICOM studies
    (CBIS-DDSM gives each view its own) are listed as Pertinent Other Evidence.
    """
    if not findings:
        raise ValueError("a study report needs at least one analysed image")
    if len({result.model_sha256 for _, result in findings}) != 1:
        raise ValueError("a study report holds the results of one model only")
    findings = sorted(findings, key=lambda pair: str(pair[0].SOPInstanceUID))
    model_sha256 = findings[0][1].model_sha256
    return _result_sr(
        findings=findings,
        sop_instance_uid=study_sr_uid(
            source_sop_instance_uids=[str(source.SOPInstanceUID) for source, _ in findings],
            model_sha256=model_sha256,
        ),
        series_instance_uid=derived_uid("study-sr-series", findings[0][0].StudyInstanceUID, model_sha256),
        series_number=SR_STUDY_SERIES_NUMBER,
        instance_number=1,
        description="AI result per study",
        with_summary=True,
    )


def overlay_secondary_capture(*, source: Dataset, result: AiResult) -> hd.sc.SCImage:
    """The overlay picture as a Secondary Capture of the source's study, marked as derived and for research.

    Each overlay gets its own series (derived from the source image), so the series-level Laterality is right.
    """
    if result.overlay_rgb is None:
        raise ValueError("this result has no overlay image")
    overlay = np.asarray(result.overlay_rgb)
    if overlay.ndim != 3 or overlay.shape[2] != 3 or overlay.dtype != np.uint8 or min(overlay.shape[:2]) < 1:
        raise ValueError(f"overlay_rgb must be an H x W x 3 uint8 array, not {overlay.dtype} {overlay.shape}")
    pixels = _with_banner(overlay, _research_banner(result))
    header = _evidence_header(source)
    laterality = _laterality(source, result)
    orientation = _patient_orientation(source)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=header,
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        # highdicom requires a value for the PATIENT system; replaced below by the source's (or left empty).
        patient_orientation=orientation or ("A", "R"),
        laterality=laterality or None,
        series_instance_uid=derived_uid("overlay-sc-series", source.SOPInstanceUID, result.model_sha256),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=overlay_sc_uid(
            source_sop_instance_uid=source.SOPInstanceUID, model_sha256=result.model_sha256
        ),
        instance_number=_instance_number(source),
        manufacturer=MANUFACTURER,
        pixel_spacing=_scaled_spacing(source, overlay.shape[:2]),
        series_description=_series_description("AI heatmap overlay", result),
        manufacturer_model_name=result.model_name[:64],
        software_versions=result.model_version[:64],
        content_qualification="RESEARCH" if not result.validated else "PRODUCT",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    # Type 2C, both required here (the breast is a paired organ, the image has no patient position): the
    # source's values, or empty when nobody knows them.
    sc.PatientOrientation = list(orientation) if orientation else ""
    sc.Laterality = laterality
    sc.BodyPartExamined = "BREAST"
    # Derived from the source image, by an image processing operation (PS3.16 CID 7202 / CID 7203).
    sc.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    sc.DerivationDescription = (
        f"Grad-CAM heatmap of {result.model_name} {result.model_version} blended over the source image"
    )[:1024]
    if overlay.shape[:2] != (int(source.get("Rows") or 0), int(source.get("Columns") or 0)):
        sc.DerivationCodeSequence = [_code_item(hd.sr.CodedConcept("113085", "DCM", "Spatial resampling"))]
    source_ref = Dataset()
    source_ref.ReferencedSOPClassUID = source.SOPClassUID
    source_ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    source_ref.PurposeOfReferenceCodeSequence = [
        _code_item(hd.sr.CodedConcept("121322", "DCM", "Source image for image processing operation"))
    ]
    sc.SourceImageSequence = [source_ref]
    # BurnedInAnnotation says whether the pixels identify the patient (PS3.3 C.7.6.1.1.7): the banner names the
    # model and its research status, nothing about the woman, so NO is the accurate value.
    sc.BurnedInAnnotation = "NO"
    sc.RecognizableVisualFeatures = "NO"
    sc.ImageComments = _research_banner(result)
    sc.LossyImageCompression = "00"
    _set_content_datetime(sc, result.created_at, acquired=_acquisition_datetime(source))
    return sc


# --- The report ------------------------------------------------------------------------------------------------


def _result_sr(
    *,
    findings: Sequence[tuple[Dataset, AiResult]],
    sop_instance_uid: UID,
    series_instance_uid: UID,
    series_number: int,
    instance_number: int,
    description: str,
    with_summary: bool,
) -> hd.sr.ComprehensiveSR:
    first_result = findings[0][1]
    headers = [_evidence_header(source) for source, _ in findings]
    groups: list = [
        _image_group(source=header, result=result) for header, (_, result) in zip(headers, findings, strict=True)
    ]
    if with_summary:
        groups.append(_study_summary([result for _, result in findings]))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_device_context=hd.sr.ObserverContext(
                observer_type=codes.DCM.Device,
                observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                    uid=derived_uid("device", first_result.model_sha256),
                    name=f"{first_result.model_name} {first_result.model_version}"[:64],
                    manufacturer_name=MANUFACTURER,
                    model_name=first_result.model_name[:64],
                ),
            )
        ),
        procedure_reported=codes.SCT.Mammography,
        imaging_measurements=groups,
        # The Image Library is optional in TID 1500; highdicom's entry for a projection image needs the
        # PatientOrientation and ImagerPixelSpacing that real MG files carry and CBIS-DDSM files lack.
        referenced_images=headers if all(_has_projection_descriptors(h) for h in headers) else None,
    )
    sr = hd.sr.ComprehensiveSR(
        evidence=headers,
        content=report[0],
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,  # an AI result is a preliminary opinion until a reader has reported the study
        is_verified=False,
        series_description=_series_description(description, first_result),
        manufacturer_model_name=first_result.model_name[:64],
        software_versions=first_result.model_version[:64],
        coding_schemes=[
            hd.coding_schemes.CodingSchemeIdentificationItem(
                designator=LOCAL_SCHEME, name=LOCAL_SCHEME_NAME, responsible_organization=MANUFACTURER
            )
        ],
    )
    _set_content_datetime(
        sr, max(result.created_at for _, result in findings), acquired=_acquisition_datetime(findings[0][0])
    )
    return sr


def _image_group(*, source: Dataset, result: AiResult) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    rows, columns = int(source.get("Rows") or 0), int(source.get("Columns") or 0)
    if rows and columns and not (-0.5 <= result.peak_row <= rows - 0.5 and -0.5 <= result.peak_column <= columns - 0.5):
        raise ValueError(
            f"heatmap peak ({result.peak_row}, {result.peak_column}) lies outside the {rows} x {columns} image"
        )
    laterality = _laterality(source, result)
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid("tracking", source.SOPInstanceUID, result.model_sha256),
            identifier=HEATMAP_PEAK,
        ),
        # SCOORD pixel space (PS3.3 C.18.6.1.1): (column, row) with 0.0 at the top left corner of the first pixel,
        # so the centre of pixel (r, c) is (c + 0.5, r + 0.5).
        referenced_region=hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POINT,
            graphic_data=np.array([[result.peak_column + 0.5, result.peak_row + 0.5]], dtype=float),
            source_image=hd.sr.SourceImageForRegion(
                referenced_sop_class_uid=source.SOPClassUID,
                referenced_sop_instance_uid=source.SOPInstanceUID,
            ),
        ),
        algorithm_id=_algorithm(result),
        finding_sites=[hd.sr.FindingSite(BREAST_SITES[laterality])] if laterality in BREAST_SITES else None,
        measurements=_measurements(result),
        qualitative_evaluations=_evaluations(result),
    )


def _study_summary(results: Sequence[AiResult]) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    highest = max(results, key=lambda r: r.probability)
    label = "malignant" if any(r.label == "malignant" for r in results) else "benign"
    summary = AiResult(
        **{**highest.__dict__, "label": label, "overlay_rgb": None},
    )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid("study-summary", *sorted(r.model_sha256 + str(r.probability) for r in results)),
            identifier="AI study summary: highest image probability",
        ),
        finding_type=STUDY_SUMMARY,
        algorithm_id=_algorithm(highest),
        measurements=_measurements(summary),
        qualitative_evaluations=_evaluations(summary),
    )


def _algorithm(result: AiResult) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(
        name=result.model_name[:64],
        version=result.model_version[:64],
        parameters=[f"threshold={result.threshold:.6g}", f"model_sha256={result.model_sha256}"],
        manufacturer=MANUFACTURER,
    )


def _measurements(result: AiResult) -> list[hd.sr.Measurement]:
    return [
        hd.sr.Measurement(name=codes.DCM.ProbabilityOfCancer, value=round(result.probability, 6), unit=NO_UNITS),
        hd.sr.Measurement(name=codes.DCM.CADOperatingPoint, value=round(result.threshold, 6), unit=NO_UNITS),
    ]


def _evaluations(result: AiResult) -> list[hd.sr.QualitativeEvaluation]:
    return [
        hd.sr.QualitativeEvaluation(name=AI_RESULT, value=LABEL_CODES[result.label]),
        hd.sr.QualitativeEvaluation(name=MODEL_VALIDATED, value=YES if result.validated else NO),
    ]


# --- Shared helpers --------------------------------------------------------------------------------------------


def _evidence_header(source: Dataset) -> Dataset:
    """The source's attributes without pixel data, with absent Type 2 patient/study attributes set empty."""
    header = Dataset()
    for element in source:
        if element.tag.group != 0x7FE0 and element.tag != 0x00020000:
            header.add(element)
    for keyword in _TYPE2_STUDY_ATTRIBUTES:
        if keyword not in header:
            setattr(header, keyword, "")
    if getattr(source, "file_meta", None) is not None:
        header.file_meta = source.file_meta
    return header


def _has_projection_descriptors(header: Dataset) -> bool:
    return _patient_orientation(header) is not None and len(header.get("ImagerPixelSpacing") or []) == 2


def _laterality(source: Dataset, result: AiResult) -> str:
    value = str(source.get("ImageLaterality") or source.get("Laterality") or "").strip().upper()
    return value if value in ("L", "R") else result.laterality


def _patient_orientation(source: Dataset) -> tuple[str, str] | None:
    value = source.get("PatientOrientation")
    if value and len(value) == 2 and all(str(v).strip() for v in value):
        return str(value[0]), str(value[1])
    return None


def _scaled_spacing(source: Dataset, shape: tuple[int, int]) -> tuple[float, float] | None:
    """The source's pixel spacing scaled to the overlay's size (the overlay may be a reduced picture)."""
    spacing = source.get("PixelSpacing") or source.get("ImagerPixelSpacing")
    rows, columns = int(source.get("Rows") or 0), int(source.get("Columns") or 0)
    try:
        row_mm, column_mm = float(spacing[0]), float(spacing[1])
    except (TypeError, ValueError, IndexError):
        return None
    if not (rows and columns and row_mm > 0 and column_mm > 0):
        return None
    return row_mm * rows / shape[0], column_mm * columns / shape[1]


def _instance_number(source: Dataset) -> int:
    try:
        number = int(source.get("InstanceNumber") or 1)
    except (TypeError, ValueError):
        return 1
    return number if number > 0 else 1


def _series_description(what: str, result: AiResult) -> str:
    # LO holds 64 characters: the research status goes first so that truncation can never drop it.
    status = "" if result.validated else "RESEARCH USE ONLY: "
    return f"{status}{what} ({result.model_name} {result.model_version})"[:64]


def _research_banner(result: AiResult) -> str:
    status = "validated model" if result.validated else "RESEARCH USE ONLY - NOT FOR DIAGNOSIS"
    return f"AI heatmap {result.model_name} {result.model_version}: {status}"


def _with_banner(overlay: np.ndarray, text: str) -> np.ndarray:
    """The overlay with a black band and white text at the top, so no viewer can mistake it for the image."""
    rows, columns = overlay.shape[:2]
    (unit_width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)
    scale = max(0.3, min((columns - 8) / unit_width, 2.0))  # as wide as the image allows
    (_, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = min(rows, text_height + baseline + 8)
    out = np.ascontiguousarray(overlay.copy())
    out[:band] = 0
    cv2.putText(out, text, (4, band - baseline - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _code_item(concept: hd.sr.CodedConcept) -> Dataset:
    item = Dataset()
    item.CodeValue = concept.value
    item.CodingSchemeDesignator = concept.scheme_designator
    item.CodeMeaning = concept.meaning
    return item


def _set_content_datetime(ds: Dataset, moment: datetime.datetime, *, acquired: str) -> None:
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


def _acquisition_datetime(source: Dataset) -> str:
    if source.get("AcquisitionDateTime"):
        return str(source.AcquisitionDateTime)
    date, time = source.get("AcquisitionDate") or source.get("ContentDate"), source.get("AcquisitionTime")
    return f"{date}{time or ''}" if date else ""
