"""The AI result as DICOM (imaging/dicom_results/): built from the factory's MG and CBIS-DDSM-like sources, checked by
dciodvfy (no errors accepted; warnings reported), read back with highdicom's own parser. What an object says of the
score follows the model's validation: a model that is not validated makes no call and no malignancy claim."""

from __future__ import annotations

import datetime
import warnings
from io import BytesIO
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from imaging.dicom_results.common import AiResult, derived_uid
from imaging.dicom_results.measurement_report import image_result_sr, image_sr_uid, study_result_sr
from imaging.dicom_results.overlay import banner_layout, banner_line_width, overlay_sc_uid, overlay_secondary_capture
from tests.dciodvfy import dciodvfy
from tests.dicom_factory import SECONDARY_CAPTURE, make_dicom, patch_dicom
from tests.dicom_honesty import malignancy_claims

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SECONDARY_CAPTURE_UID = "1.2.840.10008.5.1.4.1.1.7"
MODEL_SHA = "3f" * 32
CREATED = datetime.datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=datetime.UTC)


def mg_source(*, laterality: str = "L", view: str = "CC", orientation: list[str] | None = None) -> Dataset:
    data = make_dicom(laterality=laterality, view=view, rows=256, columns=192)
    if orientation is not None:
        data = patch_dicom(data, PatientOrientation=orientation, InstanceNumber=3)
    return pydicom.dcmread(BytesIO(data))


def cbis_source() -> Dataset:
    """Like a real CBIS-DDSM file: Secondary Capture, Modality MG, side and view only in the PatientID."""
    data = make_dicom(
        sop_class=SECONDARY_CAPTURE, laterality="", view="", patient_id="Mass-Test_P_00173_RIGHT_CC", rows=200
    )
    return pydicom.dcmread(BytesIO(data))


def ai_result(**overrides) -> AiResult:
    values = {
        "model_name": "efficientnet-b0-cbis",
        "model_version": "v1",
        "model_sha256": MODEL_SHA,
        "validated": False,
        "validation_summary": "not validated (test AUC 0.38, 0.21–0.56)",
        "score": 0.734512,
        "operating_point": 0.42,
        "peak_row": 100.0,  # pixel indices, as the platform records the peak
        "peak_column": 60.0,
        "created_at": CREATED,
        "overlay_rgb": np.dstack([np.full((128, 96), v, np.uint8) for v in (200, 90, 30)]),
    }
    return AiResult(**{**values, **overrides})


