"""Build small, realistic test images in memory (DICOM, PNG, JPEG), returned as bytes.

The pixel content imitates a mammogram: a bright half-ellipse (the breast) against the chest-wall edge on a
dark background, with smooth texture and a small brighter blob. Everything is seeded, so the same call
always returns the same bytes. Compressed DICOM transfer syntaxes are encoded for real: RLE, JPEG-LS and
JPEG 2000 through pydicom's encoders, JPEG Baseline through Pillow, and JPEG Lossless (Process 14, SV1)
through the small encoder at the bottom of this module, because no installed package encodes it.
"""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.1.2")
SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
BASIC_TEXT_SR = UID("1.2.840.10008.5.1.4.1.1.88.11")
RT_STRUCTURE_SET = UID("1.2.840.10008.5.1.4.1.1.481.3")

NATIVE_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)
# Encoded with pydicom's own Dataset.compress(); the extra keyword arguments pick lossy settings.
PYDICOM_ENCODED_SYNTAXES = {
    RLELossless: {},
    JPEGLSLossless: {},
    JPEGLSNearLossless: {"jls_error": 2},
    JPEG2000Lossless: {},
    JPEG2000: {"j2k_cr": [10]},
}
LOSSY_SYNTAXES = (JPEGBaseline8Bit, JPEGLSNearLossless, JPEG2000)


def breast_phantom(
    rows: int, columns: int, *, bits_stored: int = 16, chest_wall: str = "left", seed: int = 0
) -> np.ndarray:
    """A mammogram-like image as unsigned integers using most of the 0 .. 2**bits_stored - 1 range."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    # Distance from the chest wall, so the breast always grows out of the chosen edge.
    depth = x if chest_wall == "left" else (columns - 1 - x)
    ellipse = (depth / (0.72 * columns)) ** 2 + ((y - rows / 2) / (0.44 * rows)) ** 2
    inside = ellipse < 1.0
    # Compressed-breast thickness falls off towards the skin line, so tissue darkens near the edge.
    thickness = np.sqrt(np.clip(1.0 - ellipse, 0.0, 1.0))
    texture = _smooth_noise(rows, columns, rng)
    image = np.full((rows, columns), 0.04)
    image[inside] = 0.25 + 0.45 * thickness[inside] + 0.15 * texture[inside]
    blob_y, blob_x = 0.45 * rows, 0.35 * columns
    if chest_wall != "left":
        blob_x = columns - 1 - blob_x
    radius = max(2.0, min(rows, columns) / 30)
    image += 0.25 * np.exp(-((y - blob_y) ** 2 + (x - blob_x) ** 2) / (2 * radius**2))
    image += rng.normal(0.0, 0.005, size=image.shape)
    top = 2**bits_stored - 1
    return np.clip(np.round(image * top), 0, top).astype(np.uint16 if bits_stored > 8 else np.uint8)


def _smooth_noise(rows: int, columns: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency texture in [0, 1]: coarse random grid upsampled bilinearly (numpy only)."""
    coarse = rng.random((10, 10))
    ys = np.linspace(0, 9, rows)
    xs = np.linspace(0, 9, columns)
    y0 = np.minimum(ys.astype(int), 8)
    x0 = np.minimum(xs.astype(int), 8)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def make_dicom(
    *,
    rows: int = 256,
    columns: int = 192,
    bits_stored: int = 16,
    photometric: str = "MONOCHROME2",
    transfer_syntax: str = ExplicitVRLittleEndian,
    laterality: str = "L",
    laterality_keyword: str = "ImageLaterality",
    view: str = "CC",
    voi: str = "none",
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    frames: int = 1,
    with_pixels: bool = True,
    patient_id: str = "P1",
    study_uid: str | None = None,
    sop_uid: str | None = None,
    pixels: np.ndarray | None = None,
    modality: str = "MG",
    sop_class: str = DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION,
    preamble: bool = True,
) -> bytes:
    """A single-image DICOM file.

    voi: 'none', 'window' (WindowCenter/Width: `window` or 40 %/60 % of the stored range) or 'lut' (a 12-bit
    square-root VOI LUT Sequence covering the stored range). When `pixels` is None the breast phantom is used;
    for MONOCHROME1 it is stored inverted, so MONOCHROME1 and MONOCHROME2 files display the same picture.
    laterality_keyword: 'ImageLaterality' or 'Laterality'. preamble=False writes a bare implicit VR dataset
    (no preamble, no file meta), as some old modalities do.
    """
    ds = _base_dataset(modality=modality, sop_class=sop_class, patient_id=patient_id, sop_uid=sop_uid)
    ds.StudyInstanceUID = study_uid or generate_uid()
    if laterality:
        setattr(ds, laterality_keyword, laterality)
    if view:
        ds.ViewPosition = view
    if with_pixels:
        if pixels is None:
            chest_wall = "right" if laterality == "R" else "left"
            pixels = breast_phantom(rows, columns, bits_stored=bits_stored, chest_wall=chest_wall)
            if photometric == "MONOCHROME1":
                pixels = (2**bits_stored - 1 - pixels.astype(np.int64)).astype(pixels.dtype)
        _set_pixels(ds, pixels, bits_stored=bits_stored, photometric=photometric, frames=frames)
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
        ds.RescaleType = "US"
    _set_voi(ds, voi=voi, window=window, bits_stored=bits_stored, rescale=rescale)
    return _encode(ds, transfer_syntax=UID(transfer_syntax), preamble=preamble)


