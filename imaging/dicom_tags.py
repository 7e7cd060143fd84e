"""Reading DICOM headers for cases/decoding.py: patient/study fields, laterality and view, extras, and
the few header facts the validation needs (object kind, VOI, frame codestream size, bare datasets).

decoding.py owns the decisions (what is rejected, how pixels are scaled); this module only reads. Every
reader is forgiving: a malformed optional attribute becomes '' / None, never an exception, because a bad
StudyDescription must not make a readable mammogram unusable.
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
from datetime import date, datetime
from io import BytesIO
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.utils import _get_jpg_parameters  # private in pydicom 3.0.2 (pinned): JPEG SOF parser
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import PersonName

from imaging.naming_conventions import view_named_by

# Kept in ImageMetadata.extra when present: acquisition facts useful for QA, audit and model inputs.
EXTRA_KEYWORDS = (
    "BodyPartExamined",
    "PresentationIntentType",
    "ImagerPixelSpacing",
    "ManufacturerModelName",
    "SoftwareVersions",
    "DetectorType",
    "ImageType",
    "PatientOrientation",
    "PatientAge",
    "SeriesDescription",
    "SeriesNumber",
    "InstanceNumber",
    "AcquisitionDate",
    "ContentDate",
    "BitsAllocated",
    "PixelRepresentation",
    "PresentationLUTShape",
    "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign",
    "PixelPaddingValue",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "KVP",
    "Exposure",
    "ExposureTime",
    "XRayTubeCurrent",
    "BodyPartThickness",
    "CompressionForce",
    "BreastImplantPresent",
    "PartialView",
    "EstimatedRadiographicMagnificationFactor",
    "OrganDose",
    "EntranceDoseInmGy",
    "BurnedInAnnotation",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
)

# Friendlier names than the SOP Class for the usual DICOM objects without pixels.
NO_PIXEL_KINDS = {
    "SR": "a Structured Report",
    "RTSTRUCT": "an RT Structure Set",
    "RTPLAN": "an RT Plan",
    "RTRECORD": "an RT Treatment Record",
    "KO": "a Key Object Selection",
    "PR": "a Presentation State",
    "DOC": "an encapsulated document",
}
# View Code Sequence codes (SNOMED-RT and SNOMED CT) for the common mammography views (PS3.16 CID 4014).
_VIEW_CODES = {
    "R-10242": "CC",
    "399162004": "CC",
    "R-10226": "MLO",
    "399368009": "MLO",
    "R-10224": "ML",
    "399260004": "ML",
    "R-10228": "LM",
    "399352003": "LM",
}
# Side and view written in text: CBIS-DDSM PatientIDs ('Mass-Test_P_00173_RIGHT_CC'), INbreast-style names
# ('..._L_CC_...', 'RMLO') and uploaded file names ('L_CC.png', 'right-mlo.jpg'). One rule for all of them.
_VIEWS = r"CC|MLO|ML|LM|XCCL"
_SHORT_FORM = re.compile(rf"(?<![A-Z])([LR]|LEFT|RIGHT)[_\- ]?({_VIEWS})(?![A-Z])", re.IGNORECASE)
_LATERALITY_WORD = re.compile(r"(?<![A-Z])(LEFT|RIGHT)(?![A-Z])", re.IGNORECASE)
_VIEW_WORD = re.compile(rf"(?<![A-Z])({_VIEWS})(?![A-Z])", re.IGNORECASE)


def descriptive_fields(ds: Dataset) -> dict[str, Any]:
    """The ImageMetadata fields that describe (rather than validate) a DICOM image."""
    laterality, view = laterality_and_view(ds)
    return {
        "laterality": laterality,
        "view": view,
        "sop_instance_uid": text(ds, "SOPInstanceUID"),
        "sop_class_uid": text(ds, "SOPClassUID"),
        "study_instance_uid": text(ds, "StudyInstanceUID"),
        "series_instance_uid": text(ds, "SeriesInstanceUID"),
        "transfer_syntax_uid": text(ds.file_meta, "TransferSyntaxUID") if hasattr(ds, "file_meta") else "",
        "modality": text(ds, "Modality"),
        "manufacturer": text(ds, "Manufacturer"),
        "patient_id": text(ds, "PatientID"),
        "patient_name": text(ds, "PatientName"),
        "patient_birth_date": dicom_date(ds, "PatientBirthDate"),
        "patient_sex": text(ds, "PatientSex").upper(),
        "study_date": dicom_date(ds, "StudyDate"),
        "study_description": text(ds, "StudyDescription"),
        "accession_number": text(ds, "AccessionNumber"),
        "pixel_spacing_mm": pixel_spacing_mm(ds),
        "extra": extra_attributes(ds),
    }


def laterality_and_view(ds: Dataset) -> tuple[str, str]:
    """('L'|'R'|'', view) from the image-level tags first, then from identifier text (CBIS-DDSM)."""
    # ImageLaterality is per image; Laterality is per series and only a fallback. 'B'/'U' are not a side.
    stated = text(ds, "ImageLaterality") or text(ds, "Laterality")
    laterality = stated.upper() if stated.upper() in ("L", "R") else ""
    view = text(ds, "ViewPosition").upper() or _view_from_code_sequence(ds)
    if not laterality or not view:
        parsed_laterality, parsed_view = parse_laterality_view(text(ds, "PatientID"))
        laterality = laterality or parsed_laterality
        view = view or parsed_view
    return laterality, view


def parse_laterality_view(identifier: str) -> tuple[str, str]:
    """('L'|'R'|'', view) from text such as 'Mass-Test_P_00173_RIGHT_CC', 'case7_L_MLO' or a file name 'L_CC.png'
    (only its last path component is read)."""
    identifier = identifier.replace("\\", "/").rsplit("/", 1)[-1]
    short = _SHORT_FORM.search(identifier)
    if short:
        return short.group(1).upper()[0], short.group(2).upper()
    side = _LATERALITY_WORD.search(identifier)
    view = _VIEW_WORD.search(identifier)
    return (side.group(1).upper()[0] if side else ""), (view.group(1).upper() if view else "")


def woman_id(patient_id: str) -> str:
    """The woman a PatientID stands for: as given, unless a dataset's naming convention names her in it
    (CBIS-DDSM's 'Mass-Test_P_00173_RIGHT_CC' is 'P_00173')."""
    patient_id = (patient_id or "").strip()
    named = view_named_by(patient_id)
    return named.woman if named else patient_id


def _view_from_code_sequence(ds: Dataset) -> str:
    try:
        item = ds.ViewCodeSequence[0]
        return _VIEW_CODES.get(str(item.CodeValue).strip(), "")
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return ""


def text(ds: Dataset, keyword: str) -> str:
    """A single- or multi-valued attribute as stripped text ('' if absent or unreadable)."""
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed optional value must not reject the image
        return ""
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(item) for item in value).strip()
    return str(value).strip()


