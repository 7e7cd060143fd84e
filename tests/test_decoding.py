"""imaging.decoding: every supported encoding decodes to the same display image, every bad upload is refused
with its own code and a readable sentence. No database, no Django: the decoder is imported bare."""

from __future__ import annotations

import json
import re
import struct
import tracemalloc
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import (
    JPEG2000,
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
)

from imaging.decoding import ImageRejected, decode_image, read_metadata, sniff_format
from imaging.dicom_tags import parse_laterality_view
from imaging.limits import DecodeLimits
from tests.dicom_factory import (
    LOSSY_SYNTAXES,
    breast_phantom,
    first_frame,
    make_dicom,
    make_dicom_claiming_size,
    make_jpeg,
    make_png,
    make_png_claiming_size,
    make_rgb_dicom,
    make_rt_dicom,
    make_sr_dicom,
    patch_dicom,
    replace_first_frame,
)

# pydicom warns about the damaged files these tests feed it on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom.*")

ROWS, COLUMNS = 256, 192
SENTENCE = re.compile(r"[A-Z][^\n]{10,200}[.)]")


def rejected(call: Callable[[], object], code: str) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        call()
    error = info.value
    assert error.code == code, (error.code, error.reason)
    assert SENTENCE.fullmatch(error.reason), error.reason
    assert str(error) == error.reason
    assert "secret-name" not in error.reason  # the reason never echoes the uploaded file name
    return error


def decode(data: bytes, filename: str = "secret-name.dcm", **limits: int):
    return decode_image(filename=filename, data=data, limits=DecodeLimits(**limits))


