"""An image's stored values: the full-resolution integers as the file holds them (before the Modality LUT), with
what a viewer needs to show them correctly. They come from the same decode as the display pixels
(imaging.decoding.decode_upload); the reading viewer's pixels are made from them (imaging.viewer_pixels)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.pixels import apply_modality_lut

from imaging.decoded import ImageRejected
from imaging.dicom_decoding import DicomSource
from imaging.dicom_tags import text
from imaging.raster_decoding import RasterSource


@dataclass
class StoredValues:
    """Pixel values as stored (before the Modality LUT), with what a viewer needs to show them correctly."""

    values: np.ndarray  # 2-D uint8, uint16 or int16
    photometric_interpretation: str = "MONOCHROME2"
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)


def stored_values_of(source: DicomSource | RasterSource) -> StoredValues:
    """The stored values a decoding source already holds (no second decode)."""
    if isinstance(source, DicomSource):
        return _dicom_values(source)
    values, _ = source.integers()
    return StoredValues(values=values)


def _dicom_values(source: DicomSource) -> StoredValues:
    ds = source.ds
    values, notes = source.stored()
    notes = dict(notes)
    slope, intercept = 1.0, 0.0
    if "ModalityLUTSequence" in ds:
        # A non-linear Modality LUT (rare in mammography) cannot travel as slope/intercept: apply it here; its output
        # is an integer range of at most 16 bits (PS3.3 C.11.1.1.1).
        values = apply_modality_lut(values, ds)
        notes["modality_lut"] = "applied on the server"
    else:
        slope = _number(ds, "RescaleSlope", 1.0) or 1.0
        intercept = _number(ds, "RescaleIntercept", 0.0)
    return StoredValues(
        values=_as_16_bit(values),
        photometric_interpretation=text(ds, "PhotometricInterpretation").upper() or "MONOCHROME2",
        rescale_slope=slope,
        rescale_intercept=intercept,
        notes=notes,
    )


def _as_16_bit(values: np.ndarray) -> np.ndarray:
    if values.dtype in (np.uint8, np.uint16, np.int16):
        return values
    if values.dtype == np.int8:
        return values.astype(np.int16)
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if low >= 0 and high <= 65535:
        return values.astype(np.uint16)
    if low >= -32768 and high <= 32767:
        return values.astype(np.int16)
    raise ImageRejected("bad_bit_depth", "The pixel values of this image do not fit in 16 bits.")


def _number(ds, keyword: str, default: float) -> float:
    try:
        value = ds.get(keyword)
        return default if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return default
