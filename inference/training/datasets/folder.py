"""Reader for a user's own images sorted into folders by label.

Two layouts (folder names are matched case-insensitively; `normal/` is optional):

    root/benign/*  root/malignant/*  [root/normal/*]                      -> all split 'train'
    root/train/{benign,malignant[,normal]}/*  root/test/{benign,...}/*   -> splits 'train', 'test'

Image files are .png, .jpg, .jpeg, .dcm and .dicom (any case). Other files (notes, .DS_Store)
are ignored with a warning; a sub-folder inside a label folder is an error, because its images
would otherwise be silently left out.

An optional `root/patients.csv` with columns `filename,patient_id` groups images by woman.
`filename` is the path relative to root (`benign/a.png`, `train/benign/a.png`) or, where it is
unique, the bare file name (`a.png`). When patients.csv exists it must name every image, and
no patient may have images in both train/ and test/.
"""

import csv
import logging
from dataclasses import replace
from pathlib import Path, PurePosixPath

from inference.training.datasets.records import DatasetError, ImageRecord

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
_LABEL_FOLDERS = {"benign": "BENIGN", "malignant": "MALIGNANT", "normal": "NORMAL"}
_REQUIRED_LABELS = ("benign", "malignant")
_PATIENTS_FILE = "patients.csv"


def read_image_folder(*, root: Path) -> list[ImageRecord]:
    """Read images labelled by their folder under `root` (layouts in the module docstring).

    image_id is the file's path relative to root (e.g. 'train/benign/a.png'). Lesion locations,
    laterality and view are unknown ('' and no lesions). Without patients.csv every image is its
    own patient: a cross-validation may then put two views of one woman on both sides of a split,
    which flatters validation figures; provide patients.csv where the grouping is known.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist")
    subfolders = _subfolders(root)
    has_splits = "train" in subfolders or "test" in subfolders
    has_labels = any(name in subfolders for name in _LABEL_FOLDERS)
    if has_splits and has_labels:
        raise DatasetError(
            f"{root} mixes the two layouts: use either benign/ malignant/ [normal/] or "
            "train/ and test/ each holding them"
        )
    if has_splits:
        absent = [name for name in ("train", "test") if name not in subfolders]
        if absent:
            raise DatasetError(f"{root}: has train/ or test/ but no {absent[0]}/ folder")
        split_folders = [("train", subfolders["train"]), ("test", subfolders["test"])]
    else:
        split_folders = [("train", root)]

    records = []
    for split, split_folder in split_folders:
        label_folders = _subfolders(split_folder)
        absent = [name for name in _REQUIRED_LABELS if name not in label_folders]
        if absent:
            raise DatasetError(
                f"{split_folder} needs the folders {list(_REQUIRED_LABELS)} (and optionally normal/); missing {absent}"
            )
        for name, label in _LABEL_FOLDERS.items():
            if name in label_folders:
                for path in _images(label_folders[name]):
                    image_id = path.relative_to(root).as_posix()
                    records.append(
                        ImageRecord(
                            image_id=image_id,
                            path=path,
                            patient_id=image_id,
                            image_label=label,
                            split=split,
                            laterality="",
                            view="",
                            dataset="folder",
                        )
                    )
    if not records:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {root}")

    patients_csv = root / _PATIENTS_FILE
    if patients_csv.is_file():
        records = _with_patients(records, patients_csv)
    return records


def _subfolders(folder: Path) -> dict[str, Path]:
    """Lower-cased name -> folder, refusing names that differ only in case."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_dir() and not path.name.startswith("."):
            key = path.name.lower()
            if key in found:
                raise DatasetError(f"{folder}: both {found[key].name}/ and {path.name}/")
            found[key] = path
    return found


def _images(folder: Path) -> list[Path]:
    images, ignored = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            raise DatasetError(f"{path} is a folder inside a label folder; put its images directly in {folder}")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        else:
            ignored.append(path.name)
    if ignored:
        logger.warning("ignored %d non-image file(s) in %s: %s", len(ignored), folder, ignored[:5])
    return images


def _with_patients(records: list[ImageRecord], patients_csv: Path) -> list[ImageRecord]:
    by_relative = {record.image_id: record for record in records}
    by_name: dict[str, list[str]] = {}
    for record in records:
        by_name.setdefault(record.path.name, []).append(record.image_id)

    patient_of: dict[str, str] = {}
    with patients_csv.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip().lower() for name in reader.fieldnames or ()]
        if "filename" not in columns or "patient_id" not in columns:
            raise DatasetError(f"{patients_csv}: needs the columns filename,patient_id")
        reader.fieldnames = columns
        for row in reader:
            where = f"{patients_csv}:{reader.line_num}"
            filename = PurePosixPath((row["filename"] or "").strip().replace("\\", "/"))
            patient_id = (row["patient_id"] or "").strip()
            if not str(filename) or str(filename) == "." or not patient_id:
                raise DatasetError(f"{where}: filename and patient_id are both required")
            if filename.as_posix() in by_relative:
                image_id = filename.as_posix()
            elif len(filename.parts) == 1 and len(by_name.get(filename.name, ())) == 1:
                image_id = by_name[filename.name][0]
            elif len(filename.parts) == 1 and filename.name in by_name:
                raise DatasetError(
                    f"{where}: {filename} is ambiguous ({by_name[filename.name]}); "
                    "give the path relative to the dataset folder"
                )
            else:
                raise DatasetError(f"{where}: no image {filename} under {patients_csv.parent}")
            if image_id in patient_of:
                raise DatasetError(f"{where}: {image_id} is listed twice")
            patient_of[image_id] = patient_id

    unlisted = [image_id for image_id in by_relative if image_id not in patient_of]
    if unlisted:
        raise DatasetError(f"{patients_csv} does not list {len(unlisted)} image(s), e.g. {unlisted[:5]}")
    splits_of: dict[str, set[str]] = {}
    for record in records:
        splits_of.setdefault(patient_of[record.image_id], set()).add(record.split)
    straddling = sorted(patient for patient, splits in splits_of.items() if len(splits) > 1)
    if straddling:
        raise DatasetError(f"{patients_csv}: patient(s) {straddling[:5]} have images in both train/ and test/")
    return [replace(record, patient_id=patient_of[record.image_id]) for record in records]
