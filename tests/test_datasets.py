"""Dataset readers and splits. No database, no Django:

    .venv/bin/python -m pytest -p no:django -p no:cacheprovider tests/test_datasets.py -q

Tests on the real data (mini-MIAS, the CBIS-DDSM CSVs) read MAMMO_DATA_DIR (default
<repo>/../shared/data) and skip with the reason when it is absent.
"""

import csv
import logging
import os
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.training.datasets import (
    DatasetError,
    ImageRecord,
    Lesion,
    lesion_centre_from_mask,
    only_split,
    patient_holdout,
    patient_kfold,
    read_cbis_ddsm,
    read_image_folder,
    read_mini_mias,
)
from inference.training.datasets.cbis_ddsm import CSV_FILES

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("MAMMO_DATA_DIR", REPO.parent / "shared" / "data"))
MIAS_DIR = DATA_DIR / "mini-mias"
CBIS_CSV_DIR = DATA_DIR / "cbis-ddsm"


def _mias_dir() -> Path:
    if not (MIAS_DIR / "Info.txt").is_file():
        pytest.skip(f"mini-MIAS not found at {MIAS_DIR}: set MAMMO_DATA_DIR")
    return MIAS_DIR


def _cbis_csv_dir() -> Path:
    if not all((CBIS_CSV_DIR / name).is_file() for name in CSV_FILES.values()):
        pytest.skip(f"CBIS-DDSM CSVs not found at {CBIS_CSV_DIR}: set MAMMO_DATA_DIR")
    return CBIS_CSV_DIR


# ---------------------------------------------------------------- mini-MIAS, real files


def test_it_reads_all_322_real_mias_images_with_the_readme_counts():
    records = read_mini_mias(root=_mias_dir())

    assert len(records) == 322
    assert len({r.image_id for r in records}) == 322
    counts = Counter((r.split, r.image_label) for r in records)
    assert counts == {
        ("train", "BENIGN"): 42,
        ("train", "MALIGNANT"): 36,
        ("train", "NORMAL"): 146,
        ("test", "BENIGN"): 21,
        ("test", "MALIGNANT"): 16,
        ("test", "NORMAL"): 61,
    }
    assert all(r.view == "MLO" and r.dataset == "mini-mias" for r in records)
    assert all(r.path.is_file() for r in records)
    # One woman per odd/even pair, never split between train and test.
    splits_of = defaultdict(set)
    for r in records:
        splits_of[r.patient_id].add(r.split)
    assert len(splits_of) == 161
    assert all(len(splits) == 1 for splits in splits_of.values())
    by_id = {r.image_id: r for r in records}
    assert (by_id["mdb001"].laterality, by_id["mdb002"].laterality) == ("R", "L")
    assert by_id["mdb001"].patient_id == by_id["mdb002"].patient_id


def test_it_gives_mdb144_its_benign_and_malignant_lesions():
    records = {r.image_id: r for r in read_mini_mias(root=_mias_dir())}

    mdb144 = records["mdb144"]
    assert mdb144.image_label == "MALIGNANT"
    assert mdb144.is_malignant and mdb144.has_lesion
    assert sorted(lesion.pathology for lesion in mdb144.lesions) == [
        "BENIGN",
        "MALIGNANT",
    ]
    assert records["mdb003"].lesions == () and not records["mdb003"].has_lesion
    # Rows without coordinates keep the lesion, without a location.
    for refnum in ("mdb059", "mdb216", "mdb233", "mdb245"):
        (lesion,) = records[refnum].lesions
        assert (lesion.row, lesion.col, lesion.radius) == (None, None, None)


def test_it_flips_real_mias_y_coordinates_to_array_rows():
    root = _mias_dir()
    line = next(line for line in (root / "Info.txt").read_text().splitlines() if line.startswith("mdb001"))
    assert line.split() == ["mdb001", "G", "CIRC", "B", "535", "425", "197"]
    records = {r.image_id: r for r in read_mini_mias(root=root)}

    (lesion,) = records["mdb001"].lesions
    assert (lesion.row, lesion.col, lesion.radius) == (1023 - 425, 535, 197)
    assert (lesion.pathology, lesion.kind) == ("BENIGN", "CIRC")


