"""DICOM: parse, check from the header (before any pixel is allocated), decode the stored values, then to display
values: Modality LUT (rescale) -> VOI LUT or window (else the image's own min..max) -> MONOCHROME1 inversion, in
float, so that 16-bit precision survives until the final scaling. Used through imaging.decoding."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.pixels.processing import apply_voi
from pydicom.uid import UID, RLELossless

from imaging.decoded import (
    NOT_INPUT_ERRORS,
    DecodedImage,
    ImageMetadata,
    ImageRejected,
    check_pixel_budget,
    reduce_to_max_side,
)
from imaging.dicom_tags import (
    codestream_size,
    describe_object,
    descriptive_fields,
    ensure_transfer_syntax,
    int_value,
    planned_voi,
    text,
)
from imaging.limits import DecodeLimits

MESSAGE_LENGTH = 200  # a refusal people can read at a glance
PIXEL_DATA_TAG_BYTES = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian


class DicomSource:
    """One parsed DICOM file, checked from its header at construction."""

    def __init__(self, data: bytes, limits: DecodeLimits, *, ds: Dataset | None = None) -> None:
        self.ds = _parse_dicom(data) if ds is None else ds
        self.rows, self.columns, self.bits_stored = _check_dicom_header(self.ds, data, limits)
        self.metadata = ImageMetadata(
            source_format="dicom",
            rows=self.rows,
            columns=self.columns,
            bits_stored=self.bits_stored,
            photometric_interpretation=text(self.ds, "PhotometricInterpretation"),
            window_applied=planned_voi(self.ds),
            **descriptive_fields(self.ds),
        )

    def stored(self) -> tuple[np.ndarray, dict[str, str]]:
        """The full-resolution stored values (before the Modality LUT) and how they were decoded; decoded once and
        kept, so the display pixels and the viewer's pixels come from the same decode."""
        if getattr(self, "_stored", None) is None:
            stored, notes = _decode_stored_values(self.ds)
            if stored.shape != (self.rows, self.columns):
                raise ImageRejected("corrupt_pixel_data", "The decoded image does not match the size in its header.")
            self._stored = (stored, notes)
        return self._stored

    def decode(self, max_side: int | None = None) -> DecodedImage:
        stored, decoder_notes = self.stored()
        pixels, window_applied = _to_display(reduce_to_max_side(stored, max_side), self.ds)
        self.metadata.window_applied = window_applied
        self.metadata.extra.update(decoder_notes)
        return DecodedImage(pixels=pixels, metadata=self.metadata)


# What a header decides alone, whatever the pixel data holds: dicom_header_source raises these and leaves every other
# doubt (truncated or missing pixel data, unreadable headers) to the full parse, which says why.
HEADER_DECIDES = frozenset({"too_many_pixels", "multi_frame", "colour", "bad_bit_depth"})


def dicom_header_source(path, limits: DecodeLimits) -> DicomSource | None:
    """The file's DICOM header checked without reading its pixel data into memory (values over 4 KB, the pixel data
    among them, stay on disk), so that a file its header rules out costs its header, not its size. None when the
    header cannot be judged alone; the full parse (DicomSource) then decides."""
    with open(path, "rb") as handle:
        has_preamble = handle.read(132)[128:132] == b"DICM"
    try:
        ds = pydicom.dcmread(str(path), force=not has_preamble, defer_size=4096)
        ensure_transfer_syntax(ds)
        return DicomSource(b"", limits, ds=ds)
    except ImageRejected as exc:
        if exc.code in HEADER_DECIDES:
            raise
        return None
    except Exception:  # noqa: BLE001  (anything else is the full parse's to report)
        return None


def _parse_dicom(data: bytes) -> Dataset:
    has_preamble = data[128:132] == b"DICM"
    try:
        # force only for preamble-less files: with a preamble pydicom validates the header properly.
        ds = pydicom.dcmread(BytesIO(data), force=not has_preamble)
    except Exception as exc:
        raise ImageRejected("not_dicom", "This file looks like DICOM but its header cannot be read.") from exc
    ensure_transfer_syntax(ds)
    return ds


