"""The heatmap overlay as a Secondary Capture of the source's study: the source image with the Grad-CAM heatmap
blended in, marked as derived (ImageType DERIVED\\SECONDARY, Source Image Sequence, derivation description), with
a banner burned into the picture that says what it is (for a model that is not validated: research use only, not
for diagnosis), Content Qualification RESEARCH for such a model, and a series description that says so first."""

from __future__ import annotations

import cv2
import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from imaging.dicom_results.common import (
    MANUFACTURER,
    SC_SERIES_NUMBER,
    AiResult,
    acquisition_datetime,
    code_item,
    derived_uid,
    evidence_header,
    imager_pixel_spacing,
    instance_number,
    laterality_of,
    research_statement,
    series_description,
    set_content_datetime,
    standard_patient_orientation,
)

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MIN_SCALE, _MAX_SCALE = 0.35, 2.0


def overlay_sc_uid(*, source_sop_instance_uid: str, model_sha256: str) -> UID:
    return derived_uid("overlay-sc", source_sop_instance_uid, model_sha256)


def overlay_secondary_capture(*, source: Dataset, result: AiResult) -> hd.sc.SCImage:
    """The overlay picture as a Secondary Capture of the source's study.

    Each overlay gets its own series (derived from the source image), so the series-level Laterality is right.
    Patient Orientation is the source's when it holds two standard values (A\\R, A\\FR...), else empty (Type 2C;
    CBIS-DDSM writes the view name there)."""
    if result.overlay_rgb is None:
        raise ValueError("this result has no overlay image")
    overlay = np.asarray(result.overlay_rgb)
    if overlay.ndim != 3 or overlay.shape[2] != 3 or overlay.dtype != np.uint8 or min(overlay.shape[:2]) < 1:
        raise ValueError(f"overlay_rgb must be an H x W x 3 uint8 array, not {overlay.dtype} {overlay.shape}")
    pixels = with_banner(overlay, research_statement(result))
    header = evidence_header(source)
    laterality = laterality_of(source, result.laterality)
    orientation = standard_patient_orientation(source)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=header,
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        # highdicom checks single-letter values only (it refuses A\FR); the real value is written below.
        patient_orientation=("A", "R"),
        laterality=laterality or None,
        series_instance_uid=derived_uid("overlay-sc-series", source.SOPInstanceUID, result.model_sha256),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=overlay_sc_uid(
            source_sop_instance_uid=source.SOPInstanceUID, model_sha256=result.model_sha256
        ),
        instance_number=instance_number(source),
        manufacturer=MANUFACTURER,
        pixel_spacing=_scaled_spacing(source, overlay.shape[:2]),
        series_description=series_description("AI heatmap overlay", result),
        manufacturer_model_name=result.model_name[:64],
        software_versions=result.model_version[:64],
        content_qualification="PRODUCT" if result.validated else "RESEARCH",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    # Type 2C, both required here (the breast is a paired organ, the image has no patient position): the
    # source's values, or empty when nobody knows them.
    sc.PatientOrientation = list(orientation) if orientation else ""
    sc.Laterality = laterality
    sc.BodyPartExamined = "BREAST"
    # Derived from the source image, by an image processing operation (PS3.16 CID 7202 / CID 7203).
    sc.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    sc.DerivationDescription = f"Grad-CAM heatmap of {result.model_label} blended over the source image"[:1024]
    if overlay.shape[:2] != (int(source.get("Rows") or 0), int(source.get("Columns") or 0)):
        sc.DerivationCodeSequence = [code_item(hd.sr.CodedConcept("113085", "DCM", "Spatial resampling"))]
    source_ref = Dataset()
    source_ref.ReferencedSOPClassUID = source.SOPClassUID
    source_ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    source_ref.PurposeOfReferenceCodeSequence = [
        code_item(hd.sr.CodedConcept("121322", "DCM", "Source image for image processing operation"))
    ]
    sc.SourceImageSequence = [source_ref]
    # BurnedInAnnotation says whether the pixels identify the patient (PS3.3 C.7.6.1.1.7): the banner names the
    # model and its research status, nothing about the woman, so NO is the accurate value.
    sc.BurnedInAnnotation = "NO"
    sc.RecognizableVisualFeatures = "NO"
    sc.ImageComments = research_statement(result)
    sc.LossyImageCompression = "00"
    set_content_datetime(sc, result.created_at, acquired=acquisition_datetime(source))
    return sc


def banner_layout(text: str, columns: int) -> tuple[float, list[str]]:
    """(font scale, lines) of the banner over an image `columns` pixels wide: the text on one line as wide as the
    image allows; below a readable size, on as many lines as it needs (never clipped)."""
    usable = max(columns - 8, 1)
    (unit_width, _), _ = cv2.getTextSize(text, _FONT, 1.0, 1)
    scale = min(usable / unit_width, _MAX_SCALE)
    while scale >= _MIN_SCALE and banner_line_width(text, scale) > usable:  # glyph sizes are not quite linear
        scale *= 0.97
    if scale >= _MIN_SCALE:
        return scale, [text]
    # Readable: at least eight wide letters to a line, however narrow the image (then the scale shrinks).
    scale = max(min(usable / cv2.getTextSize("M" * 8, _FONT, 1.0, 1)[0][0], _MIN_SCALE), 0.1)
    return scale, _wrap(text, scale=scale, width=usable)


def with_banner(overlay: np.ndarray, text: str) -> np.ndarray:
    """The overlay with a black band at the top holding `text` in white, whole at any image width (banner_layout):
    a narrow image gets a taller band, never a clipped sentence."""
    rows, columns = overlay.shape[:2]
    scale, lines = banner_layout(text, columns)
    (_, line_height), baseline = cv2.getTextSize("Ay", _FONT, scale, 1)
    step = line_height + baseline + 4
    band = min(rows, step * len(lines) + 6)
    out = np.ascontiguousarray(overlay.copy())
    out[:band] = 0
    for number, line in enumerate(lines):
        cv2.putText(out, line, (4, 4 + line_height + number * step), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def banner_line_width(line: str, scale: float) -> int:
    return cv2.getTextSize(line, _FONT, scale, 1)[0][0]


def _wrap(text: str, *, scale: float, width: int) -> list[str]:
    """Words onto lines no wider than `width` pixels at `scale`; a word wider than a line is cut into pieces."""

    def fits(candidate: str) -> bool:
        return cv2.getTextSize(candidate, _FONT, scale, 1)[0][0] <= width

    lines: list[str] = []
    current = ""
    for word in text.split():
        while not fits(word):  # a single word wider than the line
            cut = max(1, next((n for n in range(len(word), 0, -1) if fits(word[:n])), 1))
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{current} {word}".strip()
        if fits(candidate):
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def _scaled_spacing(source: Dataset, shape: tuple[int, int]) -> tuple[float, float] | None:
    """The source's pixel spacing scaled to the overlay's size (the overlay may be a reduced picture)."""
    spacing = imager_pixel_spacing(source)
    rows, columns = int(source.get("Rows") or 0), int(source.get("Columns") or 0)
    if spacing is None or not (rows and columns):
        return None
    return spacing[0] * rows / shape[0], spacing[1] * columns / shape[1]