def make_sr_dicom() -> bytes:
    """A Basic Text Structured Report: a valid DICOM file without pixel data."""
    ds = _base_dataset(modality="SR", sop_class=BASIC_TEXT_SR, patient_id="P1")
    ds.StudyInstanceUID = generate_uid()
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    return _encode(ds, transfer_syntax=ExplicitVRLittleEndian)


def make_rt_dicom() -> bytes:
    """An RT Structure Set: a valid DICOM file without pixel data."""
    ds = _base_dataset(modality="RTSTRUCT", sop_class=RT_STRUCTURE_SET, patient_id="P1")
    ds.StudyInstanceUID = generate_uid()
    ds.StructureSetLabel = "Breast"
    ds.StructureSetROISequence = Sequence()
    return _encode(ds, transfer_syntax=ExplicitVRLittleEndian)


def make_rgb_dicom(*, rows: int = 64, columns: int = 48) -> bytes:
    """A colour (RGB, 3 samples per pixel) Secondary Capture image with visibly different channels."""
    ds = _base_dataset(modality="OT", sop_class=SECONDARY_CAPTURE, patient_id="P1")
    ds.StudyInstanceUID = generate_uid()
    rgb = np.zeros((rows, columns, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    rgb[..., 1] = np.linspace(0, 255, columns, dtype=np.uint8)[None, :]
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "RGB"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = rgb.tobytes()
    return _encode(ds, transfer_syntax=ExplicitVRLittleEndian)


def make_dicom_claiming_size(*, rows: int, columns: int) -> bytes:
    """A tiny uncompressed DICOM whose header claims rows x columns: a decompression bomb in miniature."""
    return patch_dicom(make_dicom(rows=8, columns=8), Rows=rows, Columns=columns)


def patch_dicom(data: bytes, *, transfer_syntax: str | None = None, **attributes: object) -> bytes:
    """The same file with some attributes (by keyword) or the Transfer Syntax UID changed, nothing else."""
    ds = pydicom.dcmread(BytesIO(data))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if transfer_syntax is not None:
        ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    out = BytesIO()
    # force_encoding keeps the explicit VR little endian body even for a syntax pydicom cannot write.
    pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=True, force_encoding=True)  # ds keeps its preamble
    return out.getvalue()


def first_frame(data: bytes) -> bytes:
    """The encoded first frame of an encapsulated (compressed) DICOM file."""
    ds = pydicom.dcmread(BytesIO(data))
    return get_frame(ds.PixelData, 0, number_of_frames=1)


def replace_first_frame(data: bytes, frame: bytes) -> bytes:
    """The same compressed DICOM with its single frame replaced by `frame` (for damaged-data tests)."""
    ds = pydicom.dcmread(BytesIO(data))
    ds.PixelData = encapsulate([frame])
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def make_png(
    *,
    rows: int = 256,
    columns: int = 192,
    bits: int = 8,
    mode: str = "L",
    colour: bool = False,
    pixels: np.ndarray | None = None,
) -> bytes:
    """A greyscale PNG (8 or 16 bits), or mode='RGB': grey content in three equal channels unless colour.
    `pixels` (uint8, or uint16 for bits=16) replaces the phantom, e.g. 12-bit values in a 16-bit PNG."""
    image = breast_phantom(rows, columns, bits_stored=bits) if pixels is None else pixels
    if bits == 16:
        return _save(Image.fromarray(image.astype(np.uint16)), "PNG")
    return _save(_pil_8bit(image, mode=mode, colour=colour), "PNG")


def make_jpeg(
    *, rows: int = 256, columns: int = 192, mode: str = "L", colour: bool = False, quality: int = 95
) -> bytes:
    """A greyscale JPEG, or mode='RGB': grey content in three channels unless colour."""
    image = breast_phantom(rows, columns, bits_stored=8)
    return _save(_pil_8bit(image, mode=mode, colour=colour), "JPEG", quality=quality)


def make_png_claiming_size(*, width: int, height: int) -> bytes:
    """A valid 1x1 greyscale PNG whose IHDR is rewritten (with a correct CRC) to claim width x height."""
    png = bytearray(_save(Image.new("L", (1, 1), 0), "PNG"))
    # Layout: 8-byte signature, then the IHDR chunk: length(4) 'IHDR'(4) data(13) crc(4).
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])) & 0xFFFFFFFF)
    return bytes(png)


