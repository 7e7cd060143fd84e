"""TID 4020 CAD Image Library Entry: each image of the exam with what its header (or the platform) says of it.

TID 4020's rows are conditional on the attribute being in the image ("shall be present if (0020,0062) is in the
Image Instance"). Laterality and view the platform recorded for a header that lacks them (CBIS-DDSM) are written
too: the condition requires them when the header has them and does not forbid them otherwise, and a workstation
needs them to hang the image. A value the header has but that is not valid (Patient Orientation 'CC', an empty
Study Date) is left out rather than copied.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

from imaging.dicom_results.cad_sr import codes as c
from imaging.dicom_results.cad_sr.content import (
    CONTAINS,
    HAS_ACQ_CONTEXT,
    HAS_CONCEPT_MOD,
    code,
    date,
    image,
    num,
    text,
    time,
)
from imaging.dicom_results.cad_sr.model import CadImage

SIDE_NAMES = {"R": "right breast", "L": "left breast", "B": "both breasts", "": "breast side not recorded"}
_ORIENTATION = re.compile(r"[APRLHF]{1,3}")
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")


@dataclass(frozen=True)
class Entry:
    """An image of the Image Library with what was resolved from its header and the platform's record."""

    image: CadImage
    laterality: str  # 'L' | 'R' | 'B' | ''
    view: c.Code | None
    path: tuple[int, ...]  # the IMAGE item's Referenced Content Item Identifier

    @property
    def score(self) -> float:
        return float(self.image.score if self.image.score is not None else math.nan)


def library_entry(entry: Entry) -> Dataset:
    source = entry.image.source
    context: list[Dataset] = []
    if entry.laterality in c.SIDES:
        context.append(code(HAS_ACQ_CONTEXT, c.IMAGE_LATERALITY, c.SIDES[entry.laterality]))
    if entry.view is not None:
        modifiers = [code(HAS_CONCEPT_MOD, c.IMAGE_VIEW_MODIFIER, m) for m in view_modifiers(source)]
        context.append(code(HAS_ACQ_CONTEXT, c.IMAGE_VIEW, entry.view, modifiers))
    orientation = patient_orientation(source)
    if orientation is not None:
        context.append(text(HAS_ACQ_CONTEXT, c.PATIENT_ORIENTATION_ROW, orientation[0]))
        context.append(text(HAS_ACQ_CONTEXT, c.PATIENT_ORIENTATION_COLUMN, orientation[1]))
    for keyword, concept, kind, pattern in (
        ("StudyDate", c.STUDY_DATE, date, _DATE),
        ("StudyTime", c.STUDY_TIME, time, _TIME),
        ("ContentDate", c.CONTENT_DATE, date, _DATE),
        ("ContentTime", c.CONTENT_TIME, time, _TIME),
    ):
        value = str(source.get(keyword) or "").strip()
        if pattern.fullmatch(value):
            context.append(kind(HAS_ACQ_CONTEXT, concept, value))
    spacing = pixel_spacing(source)
    if spacing is not None:  # (row spacing, column spacing): columns are spaced horizontally
        context.append(num(HAS_ACQ_CONTEXT, c.HORIZONTAL_PIXEL_SPACING, spacing[1], c.MILLIMETER))
        context.append(num(HAS_ACQ_CONTEXT, c.VERTICAL_PIXEL_SPACING, spacing[0], c.MILLIMETER))
    return image(CONTAINS, sop_class_uid=source.SOPClassUID, sop_instance_uid=source.SOPInstanceUID, children=context)


def resolve_laterality(cad_image: CadImage) -> str:
    """The header's Image Laterality, else its (series) Laterality, else what the platform recorded."""
    for keyword in ("ImageLaterality", "Laterality"):
        value = str(cad_image.source.get(keyword) or "").strip().upper()
        if value in c.SIDES:
            return value
    return cad_image.laterality


def resolve_view(cad_image: CadImage) -> c.Code | None:
    """A CID 4014 view: the header's View Code Sequence when it holds one, else its View Position or the record."""
    known = {view[0]: view for view in c.VIEWS.values()}
    for item in cad_image.source.get("ViewCodeSequence") or []:
        if item.get("CodingSchemeDesignator") == "SCT" and item.get("CodeValue") in known:
            return known[item.CodeValue]
    for candidate in (cad_image.source.get("ViewPosition"), cad_image.view):
        key = str(candidate or "").strip().upper()
        if key in c.VIEWS:
            return c.VIEWS[key]
    return None


def view_modifiers(source: Dataset) -> list[c.Code]:
    found: list[c.Code] = []
    for view in source.get("ViewCodeSequence") or []:
        for item in view.get("ViewModifierCodeSequence") or []:
            if item.get("CodingSchemeDesignator") == "SCT" and item.get("CodeValue") in c.VIEW_MODIFIER_VALUES:
                found.append((str(item.CodeValue), "SCT", str(item.get("CodeMeaning") or item.CodeValue)))
    return found


def patient_orientation(source: Dataset) -> tuple[str, str] | None:
    """The two Patient Orientation values when they are standard (e.g. A\\R, P\\FL); None when absent or not
    (CBIS-DDSM writes 'CC' or 'MLO' there): a malformed value is left out, never copied."""
    value = source.get("PatientOrientation")
    if not value:
        return None
    parts = [str(part).strip().upper() for part in (value.split("\\") if isinstance(value, str) else value)]
    if len(parts) == 2 and all(_ORIENTATION.fullmatch(part) for part in parts):
        return parts[0], parts[1]
    return None


def pixel_spacing(source: Dataset) -> tuple[float, float] | None:
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        try:
            row, column = (float(v) for v in source.get(keyword) or [])
        except (TypeError, ValueError):
            continue
        if all(math.isfinite(v) and v > 0 for v in (row, column)):
            return row, column
    return None
