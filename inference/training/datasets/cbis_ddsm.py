"""Reader for CBIS-DDSM, driven by the four official case description CSVs.

The CSVs' path columns are relative to the TCIA download folder (`root`), e.g.
`Mass-Training_P_00001_LEFT_CC/<study uid>/<series uid>/000000.dcm`. Quirks handled here (all seen
in the real files):
- every cell of `ROI mask file path` (mass CSVs) or `cropped image file path` (calc CSVs) ends in a
  newline inside the quotes; all cells are stripped;
- the density column is `breast_density` in the mass CSVs and `breast density` in the calc CSVs;
  column names are compared after lower-casing and turning '_' into ' ';
- crop and mask usually share one series folder as 000000.dcm / 000001.dcm, but which is which
  differs (mass: crop 000000, mask 000001; calc: crop 000001, mask 000000), and 92 mass rows (one
  calc row) put them in two series folders, both called 000000.dcm. So the file numbers carry no
  rule that could be applied to renamed files.

File names inside a series folder of a real download can differ from the CSV (`1-1.dcm` instead
of `000000.dcm`). Resolution, per CSV path:
1. the exact file, when it exists (the CSV's naming is trusted as it is);
2. otherwise the series folder's .dcm files: a full mammogram folder holding exactly one .dcm is
   that image; a crop or mask folder holding exactly one .dcm that the CSV does not share with the
   other ROI object is that object;
3. otherwise (a folder shared by crop and mask, files renamed) each file's DICOM header is read
   (no pixels): SeriesDescription 'cropped images' / 'ROI mask images' as TCIA writes them, else
   the size: a mask has the full mammogram's Rows x Columns, a crop is smaller. When that leaves
   no single answer, a mask stays None (the lesion keeps no mask) and a crop counts as missing.
"""

import csv
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from imaging.naming_conventions import view_named_by
from inference.training.datasets.records import DatasetError, ImageRecord, Lesion, worst_label

logger = logging.getLogger(__name__)

CSV_FILES = {
    ("mass", "train"): "mass_case_description_train_set.csv",
    ("mass", "test"): "mass_case_description_test_set.csv",
    ("calc", "train"): "calc_case_description_train_set.csv",
    ("calc", "test"): "calc_case_description_test_set.csv",
}
_ABNORMALITY_TYPES = {"mass": "mass", "calc": "calcification"}
_PATHOLOGIES = {
    "MALIGNANT": "MALIGNANT",
    "BENIGN": "BENIGN",
    "BENIGN_WITHOUT_CALLBACK": "BENIGN",
}
_LATERALITIES = {"LEFT": "L", "RIGHT": "R"}
_VIEWS = ("CC", "MLO")
_REQUIRED_COLUMNS = (
    "patient id",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "pathology",
    "image file path",
    "cropped image file path",
    "roi mask file path",
)
_MISSING_EXAMPLES = 5


@dataclass(frozen=True)
class _CbisRow:
    patient_id: str
    split: str
    laterality: str
    view: str
    abnormality_id: int
    kind: str  # 'mass' | 'calcification'
    pathology: str  # 'BENIGN' | 'MALIGNANT'
    image_rel: str
    crop_rel: str
    mask_rel: str
    where: str  # 'csv path:line' for error messages