def dicom_date(ds: Dataset, keyword: str) -> date | None:
    """DA 'YYYYMMDD' (or the old ACR-NEMA 'YYYY.MM.DD') as a date; None if absent or invalid."""
    raw = text(ds, keyword).replace(".", "")[:8]
    try:
        return datetime.strptime(raw, "%Y%m%d").date()
    except ValueError:
        return None


def pixel_spacing_mm(ds: Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm: PixelSpacing, else ImagerPixelSpacing (what most DX/MG files carry)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            values = [float(v) for v in ds.get(keyword) or []]
        except (TypeError, ValueError):
            continue
        if len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values):
            return values[0], values[1]
    return None


def extra_attributes(ds: Dataset) -> dict[str, Any]:
    """JSON-serialisable values of EXTRA_KEYWORDS that are present, plus the view code meaning."""
    extra: dict[str, Any] = {}
    for keyword in EXTRA_KEYWORDS:
        try:
            value = json_value(ds.get(keyword))
        except Exception:  # an unreadable optional attribute is simply not kept
            continue
        if value not in (None, "", []):
            extra[keyword] = value
    with contextlib.suppress(AttributeError, IndexError, KeyError, TypeError):
        extra["ViewCodeMeaning"] = str(ds.ViewCodeSequence[0].CodeMeaning)
    return extra