def test_it_puts_every_real_mias_lesion_inside_the_image_and_on_tissue():
    records = read_mini_mias(root=_mias_dir())
    on_tissue = located = 0
    for record in records:
        pixels = None
        for lesion in record.lesions:
            if lesion.row is None:
                continue
            located += 1
            assert lesion.row - lesion.radius >= 0 and lesion.row + lesion.radius <= 1023
            assert lesion.col - lesion.radius >= 0 and lesion.col + lesion.radius <= 1023
            if pixels is None:
                pixels = np.asarray(Image.open(record.path))
            on_tissue += pixels[int(lesion.row), int(lesion.col)] > 40
    assert located == 119
    # Lesion centres lie on breast tissue, not on the dark background (2 faint calcifications).
    assert on_tissue >= located - 2


# ---------------------------------------------------------------- mini-MIAS, synthetic copy

_INFO_HEADER = """\
              MAMMOGRAPHIC IMAGE ANALYSIS SOCIETY
1st column: MIAS database reference number.
5th,6th columns: x,y image-coordinates of centre of abnormality.
=================================================================

"""
_INFO_ROWS = """\
mdb001 G CIRC B 10 5 3
mdb002 G NORM 
mdb003 F CALC M *NOTE 3* 
mdb004 F CIRC B
mdb005 F MISC B 20 40 4
mdb005 F MISC M 30 10 5
mdb006 D NORM
"""
_SPLITS = """\
refnum,patient,image_label,split
mdb001,P001,BENIGN,train
mdb002,P001,NORMAL,train
mdb003,P002,MALIGNANT,test
mdb004,P002,BENIGN,test
mdb005,P003,MALIGNANT,train
mdb006,P003,NORMAL,train
"""