def read_cbis_ddsm(
    *,
    root: Path,
    csv_dir: Path,
    abnormality: str = "both",
    crops: bool = False,
    missing: str = "error",
) -> list[ImageRecord]:
    """Read CBIS-DDSM from a TCIA download at `root`, labelled by the CSVs in `csv_dir`.

    abnormality: 'mass', 'calc' or 'both' (which CSVs to read).
    crops=False: one record per full mammogram; its CSV rows become its lesions (no centres: load
        the mask and call `lesion_centre_from_mask`), image_label is the worst pathology.
    crops=True: one record per abnormality, `path` is the cropped image, image_label is its own
        pathology, image_id the crop folder name (e.g. 'Mass-Training_P_00001_LEFT_CC_1').
    missing: 'error' raises DatasetError listing the first missing files; 'skip' leaves those
        records out and logs how many (but still raises when no file at all is found, which means
        `root` is the wrong folder). A mask that cannot be found never drops a record: the
        lesion keeps mask_path None and a warning gives the count.

    BENIGN_WITHOUT_CALLBACK counts as BENIGN. patient_id is the CSV's (P_00001), shared by a
    woman's mass and calc images; group splits by it. With 'both', note that 71 breast views appear
    in both the mass and the calc CSVs as separate files (16 of them with different worst labels),
    and that the official train/test split was made separately for masses and calcifications:
    31 patients have images in both splits.
    """
    if abnormality not in ("mass", "calc", "both"):
        raise DatasetError(f"abnormality must be 'mass', 'calc' or 'both', not {abnormality!r}")
    if missing not in ("error", "skip"):
        raise DatasetError(f"missing must be 'error' or 'skip', not {missing!r}")
    root, csv_dir = Path(root), Path(csv_dir)
    if not root.is_dir():
        raise DatasetError(f"CBIS-DDSM image folder {root} does not exist")

    kinds = ("mass", "calc") if abnormality == "both" else (abnormality,)
    rows = [
        row
        for kind in kinds
        for split in ("train", "test")
        for row in _read_csv(csv_dir / CSV_FILES[kind, split], kind=kind, split=split)
    ]
    resolver = _Resolver(root)
    if crops:
        records, missing_paths, masks_not_found = _crop_records(rows, resolver)
    else:
        records, missing_paths, masks_not_found = _image_records(rows, resolver)

    if missing_paths and not records:
        raise DatasetError(
            f"none of the {len(missing_paths)} CBIS-DDSM file(s) named in {csv_dir} is under "
            f"{root}, e.g. {missing_paths[0]}: root should be the TCIA download folder that "
            "holds the Mass-Training_... / Calc-Test_... folders"
        )
    if missing_paths:
        examples = [str(path) for path in missing_paths[:_MISSING_EXAMPLES]]
        if missing == "error":
            raise DatasetError(
                f"{len(missing_paths)} CBIS-DDSM file(s) named in {csv_dir} not found under "
                f"{root}, e.g. {examples}; pass missing='skip' to read the rest"
            )
        logger.warning(
            "skipped %d CBIS-DDSM record(s) whose file was not found under %s, e.g. %s",
            len(missing_paths),
            root,
            examples,
        )
    if masks_not_found:
        logger.warning(
            "%d CBIS-DDSM ROI mask(s) not found under %s; those lesions have mask_path None",
            masks_not_found,
            root,
        )
    return records


def lesion_centre_from_mask(mask: np.ndarray) -> tuple[float, float, float]:
    """(row, col, radius) of a lesion from its ROI mask (any non-zero pixel is lesion).

    The centre is the centroid in array coordinates; the radius encloses every lesion pixel
    (largest centre-to-pixel distance plus half a pixel), like MIAS's enclosing-circle radius.
    """
    array = np.asarray(mask)
    if array.ndim != 2:
        raise DatasetError(f"a mask must be a 2-D array, got shape {array.shape}")
    rows, cols = np.nonzero(array)
    if rows.size == 0:
        raise DatasetError("the mask has no lesion pixels")
    row, col = float(rows.mean()), float(cols.mean())
    radius = float(np.sqrt(((rows - row) ** 2 + (cols - col) ** 2).max())) + 0.5
    return row, col, radius


def _image_records(rows: list[_CbisRow], resolver: "_Resolver") -> tuple[list[ImageRecord], list[Path], int]:
    by_image: dict[str, list[_CbisRow]] = {}
    for row in rows:
        by_image.setdefault(row.image_rel, []).append(row)

    records: list[ImageRecord] = []
    missing_paths: list[Path] = []
    masks_not_found = 0
    seen_ids: dict[str, str] = {}
    for image_rel, image_rows in by_image.items():
        first = image_rows[0]
        for row in image_rows[1:]:
            same = (row.patient_id, row.split, row.laterality, row.view) == (
                first.patient_id,
                first.split,
                first.laterality,
                first.view,
            )
            if not same:
                raise DatasetError(
                    f"{row.where} and {first.where} describe {image_rel} differently (patient, split, side or view)"
                )
        image_id = _top_folder(image_rel)
        if image_id in seen_ids and seen_ids[image_id] != image_rel:
            raise DatasetError(f"{first.where}: two full images in folder {image_id}")
        seen_ids[image_id] = image_rel

        path = resolver.full_image(image_rel)
        if path is None:
            missing_paths.append(resolver.root / image_rel)
            continue
        lesions = []
        for row in sorted(image_rows, key=lambda r: r.abnormality_id):
            mask = resolver.roi(
                row.mask_rel,
                other_rel=row.crop_rel,
                role="mask",
                full_image=lambda path=path: path,
            )
            masks_not_found += mask is None
            lesions.append(Lesion(None, None, None, row.pathology, row.kind, mask_path=mask))
        records.append(
            ImageRecord(
                image_id=image_id,
                path=path,
                patient_id=first.patient_id,
                image_label=worst_label(lesion.pathology for lesion in lesions),
                split=first.split,
                laterality=first.laterality,
                view=first.view,
                lesions=tuple(lesions),
                dataset="cbis-ddsm",
            )
        )
    return records, missing_paths, masks_not_found