def _pil_8bit(image: np.ndarray, *, mode: str, colour: bool) -> Image.Image:
    if mode == "L":
        return Image.fromarray(image, mode="L")
    channels = [image, image, image]
    if colour:
        channels = [image, np.flipud(image), np.full_like(image, 40)]
    return Image.fromarray(np.stack(channels, axis=-1), mode="RGB")


def _save(image: Image.Image, fmt: str, **params: int) -> bytes:
    out = BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def _base_dataset(*, modality: str, sop_class: str, patient_id: str, sop_uid: str | None = None) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.Manufacturer = "Test Factory"
    ds.PatientID = patient_id
    ds.PatientName = "Test^Patient"
    ds.PatientBirthDate = "19650412"
    ds.PatientSex = "F"
    ds.StudyDate = "20240115"
    ds.StudyDescription = "Screening mammography"
    ds.AccessionNumber = "ACC001"
    ds.BodyPartExamined = "BREAST"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImagerPixelSpacing = [0.1, 0.1]
    ds.PixelSpacing = [0.1, 0.1]
    return ds


def _set_pixels(ds: Dataset, pixels: np.ndarray, *, bits_stored: int, photometric: str, frames: int) -> None:
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits_stored <= 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    stored = pixels.astype(np.uint8 if ds.BitsAllocated == 8 else np.uint16)
    if frames > 1:
        ds.NumberOfFrames = frames
        stored = np.stack([stored] * frames)
    ds.PixelData = stored.tobytes()


def _set_voi(
    ds: Dataset, *, voi: str, window: tuple[float, float] | None, bits_stored: int, rescale: tuple[float, float] | None
) -> None:
    top = 2**bits_stored - 1
    if voi == "window":
        slope, intercept = rescale or (1.0, 0.0)
        center, width = window or (0.4 * top * slope + intercept, 0.6 * top * slope)
        ds.WindowCenter, ds.WindowWidth = center, width
        ds.VOILUTFunction = "LINEAR"
    elif voi == "lut":
        item = Dataset()
        entries = top + 1
        # 0 in the first descriptor value means 65536 entries (PS3.3 C.11.2.1.1).
        item.add_new("LUTDescriptor", "US", [entries if entries < 65536 else 0, 0, 12])
        lut = np.round(np.sqrt(np.arange(entries) / top) * 4095).astype("<u2")
        item.add_new("LUTData", "OW", lut.tobytes())  # OW, as most modalities write it
        item.LUTExplanation = "square root"
        ds.VOILUTSequence = Sequence([item])
    elif voi != "none":
        raise ValueError(f"unknown voi {voi!r}")


