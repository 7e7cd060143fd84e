"""What decoding produces and how it refuses: the shared vocabulary of imaging.decoding and its DICOM and raster
readers (imaging.dicom_decoding, imaging.raster_decoding)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import cv2
import numpy as np

from imaging.limits import DecodeLimits

FORMAT_NAMES = {"dicom": "DICOM", "png": "PNG", "jpeg": "JPEG"}
# Never turned into ImageRejected: they are about the process, not the file.
NOT_INPUT_ERRORS = (KeyboardInterrupt, SystemExit, GeneratorExit)


class ImageRejected(Exception):  # noqa: N818 - the platform-wide name
    """An upload that cannot be used, with a short code and a sentence for the user."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class ImageMetadata:
    source_format: str  # 'dicom' | 'png' | 'jpeg'
    rows: int
    columns: int
    bits_stored: int
    photometric_interpretation: str = "MONOCHROME2"
    laterality: str = ""
    view: str = ""
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    transfer_syntax_uid: str = ""
    modality: str = ""
    manufacturer: str = ""
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: date | None = None
    patient_sex: str = ""
    study_date: date | None = None
    study_description: str = ""
    accession_number: str = ""
    pixel_spacing_mm: tuple[float, float] | None = None
    window_applied: str = "none"
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types (dates as ISO strings), e.g. for a JSONField."""
        data = dict(self.__dict__)
        for key in ("patient_birth_date", "study_date"):
            data[key] = data[key].isoformat() if data[key] else None
        data["pixel_spacing_mm"] = list(self.pixel_spacing_mm) if self.pixel_spacing_mm else None
        return data


@dataclass
class DecodedImage:
    pixels: np.ndarray  # 2-D float32 in [0, 1], 1 = brightest as displayed
    metadata: ImageMetadata


def reduce_to_max_side(array: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink by the smallest whole factor that brings the longer side to max_side or below.

    A whole factor lets OpenCV's area averaging take its fast path (about 5x faster on a 4,600 x 2,800 image
    than an arbitrary scale); the at most factor - 1 edge rows/columns it drops are background.
    """
    rows, columns = array.shape[:2]  # greyscale, or rows x columns x channels
    if not max_side or max(rows, columns) <= max_side:
        return array
    factor = -(-max(rows, columns) // max_side)
    if array.dtype not in (np.uint8, np.uint16, np.int16, np.float32):
        array = array.astype(np.float32)
    trimmed = np.ascontiguousarray(array[: rows - rows % factor, : columns - columns % factor])
    size = (trimmed.shape[1] // factor, trimmed.shape[0] // factor)
    return cv2.resize(trimmed, size, interpolation=cv2.INTER_AREA)


def size_text(size: int) -> str:
    return f"{size / 2**20:.0f} MB" if size >= 2**20 else f"{size / 2**10:.0f} KB"


def check_pixel_budget(rows: int, columns: int, limits: DecodeLimits) -> None:
    if rows * columns > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"The image is {columns} x {rows} pixels, more than the {limits.max_pixels:,} pixels accepted.",
        )