def min_max(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    return (values - values.min()) / (values.max() - values.min())


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 'LINEAR', written out independently of pydicom."""
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def peak_allocation(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        call()
    except ImageRejected:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# --- Transfer syntaxes and bit depths ---------------------------------------------------------------------

SYNTAX_CASES = [
    (syntax, bits)
    for syntax in (
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        RLELossless,
        JPEGLSLossless,
        JPEG2000Lossless,
        JPEGLosslessSV1,
    )
    for bits in (8, 12, 16)
] + [(JPEGLossless, 16), (JPEGLSNearLossless, 12), (JPEG2000, 16), (JPEGBaseline8Bit, 8)]


@pytest.mark.parametrize(("syntax", "bits"), SYNTAX_CASES, ids=lambda v: getattr(v, "keyword", None) or str(v))
def test_it_decodes_each_transfer_syntax_and_bit_depth(syntax: str, bits: int) -> None:
    data = make_dicom(transfer_syntax=syntax, bits_stored=bits)
    assert pydicom.dcmread(BytesIO(data)).file_meta.TransferSyntaxUID == syntax  # really stored that way

    image = decode(data)

    expected = min_max(breast_phantom(ROWS, COLUMNS, bits_stored=bits))
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (ROWS, COLUMNS)
    assert image.pixels.min() >= 0.0 and image.pixels.max() <= 1.0
    error = np.abs(image.pixels - expected)
    if syntax in LOSSY_SYNTAXES:
        assert error.mean() < 0.01 and error.max() < 0.08
    else:
        assert error.max() < 1e-6
    assert image.metadata.transfer_syntax_uid == syntax
    assert image.metadata.bits_stored == bits
    assert image.metadata.window_applied == "none"


def test_it_keeps_16_bit_precision() -> None:
    image = decode(make_dicom(bits_stored=16))

    # An intermediate 8-bit step would leave at most 256 distinct levels.
    assert np.unique(image.pixels).size > 1000


def test_it_decodes_rle_with_the_pylibjpeg_plugin_first() -> None:
    image = decode(make_dicom(transfer_syntax=RLELossless))

    assert image.metadata.extra["pixel_decoder"] == "pylibjpeg"
    assert "pixel_decoder_fallback_reason" not in image.metadata.extra


def test_it_falls_back_to_pydicom_when_pylibjpeg_fails() -> None:
    data = make_dicom(transfer_syntax=RLELossless)
    frame = bytearray(first_frame(data))
    # Replicate runs in the first segment make it decode past its length: pylibjpeg-rle panics,
    # pydicom's decoder trims the segment and succeeds.
    frame[200:5000] = b"\x81" * 4800

    image = decode(replace_first_frame(data, bytes(frame)))

    assert image.metadata.extra["pixel_decoder"] == "pydicom"
    assert image.metadata.extra["pixel_decoder_fallback_reason"]


def test_it_decodes_a_dicom_without_preamble() -> None:
    data = make_dicom(preamble=False)
    assert data[128:132] != b"DICM"

    image = decode(data, filename="IMG0001")

    assert np.abs(image.pixels - min_max(breast_phantom(ROWS, COLUMNS))).max() < 1e-6
    assert image.metadata.transfer_syntax_uid == ImplicitVRLittleEndian


# --- Display transformations ------------------------------------------------------------------------------


@pytest.mark.parametrize(("bits", "syntax"), [(12, ExplicitVRLittleEndian), (16, RLELossless)])
def test_it_inverts_monochrome1(bits: int, syntax: str) -> None:
    mono2 = decode(make_dicom(bits_stored=bits, transfer_syntax=syntax))
    mono1 = decode(make_dicom(bits_stored=bits, transfer_syntax=syntax, photometric="MONOCHROME1"))

    assert mono1.metadata.photometric_interpretation == "MONOCHROME1"
    assert np.abs(mono1.pixels - mono2.pixels).max() < 1e-6
    # And the right way round: dark background, bright breast.
    assert mono1.pixels[5, COLUMNS - 5] < 0.1 < 0.5 < mono1.pixels[ROWS // 2, 10]


def test_it_applies_the_voi_window() -> None:
    image = decode(make_dicom(bits_stored=12, voi="window", window=(1500.0, 2000.0)))

    expected = linear_window(breast_phantom(ROWS, COLUMNS, bits_stored=12).astype(np.float64), 1500.0, 2000.0)
    assert np.abs(image.pixels - expected).max() < 1e-5
    assert image.metadata.window_applied == "window 1500/2000"


def test_it_applies_the_modality_rescale_before_the_window() -> None:
    data = make_dicom(bits_stored=12, rescale=(2.0, -1000.0), voi="window", window=(3000.0, 4000.0))

    image = decode(data)

    stored = breast_phantom(ROWS, COLUMNS, bits_stored=12).astype(np.float64)
    expected = linear_window(2.0 * stored - 1000.0, 3000.0, 4000.0)
    assert np.abs(image.pixels - expected).max() < 1e-5
    assert not np.allclose(image.pixels, linear_window(stored, 3000.0, 4000.0), atol=0.05)


def test_it_applies_the_voi_lut_sequence() -> None:
    image = decode(make_dicom(bits_stored=12, voi="lut"))

    stored = breast_phantom(ROWS, COLUMNS, bits_stored=12).astype(np.float64)
    expected = np.round(np.sqrt(stored / 4095) * 4095) / 4095
    assert np.abs(image.pixels - expected).max() < 1e-6
    assert image.metadata.window_applied == "VOI LUT"


# --- Metadata ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "laterality", "view"),
    [
        ({"laterality": "R", "view": "MLO"}, "R", "MLO"),
        ({"laterality": "L", "laterality_keyword": "Laterality", "view": "CC"}, "L", "CC"),
        ({"laterality": "", "view": "", "patient_id": "Mass-Test_P_00173_RIGHT_CC"}, "R", "CC"),
        ({"laterality": "", "view": "", "patient_id": "Calc-Training_P_00005_LEFT_MLO_1"}, "L", "MLO"),
        ({"laterality": "L", "view": "MLO", "patient_id": "Mass-Test_P_00173_RIGHT_CC"}, "L", "MLO"),
        ({"laterality": "", "view": "", "patient_id": "P1"}, "", ""),
    ],
    ids=["ImageLaterality+ViewPosition", "Laterality", "CBIS-right-CC", "CBIS-left-MLO", "tags-win", "none"],
)
def test_it_reads_laterality_and_view(kwargs: dict[str, str], laterality: str, view: str) -> None:
    metadata = read_metadata(filename="x.dcm", data=make_dicom(**kwargs))

    assert (metadata.laterality, metadata.view) == (laterality, view)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("case7_L_MLO_ANON", ("L", "MLO")), ("RCC", ("R", "CC")), ("Mass-Test_P_00173_LEFT_CC", ("L", "CC"))],
)
def test_it_parses_laterality_and_view_from_identifier_text(text: str, expected: tuple[str, str]) -> None:
    assert parse_laterality_view(text) == expected


def test_it_reads_patient_study_and_acquisition_metadata() -> None:
    data = make_dicom(patient_id="P42", study_uid="1.2.3.4", sop_uid="1.2.3.4.5")

    metadata = read_metadata(filename="x.dcm", data=data)

    assert metadata.source_format == "dicom"
    assert (metadata.rows, metadata.columns, metadata.bits_stored) == (ROWS, COLUMNS, 16)
    assert (metadata.patient_id, metadata.patient_name, metadata.patient_sex) == ("P42", "Test^Patient", "F")
    assert metadata.patient_birth_date.isoformat() == "1965-04-12"
    assert metadata.study_date.isoformat() == "2024-01-15"
    assert (metadata.study_instance_uid, metadata.sop_instance_uid) == ("1.2.3.4", "1.2.3.4.5")
    assert metadata.modality == "MG" and metadata.manufacturer == "Test Factory"
    assert metadata.sop_class_uid == "1.2.840.10008.5.1.4.1.1.1.2"
    assert metadata.pixel_spacing_mm == (0.1, 0.1)
    assert metadata.extra["BodyPartExamined"] == "BREAST"
    assert metadata.extra["ImagerPixelSpacing"] == [0.1, 0.1]
    assert json.loads(json.dumps(metadata.as_json()))["study_date"] == "2024-01-15"


def test_it_sniffs_formats_from_content() -> None:
    assert sniff_format(make_dicom()) == "dicom"
    assert sniff_format(make_dicom(preamble=False)) == "dicom"
    assert sniff_format(make_png()) == "png"
    assert sniff_format(make_jpeg()) == "jpeg"
    assert sniff_format(b"\x08\x00 not really a dataset") is None
    assert sniff_format(b"%PDF-1.7") is None


# --- PNG and JPEG -----------------------------------------------------------------------------------------


def test_it_decodes_an_8_bit_png() -> None:
    image = decode(make_png(), filename="scan.png")

    assert np.abs(image.pixels - breast_phantom(ROWS, COLUMNS, bits_stored=8) / 255).max() < 1e-6
    assert (image.metadata.source_format, image.metadata.bits_stored) == ("png", 8)
    assert image.metadata.photometric_interpretation == "MONOCHROME2"
    assert (image.metadata.laterality, image.metadata.view) == ("", "")


def test_it_decodes_a_16_bit_png_by_its_bit_range() -> None:
    full = decode(make_png(bits=16), filename="scan.png")
    twelve_bit = breast_phantom(ROWS, COLUMNS, bits_stored=12)
    partial = decode(make_png(bits=16, pixels=twelve_bit), filename="scan.png")

    assert np.abs(full.pixels - breast_phantom(ROWS, COLUMNS, bits_stored=16) / 65535).max() < 1e-6
    assert np.abs(partial.pixels - twelve_bit / 4095).max() < 1e-6
    assert full.metadata.bits_stored == 16


def test_it_decodes_a_greyscale_jpeg() -> None:
    image = decode(make_jpeg(), filename="scan.jpg")

    assert np.abs(image.pixels - breast_phantom(ROWS, COLUMNS, bits_stored=8) / 255).mean() < 0.01
    assert image.metadata.source_format == "jpeg"


@pytest.mark.parametrize(("maker", "filename"), [(make_png, "scan.png"), (make_jpeg, "scan.jpg")])
def test_it_accepts_rgb_with_equal_channels_as_greyscale(maker: Callable[..., bytes], filename: str) -> None:
    image = decode(maker(mode="RGB"), filename=filename)

    assert image.pixels.ndim == 2
    assert np.abs(image.pixels - breast_phantom(ROWS, COLUMNS, bits_stored=8) / 255).mean() < 0.01
    assert image.metadata.photometric_interpretation == "MONOCHROME2"
    assert image.metadata.extra["converted_from"] == "RGB"


def test_it_accepts_files_with_no_or_unknown_extension() -> None:
    assert decode(make_dicom(), filename="IMG0001").metadata.source_format == "dicom"
    assert decode(make_png(), filename="upload.bin").metadata.source_format == "png"


# --- Refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not_dicom", "PDF"),
        (b"Patient notes: left breast, no findings.\n" * 5, "not_dicom", "text"),
        (bytes(range(256)) * 4, "not_dicom", "DICOM, PNG or JPEG"),
    ],
    ids=["pdf", "text", "binary"],
)
def test_it_rejects_files_that_are_not_images(data: bytes, code: str, words: str) -> None:
    assert words in rejected(lambda: decode(data), code).reason


def test_it_rejects_other_image_formats() -> None:
    gif = BytesIO()
    Image.new("L", (8, 8)).save(gif, format="GIF")

    assert "GIF" in rejected(lambda: decode(gif.getvalue(), filename="x.gif"), "unsupported_format").reason


def test_it_rejects_an_empty_file() -> None:
    rejected(lambda: decode(b""), "empty_file")


def test_it_rejects_a_file_over_the_size_limit_before_reading_it() -> None:
    rejected(lambda: decode(make_dicom(), max_file_bytes=50_000), "file_too_large")


@pytest.mark.parametrize(
    ("data", "words"), [(make_sr_dicom(), "Structured Report"), (make_rt_dicom(), "RT Structure Set")], ids=["sr", "rt"]
)
def test_it_rejects_dicom_without_pixel_data(data: bytes, words: str) -> None:
    error = rejected(lambda: read_metadata(filename="x.dcm", data=data), "no_pixel_data")

    assert words in error.reason


def test_it_rejects_multi_frame_dicom() -> None:
    assert "tomosynthesis" in rejected(lambda: decode(make_dicom(frames=3)), "multi_frame").reason


def test_it_rejects_colour_dicom() -> None:
    rejected(lambda: decode(make_rgb_dicom()), "colour")


@pytest.mark.parametrize(("maker", "filename"), [(make_png, "x.png"), (make_jpeg, "x.jpg")])
def test_it_rejects_colour_png_and_jpeg(maker: Callable[..., bytes], filename: str) -> None:
    rejected(lambda: decode(maker(mode="RGB", colour=True), filename=filename), "colour")


def test_it_rejects_a_dicom_header_claiming_too_many_pixels_without_allocating() -> None:
    data = make_dicom_claiming_size(rows=65535, columns=65535)

    rejected(lambda: read_metadata(filename="x.dcm", data=data), "too_many_pixels")
    assert peak_allocation(lambda: decode(data)) < 20 * 1024 * 1024


def test_it_rejects_an_image_over_a_configured_pixel_budget() -> None:
    rejected(lambda: decode(make_dicom(), max_pixels=10_000), "too_many_pixels")


@pytest.mark.parametrize("size", [100_000, 9_000], ids=["pillow-bomb-error", "over-budget"])
def test_it_rejects_a_png_decompression_bomb_without_allocating(size: int) -> None:
    data = make_png_claiming_size(width=size, height=size)

    rejected(lambda: read_metadata(filename="x.png", data=data), "too_many_pixels")
    assert peak_allocation(lambda: decode(data, filename="x.png")) < 20 * 1024 * 1024


def test_it_rejects_a_compressed_frame_larger_than_its_header_before_decoding() -> None:
    # JPEG decoders allocate what the codestream says: a 256 x 192 frame under a 128-row header.
    data = patch_dicom(make_dicom(transfer_syntax=JPEG2000Lossless), Rows=128)

    rejected(lambda: read_metadata(filename="x.dcm", data=data), "corrupt_pixel_data")
    rejected(lambda: decode(data, max_pixels=40_000), "too_many_pixels")


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless, JPEGLosslessSV1])
def test_it_rejects_truncated_pixel_data(syntax: str) -> None:
    data = make_dicom(transfer_syntax=syntax)

    rejected(lambda: decode(data[: len(data) - 1000]), "corrupt_pixel_data")


def test_it_rejects_corrupt_rle_at_decode_time_only() -> None:
    data = make_dicom(transfer_syntax=RLELossless)
    frame = bytearray(first_frame(data))
    frame[8:12] = struct.pack("<I", 10**6)  # second segment offset points past the end of the frame
    damaged = replace_first_frame(data, bytes(frame))

    assert read_metadata(filename="x.dcm", data=damaged).rows == ROWS  # the header is fine
    error = rejected(lambda: decode(damaged), "corrupt_pixel_data")
    assert error.__cause__ is not None  # kept for the logs


@pytest.mark.parametrize(
    ("filename", "data"),
    [("scan.png", make_dicom()), ("scan.dcm", make_png()), ("scan.png", make_jpeg()), ("scan.JPG", make_png())],
    ids=["dicom-as-png", "png-as-dcm", "jpeg-as-png", "png-as-jpg"],
)
def test_it_rejects_an_extension_that_contradicts_the_content(filename: str, data: bytes) -> None:
    rejected(lambda: decode(data, filename=filename), "extension_mismatch")


def test_it_rejects_an_unsupported_bit_depth() -> None:
    data = patch_dicom(make_dicom(), BitsAllocated=32, BitsStored=20, HighBit=19)

    assert "20 bits" in rejected(lambda: decode(data), "bad_bit_depth").reason


def test_it_rejects_an_unsupported_transfer_syntax() -> None:
    data = patch_dicom(make_dicom(transfer_syntax=JPEG2000Lossless), transfer_syntax="1.2.840.10008.1.2.4.100")

    assert "MPEG2" in rejected(lambda: decode(data), "unsupported_transfer_syntax").reason


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless])
def test_it_raises_only_image_rejected_for_any_cut_of_a_file(syntax: str) -> None:
    data = make_dicom(rows=64, columns=48, transfer_syntax=syntax)

    for end in [*range(0, 1200, 23), *range(1200, len(data), 97)]:
        try:
            decode(data[:end])
        except ImageRejected as error:
            assert SENTENCE.fullmatch(error.reason), error.reason


# ---- messages for files of pydicom's own test corpus (issue 9.11) ---------------------------------------------


def _corpus(name: str) -> bytes:
    import pydicom.data

    return (Path(pydicom.data.__file__).parent / "test_files" / name).read_bytes()


def test_a_bare_big_endian_dataset_is_recognised_as_dicom_and_told_apart():
    with pytest.raises(ImageRejected) as caught:
        decode_image(filename="x.dcm", data=_corpus("ExplVR_BigEndNoMeta.dcm"))
    assert caught.value.code == "no_pixel_data" and "RT Plan" in caught.value.reason


def test_a_12_bit_jpeg_the_decoder_cannot_read_is_not_simply_called_damaged():
    with pytest.raises(ImageRejected) as caught:
        decode_image(filename="x.dcm", data=_corpus("JPEG-lossy.dcm"))
    reason = caught.value.reason
    assert "JPEG Extended" in reason and "12 bits" in reason and "does not read" in reason and len(reason) <= 200


def test_a_damaged_codestream_size_is_not_reported_as_an_absurd_pixel_count():
    with pytest.raises(ImageRejected) as caught:
        decode_image(filename="x.dcm", data=_corpus("JPEG2000-embedded-sequence-delimiter.dcm"))
    assert caught.value.code == "corrupt_pixel_data"
    assert "3722445056" not in caught.value.reason and "256 x 1024" in caught.value.reason
