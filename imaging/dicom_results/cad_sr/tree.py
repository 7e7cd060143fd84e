"""The content tree of TID 4000 Mammography CAD Document Root (PS3.16), built row by row.

    CONTAINER Mammography CAD Report                                  TID 4000 row 1
      HAS CONCEPT MOD  CODE Language                                  row 2, TID 1204
      CONTAINS CONTAINER Image Library                                row 3
        CONTAINS IMAGE (+ laterality, view, orientation, dates...)    row 4, TID 4020, one per image
      CONTAINS CODE CAD Processing and Findings Summary (CID 6047)    row 5, TID 4001
        HAS PROPERTIES  exam impression body                          TID 4002: description, certainty, TID 4019
        INFERRED FROM CONTAINER Individual Impression/Recommendation  TID 4003, one per breast (and density)
          HAS CONCEPT MOD CODE Rendering Intent
          CONTAINS  breast impression body                            TID 4002
          CONTAINS CODE Single Image Finding = Selected region        TID 4006, one per analysed image
            HAS CONCEPT MOD Rendering Intent; HAS OBS CONTEXT tracking (TID 4108); HAS PROPERTIES TID 4019,
            Certainty of Finding, SCOORD Center (TID 4021) R-SELECTED FROM its Image Library IMAGE,
            Selected Region Description (TID 4013)
      CONTAINS CODE Summary of Detections (CID 6042)                  rows 6-7, TID 4015/4017
      CONTAINS CODE Summary of Analyses (CID 6042)                    rows 8-9, TID 4016/4018

Image Library entries are referenced by position (by-reference relationships, allowed by PS3.3 Table A.35.5-2):
the root is 1, the Image Library its second child, so the n-th entry is (1, 2, n).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from imaging.dicom_results.cad_sr import codes as c
from imaging.dicom_results.cad_sr.content import (
    CONTAINS,
    HAS_CONCEPT_MOD,
    HAS_OBS_CONTEXT,
    HAS_PROPERTIES,
    INFERRED_FROM,
    SELECTED_FROM,
    by_reference,
    code,
    container,
    num,
    point,
    text,
    uidref,
)
from imaging.dicom_results.cad_sr.library import SIDE_NAMES, Entry, library_entry
from imaging.dicom_results.cad_sr.model import BreastComposition, CadAlgorithm
from imaging.dicom_results.common import derived_uid


def content_tree(entries: Sequence[Entry], algorithm: CadAlgorithm, composition: BreastComposition | None) -> Dataset:
    succeeded = [e for e in entries if e.image.status == "succeeded"]
    failed = [e for e in entries if e.image.status == "failed"]
    impressions = [
        impression
        for side in SIDE_NAMES
        if (impression := _breast_impression(side, [e for e in succeeded if e.laterality == side], algorithm))
    ]
    if composition is not None:
        impressions += [_composition_impression(key, composition) for key in ("R", "L", "exam")
                        if key in composition.categories]  # fmt: skip
    root = container(
        None,
        c.MAMMOGRAPHY_CAD_REPORT,
        [
            code(HAS_CONCEPT_MOD, c.LANGUAGE, c.ENGLISH_US),
            container(CONTAINS, c.IMAGE_LIBRARY, [library_entry(entry) for entry in entries]),
            code(
                CONTAINS,
                c.CAD_PROCESSING_AND_FINDINGS_SUMMARY,
                _processing_summary(entries, succeeded, composition, findings=bool(impressions)),
                [*(_exam_body(entries, succeeded, algorithm) if succeeded else []), *impressions],
            ),
            _summary_of_detections(entries, succeeded, failed, algorithm, composition),
            _summary_of_analyses(succeeded, algorithm),
        ],
    )
    template = Dataset()
    template.MappingResource = "DCMR"
    template.MappingResourceUID = "1.2.840.10008.8.1.1"
    template.TemplateIdentifier = "4000"
    root.ContentTemplateSequence = [template]
    return root


# --- TID 4001 / 4002 / 4003 / 4006: the results ----------------------------------------------------------------


def _exam_body(entries: Sequence[Entry], succeeded: Sequence[Entry], algorithm: CadAlgorithm) -> list[Dataset]:
    best = max(e.score for e in succeeded)
    others = {status: sum(e.image.status == status for e in entries) for status in ("failed", "not_attempted")}
    description = (
        f"Exam: highest image score {best:.4f} of {len(succeeded)} analysed image(s) "
        f"({others['failed']} failed, {others['not_attempted']} not attempted). {_verdict(algorithm, best)}"
    )
    return _body(HAS_PROPERTIES, description, best, algorithm)


def _breast_impression(side: str, succeeded: Sequence[Entry], algorithm: CadAlgorithm) -> Dataset | None:
    findings = [_peak_finding(entry, algorithm) for entry in succeeded if entry.image.peak is not None]
    if not findings:  # TID 4003 needs at least one finding
        return None
    best = max(e.score for e in succeeded)
    description = (
        f"{SIDE_NAMES[side].capitalize()}: highest image score {best:.4f} of {len(succeeded)} analysed image(s). "
        f"{_verdict(algorithm, best)}"
    )
    shown = max(e.score for e in succeeded if e.image.peak is not None)
    return container(
        INFERRED_FROM,
        c.INDIVIDUAL_IMPRESSION,
        [
            code(HAS_CONCEPT_MOD, c.RENDERING_INTENT, _rendering_intent(algorithm, shown)),
            *_body(CONTAINS, description, best, algorithm),
            *findings,
        ],
    )


def _peak_finding(entry: Entry, algorithm: CadAlgorithm) -> Dataset:
    """TID 4006 with value Selected region: where the model's heatmap peaks. It names no lesion type, so it makes
    no claim the model cannot back, and TID 4006 row 7 forbids Probability of cancer for it."""
    row, column = entry.image.peak or (0.0, 0.0)
    source = entry.image.source
    where = f"{SIDE_NAMES[entry.laterality]}, {entry.view[2] if entry.view else 'view not recorded'}"
    intent = _rendering_intent(algorithm, entry.score)
    shown = "a CAD mark for presentation" if intent == c.PRESENTATION_REQUIRED else "not for presentation"
    description = (
        f"Peak of the model's heatmap ({where}): image score {entry.score:.4f}, "
        f"{_verdict(algorithm, entry.score)} This point is {shown}."
    )
    return code(
        CONTAINS,
        c.SINGLE_IMAGE_FINDING,
        c.SELECTED_REGION,
        [
            code(HAS_CONCEPT_MOD, c.RENDERING_INTENT, intent),
            text(HAS_OBS_CONTEXT, c.TRACKING_IDENTIFIER, f"heatmap peak, {where}"),
            uidref(
                HAS_OBS_CONTEXT,
                c.TRACKING_UID,
                derived_uid("cad-sr-peak", source.SOPInstanceUID, algorithm.model_sha256),
            ),
            *_algorithm_identification(HAS_PROPERTIES, algorithm),
            num(HAS_PROPERTIES, c.CERTAINTY_OF_FINDING, round(entry.score * 100, 6), c.PERCENT),
            # PS3.3 C.18.6.1.1: (column, row) with (0, 0) at the top left corner of the top left pixel, so the
            # centre of the pixel at row r, column c is (c + 0.5, r + 0.5).
            point(
                HAS_PROPERTIES,
                c.CENTER,
                column=column + 0.5,
                row=row + 0.5,
                children=[by_reference(SELECTED_FROM, entry.path)],
            ),
            text(HAS_PROPERTIES, c.SELECTED_REGION_DESCRIPTION, description),
        ],
    )


def _composition_impression(key: str, composition: BreastComposition) -> Dataset:
    """TID 4003 holding one TID 4006 'Breast composition' finding with its TID 4007 category (CID 6000)."""
    algorithm, category = composition.algorithm, composition.categories[key]
    value = c.COMPOSITIONS[category]
    where = "exam (both breasts)" if key == "exam" else SIDE_NAMES[key]
    description = (
        f"Breast composition, {where}: category {category} ({value[2].lower()}) by {algorithm.name} "
        f"{algorithm.version}. {_validation(algorithm)}"
    )
    intent = c.PRESENTATION_REQUIRED if algorithm.validated else c.NOT_FOR_PRESENTATION
    finding = code(
        CONTAINS,
        c.SINGLE_IMAGE_FINDING,
        c.BREAST_COMPOSITION,
        [
            code(HAS_CONCEPT_MOD, c.RENDERING_INTENT, intent),
            *_algorithm_identification(HAS_PROPERTIES, algorithm, operating_point=False),
            code(HAS_PROPERTIES, c.BREAST_COMPOSITION, value),
        ],
    )
    return container(
        INFERRED_FROM,
        c.INDIVIDUAL_IMPRESSION,
        [
            code(HAS_CONCEPT_MOD, c.RENDERING_INTENT, intent),
            text(CONTAINS, c.IMPRESSION_DESCRIPTION, description),
            *_algorithm_identification(CONTAINS, algorithm, operating_point=False),
            finding,
        ],
    )


def _body(relationship: str, description: str, best: float, algorithm: CadAlgorithm) -> list[Dataset]:
    """TID 4002 rows 5, 10 and 11: Impression Description, Certainty of Impression, Algorithm Identification."""
    return [
        text(relationship, c.IMPRESSION_DESCRIPTION, description),
        num(relationship, c.CERTAINTY_OF_IMPRESSION, round(best * 100, 6), c.PERCENT),
        *_algorithm_identification(relationship, algorithm),
    ]


def _algorithm_identification(relationship: str, algorithm: CadAlgorithm, *, operating_point: bool = True) -> list:
    """TID 4019: name, version, manufacturer and parameters (threshold, model file hash, clinical validation)."""
    parameters = [f"operating_point={algorithm.operating_point:g} (threshold on the image score, 0 to 1)"]
    parameters = parameters if operating_point else []
    parameters += [f"model_sha256={algorithm.model_sha256}", f"clinical_use={_validation(algorithm)}"]
    return [
        text(relationship, c.ALGORITHM_NAME, algorithm.name),
        text(relationship, c.ALGORITHM_VERSION, algorithm.version),
        text(relationship, c.ALGORITHM_MANUFACTURER, algorithm.manufacturer),
        *(text(relationship, c.ALGORITHM_PARAMETERS, parameter) for parameter in parameters),
    ]


def _rendering_intent(algorithm: CadAlgorithm, score: float) -> c.Code:
    if algorithm.validated and score >= algorithm.operating_point:
        return c.PRESENTATION_REQUIRED
    return c.NOT_FOR_PRESENTATION


def _validation(algorithm: CadAlgorithm) -> str:
    if algorithm.validated:
        return "Model validated for clinical use."
    return "RESEARCH USE ONLY: model not validated for clinical use, not for diagnosis."


def _verdict(algorithm: CadAlgorithm, best: float) -> str:
    """Where the score lies against the operating point is a result only for a validated model; for a research
    model the text gives the threshold and no verdict."""
    model = f"{algorithm.name} {algorithm.version}, operating point {algorithm.operating_point:g}"
    if algorithm.validated:
        model += ", " + ("score at or above it" if best >= algorithm.operating_point else "score below it")
    return f"{model}. {_validation(algorithm)}"


def _processing_summary(
    entries: Sequence[Entry], succeeded: Sequence[Entry], composition: BreastComposition | None, *, findings: bool
) -> c.Code:
    """CID 6047. Any image not analysed (failed or not attempted) makes it 'Not all algorithms succeeded'."""
    if not succeeded and composition is None:
        return c.NONE_SUCCEEDED_WITHOUT_FINDINGS
    if len(succeeded) == len(entries):
        return c.ALL_SUCCEEDED_WITH_FINDINGS if findings else c.ALL_SUCCEEDED_WITHOUT_FINDINGS
    return c.NOT_ALL_SUCCEEDED_WITH_FINDINGS if findings else c.NOT_ALL_SUCCEEDED_WITHOUT_FINDINGS


# --- TID 4015 / 4017 and TID 4016 / 4018: what ran, on which images ---------------------------------------------


def _summary_of_detections(
    entries: Sequence[Entry],
    succeeded: Sequence[Entry],
    failed: Sequence[Entry],
    algorithm: CadAlgorithm,
    composition: BreastComposition | None,
) -> Dataset:
    """Succeeded images under Successful Detections, failed ones under Failed Detections; images not attempted
    are in the Image Library only (TID 4015: algorithms not attempted are not mentioned)."""
    successful = [_performed(c.DETECTION_PERFORMED, c.SELECTED_REGION, algorithm, succeeded)] if succeeded else []
    if composition is not None:
        sides = {key for key in composition.categories if key != "exam"}
        used = entries if "exam" in composition.categories else [e for e in entries if e.laterality in sides]
        successful.append(
            _performed(c.DETECTION_PERFORMED, c.BREAST_COMPOSITION, composition.algorithm, used or entries, False)
        )
    unsuccessful = [_performed(c.DETECTION_PERFORMED, c.SELECTED_REGION, algorithm, failed)] if failed else []
    status = {
        (True, False): c.SUCCEEDED,
        (True, True): c.PARTIALLY_SUCCEEDED,
        (False, True): c.FAILED,
        (False, False): c.NOT_ATTEMPTED,
    }[(bool(successful), bool(unsuccessful))]
    children = [container(INFERRED_FROM, c.SUCCESSFUL_DETECTIONS, successful)] if successful else []
    children += [container(INFERRED_FROM, c.FAILED_DETECTIONS, unsuccessful)] if unsuccessful else []
    return code(CONTAINS, c.SUMMARY_OF_DETECTIONS, status, children)


def _summary_of_analyses(succeeded: Sequence[Entry], algorithm: CadAlgorithm) -> Dataset:
    """The per-breast and per-exam impressions are analyses (PS3.17 E.1): the highest image score decides."""
    if not succeeded:
        return code(CONTAINS, c.SUMMARY_OF_ANALYSES, c.NOT_ATTEMPTED)
    analyses = [
        _performed(c.ANALYSIS_PERFORMED, c.INDIVIDUAL_IMPRESSION_ANALYSIS, algorithm, succeeded),
        _performed(c.ANALYSIS_PERFORMED, c.OVERALL_IMPRESSION_ANALYSIS, algorithm, succeeded),
    ]
    return code(
        CONTAINS, c.SUMMARY_OF_ANALYSES, c.SUCCEEDED, [container(INFERRED_FROM, c.SUCCESSFUL_ANALYSES, analyses)]
    )


def _performed(
    concept: c.Code, value: c.Code, algorithm: CadAlgorithm, entries: Sequence[Entry], operating_point: bool = True
) -> Dataset:
    """TID 4017 / TID 4018: the algorithm, and the Image Library entries it ran on (by reference, row 4)."""
    return code(
        CONTAINS,
        concept,
        value,
        [
            *_algorithm_identification(HAS_PROPERTIES, algorithm, operating_point=operating_point),
            *(by_reference(HAS_PROPERTIES, entry.path) for entry in entries),
        ],
    )
