"""The AI result as a TID 1500 Imaging Measurement Report in a Comprehensive SR (1.2.840.10008.5.1.4.1.1.88.33),
the SR class most PACS accept.

Per analysed image, one TID 1410 planar-ROI group that references the source image and names the model (TID 4019
Algorithm Identification: name, version, operating point, model file SHA-256), with the breast as finding site and
the heatmap's peak as an image region (SCOORD POINT in the source image's pixel space); for a model that gives no
heatmap, a TID 1501 group with the image as its source and no region. What the group says of the
score depends on the model's validation (inference.serving.outputs has the rule):
- validated: the calibrated "Probability of cancer" (DCM 111047), the "CAD Operating Point" (DCM 111071) and the
  call at it (local codes Flagged / Not flagged);
- not validated: an "AI research score" (local code) and nothing else: no probability of cancer, no call, no
  malignant or benign code. "Model validated for clinical use" (Yes/No, SCT) is in every group.
The study report holds every analysed image's group plus a TID 1501 summary (the highest score, and the call for a
validated model); a new version of it references the one it replaces (Predecessor Documents Sequence).

Concepts with no standard code use the local coding scheme 99MAMMOAI (PS3.16 8.2: local designators start with
"99"), declared in the Coding Scheme Identification Sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID

from imaging.dicom_results.common import (
    LOCAL_SCHEME,
    LOCAL_SCHEME_NAME,
    MANUFACTURER,
    SR_IMAGE_SERIES_NUMBER,
    SR_STUDY_SERIES_NUMBER,
    AiResult,
    acquisition_datetime,
    ascii_text,
    derived_uid,
    evidence_header,
    instance_number,
    laterality_of,
    series_description,
    set_content_datetime,
    standard_patient_orientation,
)

RESEARCH_SCORE = hd.sr.CodedConcept("RESEARCH-SCORE", LOCAL_SCHEME, "AI research score, not validated for clinical use")
AI_CALL = hd.sr.CodedConcept("AI-CALL", LOCAL_SCHEME, "AI call at the operating point")
FLAGGED = hd.sr.CodedConcept("FLAGGED", LOCAL_SCHEME, "Flagged")
NOT_FLAGGED = hd.sr.CodedConcept("NOT-FLAGGED", LOCAL_SCHEME, "Not flagged")
MODEL_VALIDATED = hd.sr.CodedConcept("MODEL-VALIDATED", LOCAL_SCHEME, "Model validated for clinical use")
STUDY_SUMMARY = hd.sr.CodedConcept("STUDY-SUMMARY", LOCAL_SCHEME, "AI study summary")
HEATMAP_PEAK = "Grad-CAM heatmap peak"
NO_LOCATION = "AI image score, no location (the model gives no heatmap)"
YES, NO = codes.SCT.Yes, codes.SCT.No
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
BREAST_SITES = {"L": codes.SCT.LeftBreast, "R": codes.SCT.RightBreast}


def image_sr_uid(*, source_sop_instance_uid: str, model_sha256: str) -> UID:
    return derived_uid("image-sr", source_sop_instance_uid, model_sha256)


def image_result_sr(*, source: Dataset, result: AiResult) -> hd.sr.ComprehensiveSR:
    """The per-image report: one measurement group referencing `source`."""
    return _result_sr(
        findings=[(source, result)],
        sop_instance_uid=image_sr_uid(source_sop_instance_uid=source.SOPInstanceUID, model_sha256=result.model_sha256),
        series_instance_uid=derived_uid("image-sr-series", source.StudyInstanceUID, result.model_sha256),
        series_number=SR_IMAGE_SERIES_NUMBER,
        instance_number=instance_number(source),
        description="AI result per image",
        with_summary=False,
        predecessor=None,
    )


def study_result_sr(
    *,
    findings: Sequence[tuple[Dataset, AiResult]],
    anchor: Dataset,
    sop_instance_uid: str,
    series_instance_uid: str,
    version: int,
    predecessor: Dataset | None = None,
) -> hd.sr.ComprehensiveSR:
    """The per-study report: every analysed image's group and a study summary (the highest score decides).

    It belongs to the DICOM study of `anchor`, the header of the study's first image (analysed or not), so that
    every version of the report sits in the same DICOM study as the version it replaces (`predecessor`).
    CBIS-DDSM gives each view its own StudyInstanceUID: sources of other DICOM studies are listed as evidence."""
    if not findings:
        raise ValueError("a study report needs at least one analysed image")
    return _result_sr(
        findings=findings,
        sop_instance_uid=UID(sop_instance_uid),
        series_instance_uid=UID(series_instance_uid),
        series_number=SR_STUDY_SERIES_NUMBER,
        instance_number=version,
        description="AI result per study",
        with_summary=True,
        predecessor=predecessor,
        anchor=anchor,
    )


def _result_sr(
    *,
    findings: Sequence[tuple[Dataset, AiResult]],
    sop_instance_uid: UID,
    series_instance_uid: UID,
    series_number: int,
    instance_number: int,
    description: str,
    with_summary: bool,
    predecessor: Dataset | None,
    anchor: Dataset | None = None,
) -> hd.sr.ComprehensiveSR:
    first_result = findings[0][1]
    headers = [evidence_header(source) for source, _ in findings]
    evidence = list(headers)
    if anchor is not None:  # first: highdicom takes the report's study from the first evidence
        anchor_uid = str(anchor.SOPInstanceUID)
        evidence = [evidence_header(anchor)] + [h for h in headers if str(h.SOPInstanceUID) != anchor_uid]
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
                    name=first_result.model_label[:64],
                    manufacturer_name=MANUFACTURER,
                    model_name=first_result.model_name[:64],
                ),
            )
        ),
        procedure_reported=codes.SCT.Mammography,
        imaging_measurements=groups,
        # The Image Library is optional in TID 1500; highdicom's entry for a projection image needs the
        # Patient Orientation and Imager Pixel Spacing that real MG files carry and CBIS-DDSM files lack.
        referenced_images=headers if all(_has_projection_descriptors(h) for h in headers) else None,
    )
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,  # an AI result is a preliminary opinion until a reader has reported the study
        is_verified=False,
        previous_versions=[predecessor] if predecessor is not None else None,
        series_description=series_description(description, first_result),
        manufacturer_model_name=first_result.model_name[:64],
        software_versions=first_result.model_version[:64],
        coding_schemes=[
            hd.coding_schemes.CodingSchemeIdentificationItem(
                designator=LOCAL_SCHEME, name=LOCAL_SCHEME_NAME, responsible_organization=MANUFACTURER
            )
        ],
    )
    set_content_datetime(
        sr, max(result.created_at for _, result in findings), acquired=acquisition_datetime(anchor or findings[0][0])
    )
    return sr


def _image_group(*, source: Dataset, result: AiResult):
    if not result.has_location:
        return _image_group_without_location(source=source, result=result)
    rows, columns = int(source.get("Rows") or 0), int(source.get("Columns") or 0)
    if rows and columns and not (-0.5 <= result.peak_row <= rows - 0.5 and -0.5 <= result.peak_column <= columns - 0.5):
        raise ValueError(
            f"heatmap peak ({result.peak_row}, {result.peak_column}) lies outside the {rows} x {columns} image"
        )
    laterality = laterality_of(source, result.laterality)
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


def _image_group_without_location(*, source: Dataset, result: AiResult) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The image's score from a model that gives no heatmap: a TID 1501 group that references the image as its
    source, with no image region (there is no location to point at)."""
    laterality = laterality_of(source, result.laterality)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid("tracking", source.SOPInstanceUID, result.model_sha256),
            identifier=NO_LOCATION,
        ),
        algorithm_id=_algorithm(result),
        finding_sites=[hd.sr.FindingSite(BREAST_SITES[laterality])] if laterality in BREAST_SITES else None,
        measurements=_measurements(result),
        qualitative_evaluations=_evaluations(result),
        source_images=[
            hd.sr.SourceImageForMeasurementGroup(
                referenced_sop_class_uid=source.SOPClassUID, referenced_sop_instance_uid=source.SOPInstanceUID
            )
        ],
    )


