"""A real-size four-view screening exam (4,600 x 2,800, 16-bit RLE Lossless DICOM, like CBIS-DDSM) and an 8-bit PNG
prior exam, built so that a browser test can check the reading viewer by reading pixels:

- every view is drawn from one canonical breast (chest wall on the left, lateral side up), then stored turned the way
  a test needs: RCC with its chest wall on the left (PatientOrientation A\\L: the viewer must flip it horizontally),
  LCC upside down (A\\L: flip vertically), RMLO already as displayed (P\\F: no flip), LMLO with its chest wall on the
  right and no PatientOrientation (the viewer must find the chest wall on the pixels and flip);
- two flat calibration patches, 20,000 and 20,040 (0.06 % of the 16-bit range apart): the same grey in an 8-bit
  picture, clearly different under a narrow window on the original values;
- a bright dot (40,000) at a known anatomical place per view, the only pixels that bright: where it lands on screen
  says how the image was hung, zoomed and panned, and where a mark must land in original pixels;
- each DICOM carries two VOI windows; the AI overlay (same PNG kind the platform makes, inference.heatmaps) is hot
  around the dot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from pydicom.uid import RLELossless

from tests.dicom_factory import make_dicom, make_png

ROWS, COLUMNS = 4600, 2800
PATCH_A, PATCH_B = 20000, 20040
PATCH_ROWS_A, PATCH_ROWS_B, PATCH_DEPTH = (900, 1200), (1250, 1550), (250, 550)
DOT_VALUE, DOT_RADIUS = 40000, 30
DOTS = {"CC": (2600, 1300), "MLO": (1900, 1000)}  # (row, depth from the chest wall) in the canonical breast
WINDOWS = ((21000.0, 12000.0), (20020.0, 80.0))  # (centre, width): a wide one and a narrow one around the patches
PRIOR_ROWS, PRIOR_COLUMNS = 1150, 700
PRIOR_DOTS = {"CC": (400, 200), "MLO": (750, 300)}  # in prior pixels: a different place from the current exam's

# How each current view is stored: (flip left-right, flip up-down, PatientOrientation or None).
STORED = {
    "RCC": (False, False, ["A", "L"]),
    "LCC": (False, True, ["A", "L"]),
    "RMLO": (True, False, ["P", "F"]),
    "LMLO": (True, False, None),
}


@dataclass
class ExamImage:
    slot: str
    laterality: str
    view: str
    filename: str
    data: bytes
    rows: int
    columns: int
    dot: tuple[float, float]  # (row, column) of the dot's centre in STORED pixels, continuous coordinates
    expected_flips: tuple[bool, bool]  # (horizontal, vertical) the viewer must apply
    patient_orientation: list[str] | None = None
    windows: list[tuple[float, float]] = field(default_factory=list)


def canonical_breast(rows: int, columns: int, *, view: str, seed: int, bits: int = 16) -> np.ndarray:
    """Chest wall on the left edge, lateral side up; float32 in stored units."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows, dtype=np.float32)[:, None]
    x = np.arange(columns, dtype=np.float32)[None, :]
    ellipse = (x / (0.8 * columns)) ** 2 + ((y - rows / 2) / (0.45 * rows)) ** 2
    inside = ellipse < 1.0
    thickness = np.sqrt(np.clip(1.0 - ellipse, 0.0, 1.0))
    coarse = rng.standard_normal((rows // 64 + 2, columns // 64 + 2)).astype(np.float32)
    texture = cv2.resize(cv2.GaussianBlur(coarse, (0, 0), 1.5), (columns, rows), interpolation=cv2.INTER_CUBIC)
    scale = 1.0 if bits == 16 else 255.0 / 65535.0
    image = np.where(inside, 17000 + 5000 * thickness + 1200 * texture, 700.0).astype(np.float32)
    image += rng.normal(0.0, 25.0, size=image.shape).astype(np.float32)
    if bits == 16:
        image[PATCH_ROWS_A[0] : PATCH_ROWS_A[1], PATCH_DEPTH[0] : PATCH_DEPTH[1]] = PATCH_A
        image[PATCH_ROWS_B[0] : PATCH_ROWS_B[1], PATCH_DEPTH[0] : PATCH_DEPTH[1]] = PATCH_B
    dot_row, dot_depth = (DOTS if bits == 16 else PRIOR_DOTS)[view]
    radius = DOT_RADIUS if bits == 16 else 8
    image[(y - dot_row) ** 2 + (x - dot_depth) ** 2 <= radius**2] = DOT_VALUE
    return np.clip(image * scale, 0, 65535 if bits == 16 else 255)


def _stored(canonical: np.ndarray, flip_lr: bool, flip_ud: bool) -> np.ndarray:
    if flip_lr:
        canonical = canonical[:, ::-1]
    if flip_ud:
        canonical = canonical[::-1, :]
    return np.ascontiguousarray(canonical)


def _stored_point(point: tuple[float, float], shape: tuple[int, int], flip_lr: bool, flip_ud: bool):
    """A canonical pixel centre (row, column index) as continuous stored coordinates."""
    row, column = point[0] + 0.5, point[1] + 0.5
    if flip_lr:
        column = shape[1] - column
    if flip_ud:
        row = shape[0] - row
    return row, column


def current_exam(*, patient_id: str = "VIEWER-EXAM-1", study_date: str = "20240115", slots=tuple(STORED)):
    """The real-size four-view exam (or some of its views) as DICOM files."""
    study_uid = "1.2.826.0.1.3680043.8.498.7700" + patient_id.encode().hex()[:8]
    images = []
    for index, slot in enumerate(slots):
        laterality, view = slot[0], slot[1:]
        flip_lr, flip_ud, orientation = STORED[slot]
        pixels = _stored(canonical_breast(ROWS, COLUMNS, view=view, seed=index), flip_lr, flip_ud).astype(np.uint16)
        data = make_dicom(
            pixels=pixels,
            transfer_syntax=RLELossless,
            laterality=laterality,
            view=view,
            patient_id=patient_id,
            study_uid=study_uid,
            voi="none",
        )
        data = _with_header(data, orientation=orientation, windows=WINDOWS, study_date=study_date)
        display_lr = laterality == "R"  # the right breast is displayed with its chest wall on the right
        images.append(
            ExamImage(
                slot=slot,
                laterality=laterality,
                view=view,
                filename=f"{slot}.dcm",
                data=data,
                rows=ROWS,
                columns=COLUMNS,
                dot=_stored_point(DOTS[view], (ROWS, COLUMNS), flip_lr, flip_ud),
                expected_flips=(flip_lr != display_lr, flip_ud),
                patient_orientation=orientation,
                windows=list(WINDOWS),
            )
        )
    return images


def prior_exam():
    """The earlier exam: 8-bit PNGs (what a scanned or exported prior often is), all stored with the chest wall on
    the left, without any orientation data: the viewer measures the chest wall side on the pixels."""
    images = []
    for index, slot in enumerate(STORED):
        laterality, view = slot[0], slot[1:]
        pixels = canonical_breast(PRIOR_ROWS, PRIOR_COLUMNS, view=view, seed=10 + index, bits=8).astype(np.uint8)
        images.append(
            ExamImage(
                slot=slot,
                laterality=laterality,
                view=view,
                filename=f"prior-{slot}.png",
                data=make_png(pixels=pixels, rows=PRIOR_ROWS, columns=PRIOR_COLUMNS),
                rows=PRIOR_ROWS,
                columns=PRIOR_COLUMNS,
                dot=_stored_point(PRIOR_DOTS[view], (PRIOR_ROWS, PRIOR_COLUMNS), False, False),
                expected_flips=(laterality == "R", False),
            )
        )
    return images


def heatmap_at(image: ExamImage, *, preview_side: int = 1024) -> np.ndarray:
    """A Grad-CAM-like heatmap (float [0, 1] at preview size) hot around the image's dot."""
    scale = preview_side / max(image.rows, image.columns)
    rows, columns = round(image.rows * scale), round(image.columns * scale)
    y = np.arange(rows, dtype=np.float32)[:, None]
    x = np.arange(columns, dtype=np.float32)[None, :]
    row, column = image.dot[0] * scale, image.dot[1] * scale
    return np.exp(-((y - row) ** 2 + (x - column) ** 2) / (2 * (0.05 * columns) ** 2)).astype(np.float32)


def _with_header(data: bytes, *, orientation, windows, study_date: str) -> bytes:
    from io import BytesIO

    import pydicom

    ds = pydicom.dcmread(BytesIO(data))
    if orientation:
        ds.PatientOrientation = orientation
    ds.WindowCenter = [w[0] for w in windows]
    ds.WindowWidth = [w[1] for w in windows]
    ds.WindowCenterWidthExplanation = ["STANDARD", "NARROW"]
    ds.StudyDate = study_date
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


SMALL_ROWS, SMALL_COLUMNS = 2400, 1600
LABEL_VALUE = 60000  # a burned-in film marker: brighter than any tissue


def small_breast_exam(*, patient_id: str = "VIEWER-SMALL-1"):
    """Four 16-bit DICOM views of a breast that covers about half of the detector's height and 40 % of its width
    (as on many digitised films), with a bright marker far from it and no VOI window or PatientOrientation: the
    viewer must find the chest wall, the tissue's window and the breast's box on the pixels alone."""
    rng = np.random.default_rng(7)
    y = np.arange(SMALL_ROWS, dtype=np.float32)[:, None]
    x = np.arange(SMALL_COLUMNS, dtype=np.float32)[None, :]
    ellipse = (x / (0.4 * SMALL_COLUMNS)) ** 2 + ((y - 0.45 * SMALL_ROWS) / (0.26 * SMALL_ROWS)) ** 2
    thickness = np.sqrt(np.clip(1.0 - ellipse, 0.0, 1.0))
    coarse = rng.standard_normal((SMALL_ROWS // 64 + 2, SMALL_COLUMNS // 64 + 2)).astype(np.float32)
    texture = cv2.resize(
        cv2.GaussianBlur(coarse, (0, 0), 1.5), (SMALL_COLUMNS, SMALL_ROWS), interpolation=cv2.INTER_CUBIC
    )
    canonical = np.where(ellipse < 1.0, 17000 + 5000 * thickness + 1200 * texture, 700.0).astype(np.float32)
    canonical += rng.normal(0.0, 25.0, size=canonical.shape).astype(np.float32)
    canonical[int(0.9 * SMALL_ROWS) : int(0.94 * SMALL_ROWS), int(0.8 * SMALL_COLUMNS) : int(0.9 * SMALL_COLUMNS)] = (
        LABEL_VALUE
    )
    canonical = np.clip(canonical, 0, 65535)
    images = []
    for slot in STORED:
        laterality, view = slot[0], slot[1:]
        data = make_dicom(
            pixels=canonical.astype(np.uint16), laterality=laterality, view=view, patient_id=patient_id, voi="none"
        )
        images.append(
            ExamImage(
                slot=slot,
                laterality=laterality,
                view=view,
                filename=f"small-{slot}.dcm",
                data=data,
                rows=SMALL_ROWS,
                columns=SMALL_COLUMNS,
                dot=(0.0, 0.0),
                expected_flips=(laterality == "R", False),
            )
        )
    return images
