"""The viewer's pixels (imaging/viewer_pixels.py): the stored values of every accepted format at full resolution
and original bit depth, packed losslessly; and what it costs on a real-size mammogram."""

from __future__ import annotations

import gzip
import time
from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, JPEGLSLossless, RLELossless

from imaging.decoding import ImageRejected
from imaging.viewer_pixels import HEADER, stored_values, viewer_pixels_pack, viewer_pixels_unpack
from tests.dicom_factory import breast_phantom, make_dicom, make_jpeg, make_png


def roundtrip(values: np.ndarray) -> np.ndarray:
    return viewer_pixels_unpack(viewer_pixels_pack(values))


def test_it_packs_losslessly_whatever_the_values():
    rng = np.random.default_rng(3)
    for values in (
        rng.integers(0, 65536, size=(37, 53), dtype=np.uint16),  # noise, wraps in the differences
        rng.integers(-32768, 32768, size=(20, 31), dtype=np.int16),
        rng.integers(0, 256, size=(17, 9), dtype=np.uint8),
        np.zeros((1, 1), dtype=np.uint16),
        np.array([[65535, 0, 65535, 1]], dtype=np.uint16),
    ):
        back = roundtrip(values)
        assert back.dtype == values.dtype and back.shape == values.shape
        assert np.array_equal(back, values)


def test_the_header_says_what_the_viewer_needs():
    values = np.array([[5, 900], [-3, 12]], dtype=np.int16)
    raw = gzip.decompress(viewer_pixels_pack(values))
    magic, rows, columns, width, signed, reserved, low, high = HEADER.unpack_from(raw)
    assert (magic, rows, columns, width, signed, reserved, low, high) == (b"MVP1", 2, 2, 2, 1, 0, -3, 900)
    # Byte planes: all high bytes first, then all low bytes, of the row differences.
    body = np.frombuffer(raw, dtype=np.uint8, offset=HEADER.size)
    differences = np.array([5, 895, -3 & 0xFFFF, 15], dtype=np.uint16)
    assert body.tolist() == (differences >> 8).tolist() + (differences & 0xFF).tolist()


def test_it_refuses_what_it_cannot_pack_or_read():
    with pytest.raises(ValueError, match="2-D"):
        viewer_pixels_pack(np.zeros((2, 2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        viewer_pixels_pack(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="not MVP1"):
        viewer_pixels_unpack(gzip.compress(b"PNG?" + bytes(40)))
    damaged = gzip.decompress(viewer_pixels_pack(np.ones((4, 4), dtype=np.uint16)))[:-3]
    with pytest.raises(ValueError, match="does not match"):
        viewer_pixels_unpack(gzip.compress(damaged))


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless, JPEGLosslessSV1])
def test_dicom_gives_its_stored_values_exactly(syntax):
    data = make_dicom(rows=96, columns=64, bits_stored=12, transfer_syntax=syntax, voi="window")
    expected = pydicom.dcmread(BytesIO(data)).pixel_array
    values = stored_values(filename="x.dcm", data=data)
    assert values.values.dtype == np.uint16 and np.array_equal(values.values, expected)
    assert np.array_equal(roundtrip(values.values), expected)
    assert values.photometric_interpretation == "MONOCHROME2"


def test_dicom_keeps_its_rescale_and_photometric_for_the_viewer():
    data = make_dicom(rows=40, columns=30, photometric="MONOCHROME1", rescale=(2.0, -100.0))
    values = stored_values(filename="x.dcm", data=data)
    assert values.photometric_interpretation == "MONOCHROME1"
    assert (values.rescale_slope, values.rescale_intercept) == (2.0, -100.0)
    assert np.array_equal(values.values, pydicom.dcmread(BytesIO(data)).pixel_array)  # not rescaled, not inverted


def test_png_and_jpeg_keep_what_they_have():
    sixteen = breast_phantom(50, 40, bits_stored=16)
    values = stored_values(filename="x.png", data=make_png(bits=16, pixels=sixteen))
    assert values.values.dtype == np.uint16 and np.array_equal(values.values, sixteen)
    eight = stored_values(filename="x.png", data=make_png(rows=50, columns=40))
    assert eight.values.dtype == np.uint8 and np.array_equal(eight.values, breast_phantom(50, 40, bits_stored=8))
    grey_rgb = stored_values(filename="x.png", data=make_png(rows=50, columns=40, mode="RGB"))
    assert np.array_equal(grey_rgb.values, eight.values)
    jpeg = stored_values(filename="x.jpg", data=make_jpeg(rows=50, columns=40))
    assert jpeg.values.dtype == np.uint8 and jpeg.values.shape == (50, 40)


def test_bad_input_is_rejected_with_a_reason():
    with pytest.raises(ImageRejected) as rejected:
        stored_values(filename="x.dcm", data=b"not an image at all")
    assert rejected.value.code == "not_dicom"
    with pytest.raises(ImageRejected) as rejected:
        stored_values(filename="x.png", data=make_png(rows=40, columns=30, mode="RGB", colour=True))
    assert rejected.value.code == "colour"


@pytest.mark.slow
def test_a_real_size_mammogram_costs(capsys):
    """4,600 x 2,800, 16-bit RLE Lossless, like CBIS-DDSM: exact round trip; the sizes and times are printed."""
    pixels = breast_phantom(4600, 2800, bits_stored=16)
    data = make_dicom(pixels=pixels, transfer_syntax=RLELossless)
    started = time.perf_counter()
    values = stored_values(filename="x.dcm", data=data).values
    decoded = time.perf_counter()
    packed = viewer_pixels_pack(values)
    finished = time.perf_counter()
    assert np.array_equal(viewer_pixels_unpack(packed), pixels)
    with capsys.disabled():
        print(
            f"\nviewer pixels of a 4,600 x 2,800 16-bit mammogram: {values.nbytes / 1e6:.1f} MB of pixels, "
            f"RLE DICOM {len(data) / 1e6:.1f} MB, viewer pixels {len(packed) / 1e6:.1f} MB "
            f"(decode {decoded - started:.2f} s, pack {finished - decoded:.2f} s)"
        )
    assert len(packed) < values.nbytes * 0.8