def _study_summary(results: Sequence[AiResult]) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    highest = max(results, key=lambda r: r.score)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid("study-summary", *sorted(r.model_sha256 + str(r.score) for r in results)),
            identifier="AI study summary: highest image score",
        ),
        finding_type=STUDY_SUMMARY,
        algorithm_id=_algorithm(highest),
        measurements=_measurements(highest),
        qualitative_evaluations=_evaluations(highest),
    )


def _algorithm(result: AiResult) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(
        name=result.model_name[:64],
        version=result.model_version[:64],
        parameters=[
            f"operating_point={result.operating_point:.6g}",
            f"model_sha256={result.model_sha256}",
            ascii_text(result.validation_summary)[:64],
        ],
        manufacturer=MANUFACTURER,
    )


def _measurements(result: AiResult) -> list[hd.sr.Measurement]:
    score = round(result.score, 6)
    if not result.validated:
        return [hd.sr.Measurement(name=RESEARCH_SCORE, value=score, unit=NO_UNITS)]
    return [
        hd.sr.Measurement(name=codes.DCM.ProbabilityOfCancer, value=score, unit=NO_UNITS),
        hd.sr.Measurement(name=codes.DCM.CADOperatingPoint, value=round(result.operating_point, 6), unit=NO_UNITS),
    ]


def _evaluations(result: AiResult) -> list[hd.sr.QualitativeEvaluation]:
    validated = [hd.sr.QualitativeEvaluation(name=MODEL_VALIDATED, value=YES if result.validated else NO)]
    if result.flagged is None:
        return validated
    return [hd.sr.QualitativeEvaluation(name=AI_CALL, value=FLAGGED if result.flagged else NOT_FLAGGED), *validated]


def _has_projection_descriptors(header: Dataset) -> bool:
    # highdicom's entry reads these two attributes themselves (not PixelSpacing).
    return standard_patient_orientation(header) is not None and len(header.get("ImagerPixelSpacing") or []) == 2
