"""Reader for the mini-MIAS database (`Info.txt` + this project's `splits.csv`).

Info.txt facts this reader relies on (checked against the real file):
- a free-text header, then one row per abnormality: `REFNUM BG CLASS [SEVERITY [X Y RADIUS]]`;
  table rows are the lines that start with `mdbNNN`;
- NORM rows carry no severity and no coordinates;
- a few abnormal rows have no coordinates: `mdb059 F CIRC B`, and three widely distributed
  calcification rows that end in `*NOTE 3*` instead (mdb216, mdb233, mdb245);
- X, Y have their origin at the bottom-left corner, so the array row is `height - 1 - Y`;
- several rows per image are several abnormalities (mdb144 has a benign and a malignant one);
- NOTE 1 of the header: even file numbers are left breasts, odd numbers right breasts, a pair per
  woman. The image content agrees (320 of 322 images have the chest wall on the side this implies),
  so laterality is set from it. All MIAS images are MLO views.
"""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from inference.training.datasets.records import (
    SPLITS,
    DatasetError,
    ImageRecord,
    Lesion,
    worst_label,
)

MIAS_CLASSES = ("CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM")
MIAS_TISSUES = ("F", "G", "D")
_SEVERITIES = {"B": "BENIGN", "M": "MALIGNANT"}
_ROW_START = re.compile(r"^mdb\d{3}\b")
_SPLITS_COLUMNS = ("refnum", "patient", "image_label", "split")


@dataclass(frozen=True)
class _InfoRow:
    refnum: str
    kind: str  # MIAS class; 'NORM' for a normal image
    pathology: str | None  # None for NORM
    x: int | None
    y: int | None
    radius: int | None
    where: str  # 'path:line' for error messages


def read_mini_mias(*, root: Path) -> list[ImageRecord]:
    """Read mini-MIAS from `root` (holding Info.txt, splits.csv and mdbNNN.png).

    Returns one record per image, sorted by reference number. Raises DatasetError naming the
    file and line for a malformed row, an image missing from either file, a splits.csv label that
    disagrees with Info.txt, or a missing image file.
    """
    root = Path(root)
    info_rows = _read_info(root / "Info.txt")
    splits = _read_splits(root / "splits.csv")

    by_image: dict[str, list[_InfoRow]] = {}
    for info_row in info_rows:
        by_image.setdefault(info_row.refnum, []).append(info_row)

    only_info = sorted(set(by_image) - set(splits))
    only_splits = sorted(set(splits) - set(by_image))
    if only_info or only_splits:
        raise DatasetError(
            f"{root / 'Info.txt'} and {root / 'splits.csv'} list different images: "
            f"only in Info.txt {only_info[:5]}, only in splits.csv {only_splits[:5]}"
        )

    missing = [root / f"{refnum}.png" for refnum in sorted(by_image)]
    missing = [path for path in missing if not path.is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} mini-MIAS image file(s) missing, e.g. {[str(p) for p in missing[:3]]}")

    records = []
    for refnum in sorted(by_image):
        rows = by_image[refnum]
        path = root / f"{refnum}.png"
        lesions = _lesions(rows, path)
        label = worst_label(lesion.pathology for lesion in lesions)
        patient, split_label, split = splits[refnum]
        if split_label != label:
            raise DatasetError(
                f"{root / 'splits.csv'}: {refnum} has image_label {split_label!r} but Info.txt "
                f"({rows[0].where}) gives {label!r}"
            )
        records.append(
            ImageRecord(
                image_id=refnum,
                path=path,
                patient_id=patient,
                image_label=label,
                split=split,
                laterality="R" if int(refnum[3:]) % 2 else "L",
                view="MLO",
                lesions=lesions,
                dataset="mini-mias",
            )
        )
    return records


def read_mini_mias_tissue(*, root: Path) -> dict[str, str]:
    """refnum -> background tissue from Info.txt's second column: 'F' fatty, 'G' fatty-glandular, 'D'
    dense-glandular (the density labels of inference.training.density). Every row is checked as read_mini_mias
    checks it, and an image whose rows disagree on its tissue is refused."""
    path = Path(root) / "Info.txt"
    _read_info(path)  # the same checks, the same errors, as the image reader
    tissue: dict[str, str] = {}
    for line_number, line in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines(), start=1):
        if _ROW_START.match(line):
            refnum, value = line.split()[:2]
            if tissue.setdefault(refnum, value) != value:
                raise DatasetError(
                    f"{path}:{line_number}: {refnum} is {tissue[refnum]} in an earlier row, {value} here"
                )
    return tissue