def json_value(value: Any) -> Any:
    """DICOM element values as plain JSON types; None for binary data, sequences and non-finite numbers."""
    if value is None or isinstance(value, bytes | bytearray | Sequence):
        return None
    if isinstance(value, MultiValue | list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, PersonName):
        return str(value)
    return str(value).strip()


def describe_object(ds: Dataset) -> str:
    """' (it is a Structured Report: Basic Text SR Storage)' or '' for the no-pixel-data message."""
    sop_class = text(ds, "SOPClassUID")
    class_name = UID(sop_class).name if sop_class else ""
    class_name = "" if class_name == sop_class else class_name  # pydicom returns unknown UIDs unchanged
    kind = NO_PIXEL_KINDS.get(text(ds, "Modality").upper(), "")
    if kind:
        return f" (it is {kind}: {class_name})" if class_name else f" (it is {kind})"
    return f" ({class_name})" if class_name else ""


def planned_voi(ds: Dataset) -> str:
    """The VOI transformation the header asks for: 'VOI LUT', 'window C/W[ FUNCTION]' or 'none'."""
    try:
        if ds.get("VOILUTSequence") and "LUTData" in ds.VOILUTSequence[0]:
            return "VOI LUT"
        if "WindowCenter" in ds and "WindowWidth" in ds:
            center, width = first_number(ds.WindowCenter), first_number(ds.WindowWidth)
            function = text(ds, "VOILUTFunction").upper()
            return f"window {center:g}/{width:g}" + (f" {function}" if function not in ("", "LINEAR") else "")
    except (AttributeError, IndexError, TypeError, ValueError):
        pass
    return "none"


def ensure_transfer_syntax(ds: Dataset) -> None:
    """Bare datasets have no file meta; the pixel decoders need the syntax pydicom detected while reading."""
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )


def int_value(ds: Dataset, keyword: str, default: int) -> int:
    """An IS/US attribute as int (first value if multi-valued); `default` if absent or malformed."""
    try:
        value = ds.get(keyword)
        return default if value in (None, "") else int(first_number(value))
    except (TypeError, ValueError):
        return default


def first_number(value: Any) -> float:
    return float(value[0]) if isinstance(value, list | tuple | MultiValue) else float(value)


def codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a JPEG/JPEG-LS SOF or a JPEG 2000 SIZ marker segment; None if neither."""
    if frame.startswith(b"\xff\xd8"):
        info = _get_jpg_parameters(frame)
        return (info["height"], info["width"]) if "height" in info else None
    siz = frame.find(b"\xff\x4f\xff\x51", 0, 65536)  # SOC then SIZ, possibly after JP2 boxes
    if siz < 0 or len(frame) < siz + 24:
        return None
    width, height, x_offset, y_offset = struct.unpack(">IIII", frame[siz + 8 : siz + 24])
    return height - y_offset, width - x_offset


def looks_like_bare_dicom(data: bytes) -> bool:
    """A DICOM dataset without the 128-byte preamble and file meta (as some old modalities write it, in little or
    big endian): accepted only if it starts with a group 0002 or 0008 tag and pydicom then finds image-size tags or
    a well-formed SOP Class UID."""
    if data[:2] not in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"):
        return False
    try:
        ds = pydicom.dcmread(BytesIO(data), force=True, stop_before_pixels=True)
        return ("Rows" in ds and "Columns" in ds) or text(ds, "SOPClassUID").startswith("1.2.840.10008.")
    except Exception:  # anything pydicom cannot parse is simply not DICOM
        return False