def _check_dicom_header(ds: Dataset, data: bytes, limits: DecodeLimits) -> tuple[int, int, int]:
    """Reject from the header alone; returns (rows, columns, bits stored)."""
    if "PixelData" not in ds:
        raise _no_pixel_data(ds, data)
    if (frames := int_value(ds, "NumberOfFrames", 1)) > 1:
        raise ImageRejected(
            "multi_frame",
            f"This DICOM file holds {frames} frames; multi-frame DICOM (for example tomosynthesis) is not supported.",
        )
    photometric = text(ds, "PhotometricInterpretation").upper()
    if int_value(ds, "SamplesPerPixel", 1) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2", ""):
        raise ImageRejected(
            "colour", f"This DICOM image is in colour ({photometric or 'several samples per pixel'}), not a mammogram."
        )
    if not photometric:  # required by the decoders; a one-sample image without it is read as greyscale
        ds.PhotometricInterpretation = "MONOCHROME2"
    rows, columns = int_value(ds, "Rows", 0), int_value(ds, "Columns", 0)
    if rows < 1 or columns < 1:
        raise ImageRejected("corrupt_pixel_data", "This DICOM file does not state a valid image size.")
    check_pixel_budget(rows, columns, limits)
    bits_stored, bits_allocated = int_value(ds, "BitsStored", 0), int_value(ds, "BitsAllocated", 0)
    if not 1 <= bits_stored <= 16 or bits_allocated < bits_stored:
        raise ImageRejected(
            "bad_bit_depth", f"This DICOM image stores {bits_stored} bits per pixel; 1 to 16 bits are supported."
        )
    transfer_syntax = UID(ds.file_meta.TransferSyntaxUID)
    _check_transfer_syntax(transfer_syntax)
    if transfer_syntax.is_encapsulated and transfer_syntax != RLELossless:  # RLE's size comes from the header
        _check_codestream_size(ds, rows, columns, limits)
    return rows, columns, bits_stored


def _no_pixel_data(ds: Dataset, data: bytes) -> ImageRejected:
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        return ImageRejected("unsupported_format", "This DICOM file holds floating-point data, not a mammogram.")
    # pydicom drops a cut-off encapsulated Pixel Data element while reading; an image header (or the
    # element's tag in the bytes) tells a truncated image apart from a report that never had pixels.
    if "Rows" in ds or PIXEL_DATA_TAG_BYTES in data:
        return ImageRejected(
            "corrupt_pixel_data", "The pixel data of this DICOM image is missing or cut off; the file may be truncated."
        )
    return ImageRejected("no_pixel_data", f"This DICOM file has no pixel data{describe_object(ds)}.")