def _encode(ds: Dataset, *, transfer_syntax: UID, preamble: bool = True) -> bytes:
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # compress() starts from native pixel data
    if "PixelData" in ds and transfer_syntax.is_compressed:
        if transfer_syntax in PYDICOM_ENCODED_SYNTAXES:
            # Keep the caller's SOP Instance UID: tests rely on it (compress() makes a new one by default).
            ds.compress(transfer_syntax, generate_instance_uid=False, **PYDICOM_ENCODED_SYNTAXES[transfer_syntax])
        else:
            _compress_with_own_encoder(ds, transfer_syntax)
    else:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    out = BytesIO()
    if preamble:
        ds.save_as(out, enforce_file_format=True)
    else:
        del ds.file_meta
        ds.save_as(out, implicit_vr=True, little_endian=True, enforce_file_format=False)
    return out.getvalue()


def _compress_with_own_encoder(ds: Dataset, transfer_syntax: UID) -> None:
    image = ds.pixel_array
    if image.ndim != 2:
        raise ValueError("own encoders handle one greyscale frame only")
    if transfer_syntax == JPEGBaseline8Bit:
        if ds.BitsStored != 8:
            raise ValueError("JPEG Baseline holds 8-bit images only")
        frame = _save(Image.fromarray(image.astype(np.uint8), mode="L"), "JPEG", quality=95)
        ds.LossyImageCompression = "01"
    elif transfer_syntax in (JPEGLosslessSV1, JPEGLossless):
        frame = encode_jpeg_lossless_sv1(image, precision=int(ds.BitsStored))
    else:
        raise ValueError(f"no encoder for {transfer_syntax.name}")
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = transfer_syntax


def encode_jpeg_lossless_sv1(image: np.ndarray, *, precision: int) -> bytes:
    """Minimal ISO/IEC 10918-1 lossless (Process 14) encoder: one component, predictor 1 (left), Pt 0.

    Prediction: the first sample uses 2**(P-1), the first row its left neighbour, the first column the
    sample above (Annex H.1.1). Differences are taken modulo 2**16 and Huffman coded by magnitude category
    (SSSS 0..16) with a fixed table of 5-bit codes; SSSS 16 (difference 32768) carries no extra bits.
    """
    img = image.astype(np.int64)
    predicted = np.empty_like(img)
    predicted[0, 0] = 1 << (precision - 1)
    predicted[0, 1:] = img[0, :-1]
    predicted[1:, 0] = img[:-1, 0]
    predicted[1:, 1:] = img[1:, :-1]
    diff = (img - predicted).ravel() % 65536
    diff[diff >= 32768] -= 65536
    category = np.ceil(np.log2(np.abs(diff) + 1)).astype(np.int64)
    extra_length = np.where(category == 16, 0, category)
    # Negative differences are sent as the low bits of diff - 1 (one's complement form, F.1.2.1.1).
    extra = np.where(diff >= 0, diff, diff - 1) & ((1 << extra_length) - 1)
    codes = (category << extra_length) | extra
    lengths = 5 + extra_length
    shifts = lengths[:, None] - 1 - np.arange(21)[None, :]
    bits = (codes[:, None] >> np.maximum(shifts, 0)) & 1
    stream = bits[shifts >= 0].astype(np.uint8)
    stream = np.concatenate([stream, np.ones((-stream.size) % 8, dtype=np.uint8)])  # pad with 1-bits
    scan = np.packbits(stream).tobytes().replace(b"\xff", b"\xff\x00")
    rows, columns = image.shape
    huffman = bytes([0x00]) + bytes([0, 0, 0, 0, 17] + [0] * 11) + bytes(range(17))
    return b"".join(
        [
            b"\xff\xd8",
            b"\xff\xc4" + struct.pack(">H", 2 + len(huffman)) + huffman,
            b"\xff\xc3" + struct.pack(">HBHHB", 11, precision, rows, columns, 1) + bytes([1, 0x11, 0]),
            b"\xff\xda" + struct.pack(">HB", 8, 1) + bytes([1, 0x00, 1, 0, 0]),
            scan,
            b"\xff\xd9",
        ]
    )