def _make_mias(root: Path, *, rows: str = _INFO_ROWS, splits: str = _SPLITS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Info.txt").write_text(_INFO_HEADER + rows + "\n" + "=" * 65 + "\n")
    (root / "splits.csv").write_text(splits)
    for number in range(1, 7):
        # 64 wide, 48 high: the flip must use the height, not a hard-coded 1023.
        Image.new("L", (64, 48), color=100).save(root / f"mdb{number:03d}.png")
    return root


def test_it_reads_a_synthetic_mias_copy(tmp_path):
    records = {r.image_id: r for r in read_mini_mias(root=_make_mias(tmp_path / "mias"))}

    assert sorted(records) == [f"mdb{n:03d}" for n in range(1, 7)]
    (lesion,) = records["mdb001"].lesions
    assert (lesion.row, lesion.col, lesion.radius) == (47 - 5, 10, 3)
    assert records["mdb001"].laterality == "R" and records["mdb002"].laterality == "L"
    assert records["mdb002"].image_label == "NORMAL" and records["mdb002"].lesions == ()
    assert records["mdb003"].image_label == "MALIGNANT"
    assert records["mdb003"].lesions[0].row is None
    assert records["mdb004"].lesions == (Lesion(None, None, None, "BENIGN", "CIRC"),)
    assert records["mdb005"].image_label == "MALIGNANT"
    assert [lesion.row for lesion in records["mdb005"].lesions] == [7.0, 37.0]
    assert records["mdb005"].split == "train" and records["mdb003"].split == "test"
    assert records["mdb005"].patient_id == records["mdb006"].patient_id == "P003"


def test_it_refuses_a_splits_label_that_disagrees_with_info(tmp_path):
    splits = _SPLITS.replace("mdb005,P003,MALIGNANT", "mdb005,P003,BENIGN")
    root = _make_mias(tmp_path / "mias", splits=splits)

    with pytest.raises(DatasetError, match=r"splits\.csv.*mdb005.*'BENIGN'.*'MALIGNANT'"):
        read_mini_mias(root=root)


def test_it_names_the_line_of_a_malformed_info_row(tmp_path):
    root = _make_mias(tmp_path / "mias", rows=_INFO_ROWS.replace("20 40 4", "20 forty 4"))
    line = 1 + (root / "Info.txt").read_text().splitlines().index("mdb005 F MISC B 20 forty 4")

    with pytest.raises(DatasetError, match=rf"Info\.txt:{line}: expected 'X Y RADIUS'"):
        read_mini_mias(root=root)


def test_it_refuses_mias_with_a_missing_image_or_an_unlisted_one(tmp_path):
    root = _make_mias(tmp_path / "mias")
    (root / "mdb004.png").unlink()
    with pytest.raises(DatasetError, match="mdb004.png"):
        read_mini_mias(root=root)

    root = _make_mias(tmp_path / "mias2", splits=_SPLITS.replace("mdb006,P003,NORMAL,train\n", ""))
    with pytest.raises(DatasetError, match=r"only in Info\.txt \['mdb006'\]"):
        read_mini_mias(root=root)


def test_it_refuses_a_lesion_centre_outside_the_image(tmp_path):
    root = _make_mias(tmp_path / "mias", rows=_INFO_ROWS.replace("10 5 3", "10 48 3"))

    with pytest.raises(DatasetError, match="outside the 64x48 image"):
        read_mini_mias(root=root)


# ---------------------------------------------------------------- CBIS-DDSM, synthetic tree


def _write_dicom(path: Path, *, patient_id: str, description: str | None, shape=(48, 32), value=1000) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = patient_id
    ds.Modality = "MG"
    if description is not None:
        ds.SeriesDescription = description
    ds.Rows, ds.Columns = shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.full(shape, value, dtype=np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _real_rows() -> dict[tuple[str, str], tuple[list[str], list[dict[str, str]]]]:
    """(kind, split) -> (header, rows) of the real CSVs, cells untouched (trailing newlines)."""
    tables = {}
    for key, name in CSV_FILES.items():
        with (_cbis_csv_dir() / name).open(newline="") as handle:
            reader = csv.DictReader(handle)
            tables[key] = (list(reader.fieldnames), list(reader))
    return tables


def _pick_rows(tables) -> dict[tuple[str, str], list[dict[str, str]]]:
    """A handful of real rows covering the cases the reader has to get right."""
    mass_train = tables["mass", "train"][1]
    by_image = defaultdict(list)
    for row in mass_train:
        by_image[row["image file path"].strip()].append(row)
    mixed = next(
        rows for rows in by_image.values() if len({r["pathology"] for r in rows}) == 2
    )  # one mammogram, several abnormalities, benign and malignant
    callback = next(
        rows[0] for rows in by_image.values() if len(rows) == 1 and rows[0]["pathology"] == "BENIGN_WITHOUT_CALLBACK"
    )
    split_roi = next(  # crop and mask in two different series folders
        r
        for r in mass_train
        if r["cropped image file path"].strip().rsplit("/", 1)[0] != r["ROI mask file path"].strip().rsplit("/", 1)[0]
    )
    picked = {
        ("mass", "train"): [
            *mass_train[:2],
            *mixed,
            callback,
            split_roi,
        ],  # P_00001 CC + MLO
        ("mass", "test"): tables["mass", "test"][1][:1],
        ("calc", "train"): tables["calc", "train"][1][:1],
        ("calc", "test"): tables["calc", "test"][1][:1],
    }
    return {key: list({id(r): r for r in rows}.values()) for key, rows in picked.items()}


@pytest.fixture
def cbis(tmp_path):
    """A TCIA-shaped tree of tiny DICOMs at the exact paths of real CSV rows."""
    tables = _real_rows()
    picked = _pick_rows(tables)
    root, csv_dir = tmp_path / "CBIS-DDSM", tmp_path / "csv"
    csv_dir.mkdir()
    for key, rows in picked.items():
        header = tables[key][0]
        with (csv_dir / CSV_FILES[key]).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        for row in rows:
            image = row["image file path"].strip()
            crop = row["cropped image file path"].strip()
            mask = row["ROI mask file path"].strip()
            _write_dicom(
                root / image,
                patient_id=image.split("/")[0],
                description="full mammogram images",
            )
            _write_dicom(
                root / crop,
                patient_id=crop.split("/")[0],
                description="cropped images",
                shape=(12, 8),
            )
            _write_dicom(
                root / mask,
                patient_id=mask.split("/")[0],
                description="ROI mask images",
            )
    return root, csv_dir, picked


def _all_rows(picked):
    return [(key, row) for key, rows in picked.items() for row in rows]


def test_it_reads_full_cbis_images_with_their_lesions(cbis):
    root, csv_dir, picked = cbis
    records = read_cbis_ddsm(root=root, csv_dir=csv_dir)

    expected = defaultdict(list)  # image folder -> its rows, straight from the real CSV text
    for (_, split), row in _all_rows(picked):
        expected[row["image file path"].strip().split("/")[0]].append((split, row))
    by_id = {r.image_id: r for r in records}
    assert sorted(by_id) == sorted(expected)
    for image_id, rows in expected.items():
        record = by_id[image_id]
        split, first = rows[0]
        assert record.path == root / first["image file path"].strip()
        assert record.patient_id == first["patient_id"]
        assert record.split == split
        assert record.laterality == first["left or right breast"][0]
        assert record.view == first["image view"]
        assert len(record.lesions) == len(rows)
        assert record.dataset == "cbis-ddsm"
        malignant = any(row["pathology"] == "MALIGNANT" for _, row in rows)
        assert record.image_label == ("MALIGNANT" if malignant else "BENIGN")
        assert {lesion.mask_path for lesion in record.lesions} == {
            root / row["ROI mask file path"].strip() for _, row in rows
        }
        assert all(lesion.row is None for lesion in record.lesions)

    mixed = [r for r in records if {lesion.pathology for lesion in r.lesions} == {"BENIGN", "MALIGNANT"}]
    assert mixed and mixed[0].image_label == "MALIGNANT" and len(mixed[0].lesions) >= 2
    callback = next(row for _, row in _all_rows(picked) if row["pathology"] == "BENIGN_WITHOUT_CALLBACK")
    assert by_id[callback["image file path"].strip().split("/")[0]].image_label == "BENIGN"
    assert by_id["Mass-Training_P_00001_LEFT_CC"].patient_id == "P_00001"
    assert by_id["Mass-Training_P_00001_LEFT_MLO"].patient_id == "P_00001"
    assert {r.split for r in records} == {"train", "test"}
    calc = [r for r in records if r.image_id.startswith("Calc-")]
    assert len(calc) == 2 and all(r.lesions[0].kind == "calcification" for r in calc)


def test_it_reads_one_cbis_crop_per_abnormality(cbis):
    root, csv_dir, picked = cbis
    records = read_cbis_ddsm(root=root, csv_dir=csv_dir, crops=True)

    rows = _all_rows(picked)
    assert len(records) == len(rows)
    by_id = {r.image_id: r for r in records}
    for _, row in rows:
        record = by_id[row["cropped image file path"].strip().split("/")[0]]
        assert record.path == root / row["cropped image file path"].strip()
        pathology = "MALIGNANT" if row["pathology"] == "MALIGNANT" else "BENIGN"
        assert record.image_label == pathology
        (lesion,) = record.lesions
        assert lesion.pathology == pathology
        assert lesion.mask_path == root / row["ROI mask file path"].strip()


def test_it_reads_only_the_requested_cbis_abnormality(cbis):
    root, csv_dir, _ = cbis
    calc = read_cbis_ddsm(root=root, csv_dir=csv_dir, abnormality="calc")
    mass = read_cbis_ddsm(root=root, csv_dir=csv_dir, abnormality="mass")

    assert calc and all(r.image_id.startswith("Calc-") for r in calc)
    assert mass and all(r.image_id.startswith("Mass-") for r in mass)
    with pytest.raises(DatasetError, match="abnormality must be"):
        read_cbis_ddsm(root=root, csv_dir=csv_dir, abnormality="masses")


def _mass_test(records):
    return [r for r in records if r.split == "test" and r.image_id.startswith("Mass-")]


def test_it_finds_cbis_files_renamed_in_the_series_folder(cbis):
    root, csv_dir, picked = cbis
    row = picked["mass", "test"][0]
    image = root / row["image file path"].strip()
    crop = root / row["cropped image file path"].strip()
    mask = root / row["ROI mask file path"].strip()
    assert crop.parent == mask.parent  # the usual layout: one series folder for both
    image.rename(image.with_name("1-1.dcm"))
    # Renamed so that the CSV names no longer point at them; the order is deliberately swapped.
    mask.rename(mask.with_name("1-1.dcm"))
    crop.rename(crop.with_name("1-2.dcm"))

    (record,) = _mass_test(read_cbis_ddsm(root=root, csv_dir=csv_dir))
    assert record.path == image.with_name("1-1.dcm")
    assert record.lesions[0].mask_path == mask.with_name("1-1.dcm")
    (crop_record,) = _mass_test(read_cbis_ddsm(root=root, csv_dir=csv_dir, crops=True))
    assert crop_record.path == crop.with_name("1-2.dcm")

    # A crop or mask alone in its own series folder (92 real mass rows) is simply that file.
    split_roi = next(r for r in picked["mass", "train"] if r["patient_id"] == "P_00059")
    lone_mask = root / split_roi["ROI mask file path"].strip()
    assert lone_mask.parent != (root / split_roi["cropped image file path"].strip()).parent
    lone_mask.rename(lone_mask.with_name("1-1.dcm"))
    (p59,) = [r for r in read_cbis_ddsm(root=root, csv_dir=csv_dir) if r.patient_id == "P_00059"]
    assert p59.lesions[0].mask_path == lone_mask.with_name("1-1.dcm")

    # Without SeriesDescription the size decides: a mask has the full image's size.
    patient = row["image file path"].strip().split("/")[0]
    _write_dicom(mask.with_name("1-1.dcm"), patient_id=patient, description=None)
    _write_dicom(crop.with_name("1-2.dcm"), patient_id=patient, description=None, shape=(12, 8))
    (record,) = _mass_test(read_cbis_ddsm(root=root, csv_dir=csv_dir))
    assert record.lesions[0].mask_path == mask.with_name("1-1.dcm")

    # Nothing tells them apart: no mask rather than a wrong one; the crop counts as missing.
    _write_dicom(crop.with_name("1-2.dcm"), patient_id=patient, description=None)
    (record,) = _mass_test(read_cbis_ddsm(root=root, csv_dir=csv_dir))
    assert record.lesions[0].mask_path is None
    with pytest.raises(DatasetError, match="1 CBIS-DDSM file"):
        read_cbis_ddsm(root=root, csv_dir=csv_dir, crops=True)


def test_it_errors_or_skips_missing_cbis_files(cbis, caplog):
    root, csv_dir, picked = cbis
    row = picked["calc", "test"][0]
    image = root / row["image file path"].strip()
    shutil.rmtree(image.parent)

    with pytest.raises(DatasetError, match=r"1 CBIS-DDSM file\(s\).*" + image.name):
        read_cbis_ddsm(root=root, csv_dir=csv_dir)
    everything = len({row["image file path"].strip() for _, row in _all_rows(picked)})
    with caplog.at_level(logging.WARNING, logger="inference.training.datasets.cbis_ddsm"):
        records = read_cbis_ddsm(root=root, csv_dir=csv_dir, missing="skip")
    assert len(records) == everything - 1
    assert "skipped 1 CBIS-DDSM record" in caplog.text
    with pytest.raises(DatasetError, match="missing must be"):
        read_cbis_ddsm(root=root, csv_dir=csv_dir, missing="ignore")


def test_it_refuses_cbis_with_a_bad_csv_or_the_wrong_root(cbis, tmp_path):
    root, csv_dir, _ = cbis
    with pytest.raises(DatasetError, match="root should be the TCIA download folder"):
        read_cbis_ddsm(root=tmp_path, csv_dir=csv_dir, missing="skip")

    path = csv_dir / CSV_FILES["calc", "train"]
    path.write_text(path.read_text().replace(",MALIGNANT,", ",MALIGNANT?,", 1))
    if ",MALIGNANT?," not in path.read_text():
        path.write_text(path.read_text().replace(",BENIGN,", ",MALIGNANT?,", 1))
    with pytest.raises(DatasetError, match=rf"{path.name}:\d+: pathology 'MALIGNANT\?'"):
        read_cbis_ddsm(root=root, csv_dir=csv_dir)

    path.unlink()
    with pytest.raises(DatasetError, match=path.name):
        read_cbis_ddsm(root=root, csv_dir=csv_dir)
    assert read_cbis_ddsm(root=root, csv_dir=csv_dir, abnormality="mass")


def test_it_finds_a_lesion_centre_from_its_mask():
    mask = np.zeros((40, 30), dtype=np.uint8)
    mask[10:21, 5:16] = 255  # an 11 x 11 square centred on (15, 10)

    row, col, radius = lesion_centre_from_mask(mask)
    assert (row, col) == (15.0, 10.0)
    assert radius == pytest.approx(np.hypot(5, 5) + 0.5)
    with pytest.raises(DatasetError, match="no lesion pixels"):
        lesion_centre_from_mask(np.zeros((4, 4)))


# ---------------------------------------------------------------- a user's folder


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not decoded by the reader")


def test_it_reads_a_flat_label_folder(tmp_path, caplog):
    for name in (
        "Benign/a.PNG",
        "Benign/b.jpeg",
        "malignant/c.dcm",
        "malignant/d.DICOM",
    ):
        _touch(tmp_path / name)
    _touch(tmp_path / "normal/e.jpg")
    _touch(tmp_path / "normal/notes.txt")
    _touch(tmp_path / "normal/.DS_Store")

    with caplog.at_level(logging.WARNING, logger="inference.training.datasets.folder"):
        records = read_image_folder(root=tmp_path)

    assert "notes.txt" in caplog.text
    labels = {r.image_id: r.image_label for r in records}
    assert labels == {
        "Benign/a.PNG": "BENIGN",
        "Benign/b.jpeg": "BENIGN",
        "malignant/c.dcm": "MALIGNANT",
        "malignant/d.DICOM": "MALIGNANT",
        "normal/e.jpg": "NORMAL",
    }
    assert all(r.split == "train" and r.dataset == "folder" for r in records)
    assert all(r.patient_id == r.image_id for r in records)  # no patients.csv: one per image
    assert {r.has_lesion for r in records if r.image_label != "NORMAL"} == {True}


def test_it_reads_a_train_test_folder_with_patients(tmp_path):
    for name in ("train/benign/a.png", "train/benign/b.png", "train/malignant/c.png"):
        _touch(tmp_path / name)
    for name in ("test/benign/d.png", "test/malignant/e.png"):
        _touch(tmp_path / name)
    (tmp_path / "patients.csv").write_text(
        "filename,patient_id\na.png,W1\ntrain/benign/b.png,W2\nc.png,W1\nd.png,W3\ne.png,W3\n"
    )

    records = {r.image_id: r for r in read_image_folder(root=tmp_path)}

    assert {i: (r.split, r.image_label, r.patient_id) for i, r in records.items()} == {
        "train/benign/a.png": ("train", "BENIGN", "W1"),
        "train/benign/b.png": ("train", "BENIGN", "W2"),
        "train/malignant/c.png": ("train", "MALIGNANT", "W1"),
        "test/benign/d.png": ("test", "BENIGN", "W3"),
        "test/malignant/e.png": ("test", "MALIGNANT", "W3"),
    }


def test_it_refuses_unclear_folders(tmp_path):
    _touch(tmp_path / "a/benign/x.png")
    _touch(tmp_path / "a/malignant/y.png")
    _touch(tmp_path / "a/train/benign/z.png")
    with pytest.raises(DatasetError, match="mixes the two layouts"):
        read_image_folder(root=tmp_path / "a")

    _touch(tmp_path / "b/benign/x.png")
    _touch(tmp_path / "b/malignant/y.png")
    (tmp_path / "b/patients.csv").write_text("filename,patient_id\nx.png,W1\n")
    with pytest.raises(DatasetError, match=r"does not list 1 image\(s\).*malignant/y\.png"):
        read_image_folder(root=tmp_path / "b")

    _touch(tmp_path / "c/benign/x.png")
    _touch(tmp_path / "c/malignant/sub/y.png")
    with pytest.raises(DatasetError, match="folder inside a label folder"):
        read_image_folder(root=tmp_path / "c")

    _touch(tmp_path / "d/benign/x.png")
    with pytest.raises(DatasetError, match="missing \\['malignant'\\]"):
        read_image_folder(root=tmp_path / "d")


# ---------------------------------------------------------------- splits


def _population(split: str = "train") -> list[ImageRecord]:
    """100 women with two images each: 55 normal, 27 with a benign, 18 with a malignant image."""
    records = []
    for number in range(100):
        worst = "NORMAL" if number < 55 else "BENIGN" if number < 82 else "MALIGNANT"
        for side, label in (("L", worst), ("R", "NORMAL")):
            lesions = () if label == "NORMAL" else (Lesion(1.0, 1.0, 1.0, label, "CIRC"),)
            records.append(
                ImageRecord(
                    image_id=f"w{number}{side}",
                    path=Path(f"w{number}{side}.png"),
                    patient_id=f"W{number:03d}",
                    image_label=label,
                    split=split,
                    laterality=side,
                    view="MLO",
                    lesions=lesions,
                )
            )
    return records


def _worst_by_patient(records):
    order = ("NORMAL", "BENIGN", "MALIGNANT")
    worst = {}
    for r in records:
        worst[r.patient_id] = max(worst.get(r.patient_id, "NORMAL"), r.image_label, key=order.index)
    return worst


def test_it_keeps_each_patient_in_exactly_one_validation_fold():
    records = _population()
    folds = patient_kfold(records, k=5, seed=7)

    assert len(folds) == 5
    seen = Counter()
    for train, val in folds:
        train_patients = {r.patient_id for r in train}
        val_patients = {r.patient_id for r in val}
        assert not train_patients & val_patients
        assert len(train) + len(val) == len(records)
        seen.update(val_patients)
    assert set(seen) == {r.patient_id for r in records} and set(seen.values()) == {1}


def test_it_stratifies_folds_by_the_patients_worst_label():
    records = _population()
    worst = _worst_by_patient(records)
    folds = patient_kfold(records, k=5, seed=3)

    for label, total in Counter(worst.values()).items():
        per_fold = [sum(1 for p in {r.patient_id for r in val} if worst[p] == label) for _, val in folds]
        assert sum(per_fold) == total and max(per_fold) - min(per_fold) <= 1
    sizes = [len({r.patient_id for r in val}) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1


def test_it_splits_deterministically_for_a_seed():
    records = _population()

    def ids(folds):
        return [sorted(r.image_id for r in val) for _, val in folds]

    assert ids(patient_kfold(records, k=4, seed=1)) == ids(patient_kfold(records, k=4, seed=1))
    assert ids(patient_kfold(records[::-1], k=4, seed=1)) == ids(patient_kfold(records, k=4, seed=1))
    assert ids(patient_kfold(records, k=4, seed=1)) != ids(patient_kfold(records, k=4, seed=2))
    first = patient_holdout(records, fraction=0.2, seed=5)
    assert first == patient_holdout(records, fraction=0.2, seed=5)


def test_it_holds_out_a_stratified_fraction_of_patients():
    records = _population()
    worst = _worst_by_patient(records)
    train, val = patient_holdout(records, fraction=0.2, seed=11)

    assert not {r.patient_id for r in train} & {r.patient_id for r in val}
    val_counts = Counter(worst[p] for p in {r.patient_id for r in val})
    assert val_counts == {
        "NORMAL": 11,
        "BENIGN": 5,
        "MALIGNANT": 4,
    }  # round(0.2 * n) per class
    # A custom label: stratify on malignant or not.
    train, val = patient_holdout(records, fraction=0.5, seed=1, label=lambda r: r.is_malignant)
    assert sum(1 for r in val if r.is_malignant) == 9


def test_it_refuses_to_split_the_sealed_test_split():
    records = _population() + _population("test")[:2]

    with pytest.raises(DatasetError, match="sealed 'test' split"):
        patient_kfold(records, k=5, seed=0)
    with pytest.raises(DatasetError, match="sealed 'test' split"):
        patient_holdout(records, fraction=0.2, seed=0)
    assert len(only_split(records, "test")) == 2
    assert len(patient_kfold(only_split(records, "train"), k=5, seed=0)) == 5
    assert len(patient_kfold(records, k=5, seed=0, allow_test=True)) == 5
    with pytest.raises(DatasetError, match="split must be one of"):
        only_split(records, "validation")


def test_it_splits_real_mias_train_by_woman():
    train = only_split(read_mini_mias(root=_mias_dir()), "train")
    folds = patient_kfold(train, k=5, seed=0)

    for fold_train, val in folds:
        assert not {r.patient_id for r in fold_train} & {r.patient_id for r in val}
        assert Counter(r.image_label for r in val)["MALIGNANT"] >= 5