def _read_info(path: Path) -> list[_InfoRow]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise DatasetError(f"cannot read mini-MIAS label file {path}: {exc}") from exc
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if _ROW_START.match(line):
            rows.append(_parse_info_line(line, where=f"{path}:{line_number}"))
    if not rows:
        raise DatasetError(f"{path}: no table rows (lines starting with 'mdbNNN') found")
    return rows


def _parse_info_line(line: str, *, where: str) -> _InfoRow:
    # Trailing free text such as '*NOTE 3*' replaces the coordinates; drop it before counting.
    fields = line.split("*", 1)[0].split()
    if len(fields) < 3:
        raise DatasetError(f"{where}: expected 'REFNUM BG CLASS ...', got {line.strip()!r}")
    refnum, tissue, kind, rest = fields[0], fields[1], fields[2], fields[3:]
    if tissue not in MIAS_TISSUES:
        raise DatasetError(f"{where}: background tissue {tissue!r} not in {MIAS_TISSUES}")
    if kind not in MIAS_CLASSES:
        raise DatasetError(f"{where}: class {kind!r} not in {MIAS_CLASSES}")
    if kind == "NORM":
        if rest:
            raise DatasetError(f"{where}: a NORM row should end after the class: {line.strip()!r}")
        return _InfoRow(refnum, kind, None, None, None, None, where)
    if not rest or rest[0] not in _SEVERITIES:
        raise DatasetError(f"{where}: {kind} row needs severity B or M: {line.strip()!r}")
    pathology = _SEVERITIES[rest[0]]
    numbers = rest[1:]
    if not numbers:
        return _InfoRow(refnum, kind, pathology, None, None, None, where)
    if len(numbers) != 3 or not all(n.isdigit() for n in numbers):
        raise DatasetError(f"{where}: expected 'X Y RADIUS' as integers, got {numbers}")
    x, y, radius = (int(n) for n in numbers)
    return _InfoRow(refnum, kind, pathology, x, y, radius, where)


def _read_splits(path: Path) -> dict[str, tuple[str, str, str]]:
    """refnum -> (patient, image_label, split)."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read mini-MIAS split file {path}: {exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        columns = [name.strip() for name in reader.fieldnames or ()]
        if tuple(columns) != _SPLITS_COLUMNS:
            raise DatasetError(f"{path}: header {columns} should be {list(_SPLITS_COLUMNS)}")
        reader.fieldnames = columns
        splits: dict[str, tuple[str, str, str]] = {}
        for row in reader:
            where = f"{path}:{reader.line_num}"
            refnum, patient, label, split = ((row[name] or "").strip() for name in _SPLITS_COLUMNS)
            if not _ROW_START.match(refnum):
                raise DatasetError(f"{where}: refnum {refnum!r} is not 'mdbNNN'")
            if refnum in splits:
                raise DatasetError(f"{where}: {refnum} listed twice")
            if not patient:
                raise DatasetError(f"{where}: {refnum} has no patient")
            if split not in SPLITS:
                raise DatasetError(f"{where}: split {split!r} not in {SPLITS}")
            splits[refnum] = (patient, label, split)
    return splits


def _lesions(rows: list[_InfoRow], path: Path) -> tuple[Lesion, ...]:
    kinds = {row.kind for row in rows}
    if "NORM" in kinds:
        if len(rows) > 1:
            raise DatasetError(f"{rows[0].where}: {rows[0].refnum} is NORM but has {len(rows)} rows")
        return ()
    size = None
    lesions = []
    for row in rows:
        assert row.pathology is not None  # only NORM rows lack it
        if row.x is None or row.y is None or row.radius is None:
            lesions.append(Lesion(None, None, None, row.pathology, row.kind))
            continue
        if size is None:
            size = _image_size(path)
        width, height = size
        if not (0 <= row.x < width and 0 <= row.y < height):
            raise DatasetError(f"{row.where}: centre ({row.x}, {row.y}) outside the {width}x{height} image {path}")
        lesions.append(
            Lesion(
                row=float(height - 1 - row.y),  # origin bottom-left -> array row
                col=float(row.x),
                radius=float(row.radius),
                pathology=row.pathology,
                kind=row.kind,
            )
        )
    return tuple(lesions)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header only; Pillow does not decode pixels here."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except OSError as exc:
        raise DatasetError(f"cannot read image header of {path}: {exc}") from exc