def _crop_records(rows: list[_CbisRow], resolver: "_Resolver") -> tuple[list[ImageRecord], list[Path], int]:
    records: list[ImageRecord] = []
    missing_paths: list[Path] = []
    masks_not_found = 0
    seen_ids: set[str] = set()
    for row in rows:
        image_id = _top_folder(row.crop_rel)
        if image_id in seen_ids:
            raise DatasetError(f"{row.where}: crop folder {image_id} used by two rows")
        seen_ids.add(image_id)

        def full_image(row: _CbisRow = row) -> Path | None:
            return resolver.full_image(row.image_rel)

        path = resolver.roi(row.crop_rel, other_rel=row.mask_rel, role="crop", full_image=full_image)
        if path is None:
            missing_paths.append(resolver.root / row.crop_rel)
            continue
        mask = resolver.roi(row.mask_rel, other_rel=row.crop_rel, role="mask", full_image=full_image)
        masks_not_found += mask is None
        records.append(
            ImageRecord(
                image_id=image_id,
                path=path,
                patient_id=row.patient_id,
                image_label=row.pathology,
                split=row.split,
                laterality=row.laterality,
                view=row.view,
                lesions=(Lesion(None, None, None, row.pathology, row.kind, mask_path=mask),),
                dataset="cbis-ddsm",
            )
        )
    return records, missing_paths, masks_not_found