def written(ds: Dataset, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def assert_valid(path: Path, *, iod: str) -> None:
    verdict = dciodvfy(path)
    assert verdict.iod == iod, verdict.output
    assert verdict.errors == [], verdict.output
    for line in verdict.warnings:
        warnings.warn(f"dciodvfy {path.name}: {line}", UserWarning, stacklevel=2)


def groups_of(path: Path) -> list:
    sr = hd.sr.ComprehensiveSR.from_dataset(pydicom.dcmread(path))
    return sr.content.get_planar_roi_measurement_groups()


def values_of(group) -> dict:
    region = group.roi
    return {
        "measurements": {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()},
        "evaluations": {q.name.meaning: q.value.meaning for q in group.get_qualitative_evaluations()},
        "point": region.value.tolist(),
        "graphic_type": region.graphic_type.value,
        "source": region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID,
        "sites": [site.value.meaning for site in group.finding_sites],
    }


def texts_of(group) -> dict[str, list[str]]:
    """The group's TEXT items by concept name (Algorithm Name, Version, Parameters, Tracking Identifier)."""
    found: dict[str, list[str]] = {}
    for item in group[0].ContentSequence:
        if item.ValueType == "TEXT":
            found.setdefault(item.ConceptNameCodeSequence[0].CodeMeaning, []).append(str(item.TextValue))
    return found


def test_it_builds_a_valid_image_report_for_a_mammogram(tmp_path):
    source = mg_source(orientation=["A", "R"])
    path = written(image_result_sr(source=source, result=ai_result()), tmp_path, "image-sr")
    assert_valid(path, iod="ComprehensiveSR")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == COMPREHENSIVE_SR
    # Patient and study are the source's, so the PACS files the report with the exam.
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID", "AccessionNumber"):
        assert ds[keyword].value == source[keyword].value
    assert ds.Modality == "SR"
    assert ds.CompletionFlag == "COMPLETE" and ds.VerificationFlag == "UNVERIFIED"
    assert "RESEARCH USE ONLY" in ds.SeriesDescription
    assert ds.ManufacturerModelName == "efficientnet-b0-cbis" and ds.SoftwareVersions == "v1"
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert evidence.ReferencedSOPInstanceUID == source.SOPInstanceUID
    [group] = groups_of(path)
    # A model that is not validated: its research score, and no call, no probability of cancer, no label.
    assert values_of(group) == {
        "measurements": {"AI research score, not validated for clinical use": (0.734512, "1")},
        "evaluations": {"Model validated for clinical use": "No"},
        "point": [[60.5, 100.5]],  # (column, row)
        "graphic_type": "POINT",
        "source": source.SOPInstanceUID,
        "sites": ["Left breast"],
    }
    assert malignancy_claims(ds) == []
    # The Image Library describes the mammogram (its orientation is known here).
    assert any(item.ConceptNameCodeSequence[0].CodeMeaning == "Image Library" for item in ds.ContentSequence)


def test_a_validated_models_report_gives_its_probability_and_its_call(tmp_path):
    source = mg_source(orientation=["A", "R"])
    for score, call in ((0.734512, "Flagged"), (0.1, "Not flagged")):
        path = written(image_result_sr(source=source, result=ai_result(validated=True, score=score)), tmp_path, "v")
        assert_valid(path, iod="ComprehensiveSR")
        [group] = groups_of(path)
        found = values_of(group)
        assert found["measurements"] == {"Probability of cancer": (score, "1"), "CAD Operating Point": (0.42, "1")}
        assert found["evaluations"] == {
            "AI call at the operating point": call,
            "Model validated for clinical use": "Yes",
        }
        assert "RESEARCH" not in pydicom.dcmread(path).SeriesDescription


def test_it_records_the_algorithm_version_and_threshold(tmp_path):
    path = written(image_result_sr(source=mg_source(), result=ai_result()), tmp_path, "image-sr")
    [group] = groups_of(path)
    assert texts_of(group) == {
        "Tracking Identifier": ["Grad-CAM heatmap peak"],
        "Algorithm Name": ["efficientnet-b0-cbis"],
        "Algorithm Version": ["v1"],
        "Algorithm Manufacturer": ["Mammography screening platform"],
        "Algorithm Parameters": [
            "operating_point=0.42",
            f"model_sha256={MODEL_SHA}",
            "not validated (test AUC 0.38, 0.21-0.56)",  # the en dash in the default repertoire
        ],
    }


def test_it_builds_a_valid_report_for_a_cbis_ddsm_secondary_capture(tmp_path):
    source = cbis_source()
    result = ai_result(score=0.1, validated=True, laterality="R")
    path = written(image_result_sr(source=source, result=result), tmp_path, "cbis-sr")
    assert_valid(path, iod="ComprehensiveSR")
    ds = pydicom.dcmread(path)
    assert ds.PatientID == "Mass-Test_P_00173_RIGHT_CC"  # the archive's identity, never rewritten
    assert "RESEARCH" not in ds.SeriesDescription
    [group] = groups_of(path)
    found = values_of(group)
    assert found["evaluations"] == {
        "AI call at the operating point": "Not flagged",
        "Model validated for clinical use": "Yes",
    }
    assert found["sites"] == ["Right breast"]
    assert found["source"] == source.SOPInstanceUID


def study_report(findings, *, anchor, version=1, predecessor=None):
    return study_result_sr(
        findings=findings, anchor=anchor, sop_instance_uid=derived_uid("test-study-sr", str(version)),
        series_instance_uid=derived_uid("test-study-sr-series"), version=version, predecessor=predecessor,
    )  # fmt: skip


def test_it_builds_a_valid_study_report_over_several_images(tmp_path):
    left, right, cbis = mg_source(laterality="L"), mg_source(laterality="R", view="MLO"), cbis_source()
    right.StudyInstanceUID = left.StudyInstanceUID  # one MG exam, plus a CBIS view with its own study
    findings = [
        (left, ai_result(score=0.2)),
        (right, ai_result(score=0.9, peak_row=9.5, peak_column=4.5)),
        (cbis, ai_result(score=0.3, laterality="R")),
    ]
    path = written(study_report(findings, anchor=cbis), tmp_path, "study-sr")
    assert_valid(path, iod="ComprehensiveSR")
    ds = pydicom.dcmread(path)
    assert ds.StudyInstanceUID == cbis.StudyInstanceUID  # the anchor's study, whatever the order of the findings
    groups = groups_of(path)
    assert {values_of(g)["source"] for g in groups} == {ds.SOPInstanceUID for ds, _ in findings}
    by_source = {values_of(g)["source"]: values_of(g) for g in groups}
    assert by_source[right.SOPInstanceUID]["point"] == [[5.0, 10.0]]
    assert by_source[right.SOPInstanceUID]["measurements"] == {
        "AI research score, not validated for clinical use": (0.9, "1")
    }
    sr = hd.sr.ComprehensiveSR.from_dataset(pydicom.dcmread(path))
    [summary] = sr.content.get_image_measurement_groups()
    assert {m.name.meaning: m.value for m in summary.get_measurements()} == {
        "AI research score, not validated for clinical use": 0.9
    }
    assert {q.name.meaning: q.value.meaning for q in summary.get_qualitative_evaluations()} == {
        "Model validated for clinical use": "No",
    }
    assert malignancy_claims(ds) == []
    referenced = {
        sop.ReferencedSOPInstanceUID
        for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence")
        for study in ds.get(keyword, [])
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    assert referenced == {source.SOPInstanceUID for source, _ in findings}
    assert "PredecessorDocumentsSequence" not in ds


def test_a_new_version_of_the_study_report_references_the_one_it_replaces(tmp_path):
    left, right = mg_source(laterality="L"), mg_source(laterality="R")
    right.StudyInstanceUID = left.StudyInstanceUID
    first = study_report([(left, ai_result(score=0.2))], anchor=left)
    second = study_report([(left, ai_result(score=0.2)), (right, ai_result(score=0.5))], anchor=left, version=2,
                          predecessor=first)  # fmt: skip
    path = written(second, tmp_path, "study-sr-2")
    assert_valid(path, iod="ComprehensiveSR")
    ds = pydicom.dcmread(path)
    [study] = ds.PredecessorDocumentsSequence
    assert study.StudyInstanceUID == left.StudyInstanceUID
    [series] = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == first.SeriesInstanceUID
    [sop] = series.ReferencedSOPSequence
    assert (sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID) == (COMPREHENSIVE_SR, first.SOPInstanceUID)
    assert ds.InstanceNumber == 2 and ds.SOPInstanceUID != first.SOPInstanceUID


@pytest.mark.parametrize(
    ("orientation", "written_as"),
    [
        (["A", "R"], ["A", "R"]),
        (["A", "FR"], ["A", "FR"]),  # MLO views of real units: combined values, which highdicom refused
        (["P", "FL"], ["P", "FL"]),
        ("CC", ""),  # CBIS-DDSM writes the view name: no orientation at all
        (["MLO", "X"], ""),
        (None, ""),
    ],
)
def test_any_patient_orientation_gives_valid_objects(tmp_path, orientation, written_as):
    data = make_dicom(laterality="R", view="MLO", rows=256, columns=192)
    source = pydicom.dcmread(BytesIO(data))
    if orientation is None:
        source.pop("PatientOrientation", None)
    else:
        source.PatientOrientation = orientation
    sc = overlay_secondary_capture(source=source, result=ai_result(laterality="R"))
    path = written(sc, tmp_path, "overlay")
    assert_valid(path, iod="SCImage")
    ds = pydicom.dcmread(path)
    assert (list(ds.PatientOrientation) if written_as else ds.PatientOrientation) == written_as
    sr = written(image_result_sr(source=source, result=ai_result(laterality="R")), tmp_path, "sr")
    assert_valid(sr, iod="ComprehensiveSR")


@pytest.mark.parametrize("columns", [24, 60, 120, 300, 1024])
def test_the_research_banner_is_whole_at_any_width(columns):
    text = ai_result().model_label and "AI research score of efficientnet-b0-cbis v1: NOT VALIDATED FOR CLINICAL USE"
    scale, lines = banner_layout(text, columns)
    assert " ".join(lines).replace("- ", "-") == text or "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert all(banner_line_width(line, scale) <= max(columns - 8, 1) for line in lines), (columns, lines)
    if columns <= 120:
        assert len(lines) > 1  # wrapped, not shrunk past reading or clipped
    overlay = np.dstack([np.full((200, columns), v, np.uint8) for v in (200, 90, 30)])
    sc = overlay_secondary_capture(source=mg_source(), result=ai_result(overlay_rgb=overlay))
    assert (sc.pixel_array[-1] == [200, 90, 30]).all()  # the picture survives under the band


def test_it_builds_a_valid_overlay_secondary_capture(tmp_path):
    source = mg_source(orientation=["A", "R"])
    result = ai_result()
    path = written(overlay_secondary_capture(source=source, result=result), tmp_path, "overlay")
    assert_valid(path, iod="SCImage")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == SECONDARY_CAPTURE_UID
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert ds.BurnedInAnnotation == "NO"  # the banner names the model, never the woman
    assert ds.ContentQualification == "RESEARCH"
    assert "RESEARCH USE ONLY" in ds.SeriesDescription and "NOT VALIDATED FOR CLINICAL USE" in ds.ImageComments
    assert malignancy_claims(ds) == []
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.PatientID == source.PatientID
    assert ds.Laterality == "L" and list(ds.PatientOrientation) == ["A", "R"]
    assert ds.DerivationCodeSequence[0].CodeMeaning == "Spatial resampling"  # 128 x 96 from 256 x 192
    assert [float(v) for v in ds.PixelSpacing] == [0.2, 0.2]
    pixels = ds.pixel_array
    assert pixels.shape == (128, 96, 3) and ds.PhotometricInterpretation == "RGB"
    # The overlay survives below the burned-in banner, the banner is there (white text on black).
    assert (pixels[-1] == [200, 90, 30]).all()
    assert pixels[:8].max() > 150 and (pixels[0] == 0).all()


def test_it_builds_a_valid_overlay_for_a_cbis_ddsm_source(tmp_path):
    source = cbis_source()
    path = written(overlay_secondary_capture(source=source, result=ai_result(laterality="R")), tmp_path, "overlay")
    assert_valid(path, iod="SCImage")
    ds = pydicom.dcmread(path)
    assert ds.Laterality == "R" and ds.PatientOrientation == ""


def test_rebuilding_gives_the_same_objects_so_a_retried_send_creates_nothing_new(tmp_path):
    source = mg_source()

    def encoded(ds: Dataset) -> bytes:
        out = BytesIO()
        ds.save_as(out, enforce_file_format=True)
        return out.getvalue()

    first_sr, second_sr = (image_result_sr(source=source, result=ai_result()) for _ in range(2))
    assert encoded(first_sr) == encoded(second_sr)
    first_sc, second_sc = (overlay_secondary_capture(source=source, result=ai_result()) for _ in range(2))
    assert encoded(first_sc) == encoded(second_sc)
    assert first_sr.SOPInstanceUID == image_sr_uid(
        source_sop_instance_uid=source.SOPInstanceUID, model_sha256=MODEL_SHA
    )
    assert first_sc.SOPInstanceUID == overlay_sc_uid(
        source_sop_instance_uid=source.SOPInstanceUID, model_sha256=MODEL_SHA
    )
    # Another model (another file hash) or another image gives other objects.
    assert image_result_sr(source=source, result=ai_result(model_sha256="00" * 32)).SOPInstanceUID != (
        first_sr.SOPInstanceUID
    )
    assert image_result_sr(source=mg_source(), result=ai_result()).SOPInstanceUID != first_sr.SOPInstanceUID
    assert len({first_sr.SOPInstanceUID, first_sc.SOPInstanceUID, first_sr.SeriesInstanceUID}) == 3
    assert first_sr.ContentDate == "20240501" and first_sr.ContentTime == "123015.250000"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"score": 1.2}, "score must be in"),
        ({"operating_point": float("nan")}, "operating_point must be in"),
        ({"model_sha256": ""}, "required"),
        ({"created_at": datetime.datetime(2024, 5, 1)}, "timezone-aware"),
        ({"laterality": "B"}, "laterality"),
    ],
)
def test_it_refuses_an_impossible_result(overrides, message):
    with pytest.raises(ValueError, match=message):
        ai_result(**overrides)


def test_it_refuses_a_peak_outside_the_image_and_a_bad_overlay():
    source = mg_source()
    with pytest.raises(ValueError, match="outside the 256 x 192 image"):
        image_result_sr(source=source, result=ai_result(peak_row=256.0))
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        overlay_secondary_capture(source=source, result=ai_result(overlay_rgb=np.zeros((10, 10), np.uint8)))
    with pytest.raises(ValueError, match="no overlay"):
        overlay_secondary_capture(source=source, result=ai_result(overlay_rgb=None))
    with pytest.raises(ValueError, match="at least one analysed image"):
        study_report([], anchor=source)


def test_the_validator_does_catch_a_broken_object(tmp_path):
    """The check above can fail: without Conversion Type (Type 1 in SC Equipment) dciodvfy reports an error."""
    sc = overlay_secondary_capture(source=mg_source(), result=ai_result())
    del sc.ConversionType
    verdict = dciodvfy(written(sc, tmp_path, "broken"))
    assert any("<ConversionType>" in line for line in verdict.errors), verdict.output