def _check_transfer_syntax(transfer_syntax: UID) -> None:
    try:
        available = get_decoder(transfer_syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        name = transfer_syntax.name
        name = f"the unknown transfer syntax {transfer_syntax}" if name == str(transfer_syntax) else name
        raise ImageRejected(
            "unsupported_transfer_syntax", f"This DICOM file is encoded with {name}, which cannot be decoded here."
        )


def _check_codestream_size(ds: Dataset, rows: int, columns: int, limits: DecodeLimits) -> None:
    """The JPEG/JPEG-LS/JPEG 2000 decoders allocate what the codestream says, not what Rows/Columns say:
    compare before decoding, so a small header cannot smuggle in a decompression bomb."""
    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    except Exception as exc:
        raise ImageRejected("corrupt_pixel_data", "The compressed pixel data of this DICOM file is damaged.") from exc
    size = codestream_size(frame)
    if size is None or size == (rows, columns) or 0 in size:  # RLE has no size; JPEG may defer rows (DNL)
        return
    # DICOM sizes are 16-bit: a size beyond that is a damaged size field, not a picture to describe in pixels.
    if max(size) > 65535:
        raise ImageRejected(
            "corrupt_pixel_data",
            f"The compressed pixel data is damaged: its size field does not match the DICOM header ({columns} x "
            f"{rows} pixels).",
        )
    check_pixel_budget(size[0], size[1], limits)
    raise ImageRejected(
        "corrupt_pixel_data",
        f"The compressed image is {size[1]} x {size[0]} pixels but the DICOM header says {columns} x {rows}.",
    )


def _decode_stored_values(ds: Dataset) -> tuple[np.ndarray, dict[str, str]]:
    """Stored values of frame 0 and how they were decoded. pylibjpeg goes first on purpose: on a
    CBIS-DDSM-sized RLE image it is about 7x faster than pydicom's own decoder, which pydicom itself would
    try first. The other plugins are the fallback for files pylibjpeg rejects; when one is used, the
    pylibjpeg error is kept in the metadata, since a lenient fallback may be hiding damaged data."""
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
    try:
        if decoder.is_native:
            return decoder.as_array(ds, index=0)[0], {"pixel_decoder": "native"}
        first_error: BaseException | None = None
        for plugin in sorted(decoder.available_plugins, key=lambda name: name != "pylibjpeg"):
            try:
                stored = decoder.as_array(ds, index=0, decoding_plugin=plugin)[0]
                notes = {"pixel_decoder": plugin}
                if first_error is not None:
                    notes["pixel_decoder_fallback_reason"] = f"{type(first_error).__name__}: {first_error}"[:300]
                return stored, notes
            except NOT_INPUT_ERRORS:
                raise
            except BaseException as exc:  # incl. PanicException from Rust; try the next plugin
                first_error = first_error or exc
        raise first_error or RuntimeError("no decoding plugin available")
    except (MemoryError, *NOT_INPUT_ERRORS):
        raise
    except BaseException as exc:
        raise ImageRejected("corrupt_pixel_data", _undecodable_reason(ds, exc)) from exc


def _undecodable_reason(ds: Dataset, exc: BaseException) -> str:
    """Say what could not be decoded and what the decoder said: a file that is intact but written in a way the
    decoders here do not read (some 12-bit JPEG Extended encoders) must not simply be called damaged."""
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    said = ""
    for line in str(exc).splitlines():
        line = line.strip()
        if line.startswith(("pylibjpeg:", "gdcm:", "pillow:", "pydicom:")):
            said = line.split(":", 1)[1].strip()
            said = said.split("returned from Decode():", 1)[-1].strip()  # libjpeg's prefix, noise to people
            break
    if not syntax.is_encapsulated or not said:
        return "The pixel data of this DICOM image is damaged or truncated and cannot be decoded."
    bits = int_value(ds, "BitsStored", 0)
    head = f"Cannot decode the pixel data ({syntax.name}, {bits} bits): "
    tail = " (damaged, or encoded in a way this decoder does not read)."
    room = MESSAGE_LENGTH - len(head) - len(tail)
    said = said.rstrip(".")
    return head + (said if len(said) <= room else said[: room - 1].rsplit(" ", 1)[0] + "…") + tail


def _to_display(stored: np.ndarray, ds: Dataset) -> tuple[np.ndarray, str]:
    """Modality LUT, then VOI LUT / window / min..max, then MONOCHROME1 inversion -> float32 [0, 1]."""
    values = apply_modality_lut(stored, ds)
    planned = planned_voi(ds)
    scaled: np.ndarray | None = None
    try:
        if planned == "VOI LUT":
            scaled = _apply_voi_lut_sequence(values, ds)
        elif planned != "none":
            scaled = _apply_window(values, ds)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, NotImplementedError, ZeroDivisionError):
        scaled = None  # an invalid VOI in the header: show the data range rather than reject the image
    applied = planned if scaled is not None else "none"
    if scaled is None:
        scaled = _min_max(values)
    if text(ds, "PhotometricInterpretation").upper() == "MONOCHROME1":
        scaled = 1.0 - scaled  # MONOCHROME1: low values are white; the model must not see a negative
    pixels = scaled.astype(np.float32, copy=False)
    if values.dtype.kind == "f":  # only float inputs (rescaled or LUT output) can carry NaN
        pixels = np.nan_to_num(pixels, copy=False, nan=0.0)
    return np.clip(pixels, 0.0, 1.0, out=pixels), applied


def _apply_voi_lut_sequence(values: np.ndarray, ds: Dataset) -> np.ndarray:
    # Normalise by the LUT's own bit range (2**n - 1 for its largest entry): this equals the descriptor's
    # depth for a correct LUT and survives the known files whose descriptor says 16 bits for 12-bit data.
    descriptor = ds.VOILUTSequence[0].LUTDescriptor
    entries, first = int(descriptor[0]) or 65536, int(descriptor[1])
    lut = apply_voi(np.arange(first, first + entries), ds, 0)  # the LUT itself, decoded by pydicom
    top = (1 << max(1, int(lut.max()).bit_length())) - 1
    return apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float32) / top


def _apply_window(values: np.ndarray, ds: Dataset) -> np.ndarray:
    windowed = apply_voi_lut(values, ds, index=0, prefer_lut=False)
    # The window's output range depends on bits, sign and rescale (PS3.3 C.11.2.1.2); read it back from
    # pydicom by windowing two extreme inputs instead of re-deriving its rules here.
    with np.errstate(over="ignore"):
        low, high = apply_voi_lut(np.array([-1e30, 1e30]), ds, index=0, prefer_lut=False)
    if not np.isfinite([low, high]).all() or low == high:
        raise ValueError("window output range is empty")
    return ((windowed - low) / (high - low)).astype(np.float32)


def _min_max(values: np.ndarray) -> np.ndarray:
    # The image's actual range, not the nominal 2**BitsStored: mammograms rarely fill it. Exact min/max
    # rather than percentiles, because the brightest few pixels are exactly the calcifications.
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0 or finite.min() == finite.max():
        return np.zeros(values.shape, dtype=np.float32)
    low, high = float(finite.min()), float(finite.max())
    return (values.astype(np.float32) - np.float32(low)) / np.float32(high - low)