def _read_csv(path: Path, *, kind: str, split: str) -> list[_CbisRow]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read CBIS-DDSM description file {path}: {exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        reader.fieldnames = [_column(name) for name in reader.fieldnames or ()]
        absent = [name for name in _REQUIRED_COLUMNS if name not in reader.fieldnames]
        if absent:
            raise DatasetError(f"{path}: missing column(s) {absent}")
        rows = []
        seen: set[tuple[str, int]] = set()
        for cells in reader:
            where = f"{path}:{reader.line_num}"
            row = _parse_row(cells, kind=kind, split=split, where=where)
            key = (row.image_rel, row.abnormality_id)
            if key in seen:
                raise DatasetError(f"{where}: abnormality {key[1]} of {key[0]} listed twice")
            seen.add(key)
            rows.append(row)
    return rows


def _parse_row(cells: dict[str, str | None], *, kind: str, split: str, where: str) -> _CbisRow:
    def cell(name: str) -> str:
        return (cells.get(name) or "").strip()

    patient_id = cell("patient id")
    side = cell("left or right breast")
    view = cell("image view")
    pathology = cell("pathology")
    abnormality_type = cell("abnormality type")
    if not patient_id:
        raise DatasetError(f"{where}: empty patient_id")
    if side not in _LATERALITIES:
        raise DatasetError(f"{where}: 'left or right breast' is {side!r}, not LEFT or RIGHT")
    if view not in _VIEWS:
        raise DatasetError(f"{where}: 'image view' is {view!r}, not one of {_VIEWS}")
    if pathology not in _PATHOLOGIES:
        raise DatasetError(f"{where}: pathology {pathology!r} not in {sorted(_PATHOLOGIES)}")
    if abnormality_type != _ABNORMALITY_TYPES[kind]:
        raise DatasetError(
            f"{where}: abnormality type {abnormality_type!r} in a {kind} file (expected {_ABNORMALITY_TYPES[kind]!r})"
        )
    try:
        abnormality_id = int(cell("abnormality id"))
    except ValueError:
        raise DatasetError(f"{where}: abnormality id {cell('abnormality id')!r} is not a number") from None
    image_rel = _relative_path(cell("image file path"), column="image file path", where=where)
    # The folder names repeat the row's patient, side and view (the dataset's naming convention); a mismatch means
    # shifted cells.
    named = view_named_by(_top_folder(image_rel))
    if named is None or (named.woman, named.laterality, named.view) != (patient_id.upper(), _LATERALITIES[side], view):
        raise DatasetError(
            f"{where}: image folder {_top_folder(image_rel)} does not name {patient_id} {side} {view} "
            "as CBIS-DDSM names its folders ('Mass-Training_P_00001_LEFT_CC')"
        )
    return _CbisRow(
        patient_id=patient_id,
        split=split,
        laterality=_LATERALITIES[side],
        view=view,
        abnormality_id=abnormality_id,
        kind=abnormality_type,
        pathology=_PATHOLOGIES[pathology],
        image_rel=image_rel,
        crop_rel=_relative_path(
            cell("cropped image file path"),
            column="cropped image file path",
            where=where,
        ),
        mask_rel=_relative_path(cell("roi mask file path"), column="ROI mask file path", where=where),
        where=where,
    )


def _column(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name.strip().lower())


def _relative_path(value: str, *, column: str, where: str) -> str:
    path = PurePosixPath(value.replace("\\", "/"))
    if not value or path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
        raise DatasetError(f"{where}: {column} {value!r} is not a relative file path")
    return path.as_posix()


def _top_folder(relative: str) -> str:
    return relative.split("/", 1)[0]


class _Resolver:
    """Finds the file a CSV path names, tolerating renamed files (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[Path, list[Path]] = {}
        self._headers: dict[Path, tuple[str, int | None, int | None] | None] = {}

    def full_image(self, relative: str) -> Path | None:
        exact = self.root / relative
        if exact.is_file():
            return exact
        candidates = self._dicoms(exact.parent)
        return candidates[0] if len(candidates) == 1 else None

    def roi(
        self,
        relative: str,
        *,
        other_rel: str,
        role: str,
        full_image: Callable[[], Path | None],
    ) -> Path | None:
        exact = self.root / relative
        if exact.is_file():
            return exact
        candidates = self._dicoms(exact.parent)
        if not candidates:
            return None
        shares_folder = (self.root / other_rel).parent == exact.parent
        if len(candidates) == 1 and not shares_folder:
            return candidates[0]
        matches = [path for path in candidates if self._roi_role(path, full_image) == role]
        return matches[0] if len(matches) == 1 else None

    def _dicoms(self, folder: Path) -> list[Path]:
        if folder not in self._listings:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                entries = []
            self._listings[folder] = [path for path in entries if path.suffix.lower() == ".dcm" and path.is_file()]
        return self._listings[folder]

    def _roi_role(self, path: Path, full_image: Callable[[], Path | None]) -> str | None:
        header = self._header(path)
        if header is None:
            return None
        description, rows, columns = header
        if "mask" in description:
            return "mask"
        if "crop" in description:
            return "crop"
        full_path = full_image()
        full_header = self._header(full_path) if full_path is not None else None
        if full_header is None or None in (
            rows,
            columns,
            full_header[1],
            full_header[2],
        ):
            return None
        if (rows, columns) == full_header[1:]:
            return "mask"  # masks are drawn on the full mammogram's pixel grid
        if rows <= full_header[1] and columns <= full_header[2]:  # type: ignore[operator]
            return "crop"
        return None

    def _header(self, path: Path) -> tuple[str, int | None, int | None] | None:
        """(lower-case SeriesDescription, Rows, Columns) without reading pixel data."""
        if path not in self._headers:
            import pydicom
            from pydicom.errors import InvalidDicomError

            try:
                dataset = pydicom.dcmread(path, stop_before_pixels=True)
            except (InvalidDicomError, OSError, ValueError) as exc:
                logger.debug("cannot read DICOM header of %s: %s", path, exc)
                self._headers[path] = None
            else:
                rows, columns = dataset.get("Rows"), dataset.get("Columns")
                self._headers[path] = (
                    str(dataset.get("SeriesDescription", "")).lower(),
                    int(rows) if rows is not None else None,
                    int(columns) if columns is not None else None,
                )
        return self._headers[path]
