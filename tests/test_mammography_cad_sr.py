"""The Mammography CAD SR (imaging/dicom_results/cad_sr): built from the factory's MG and CBIS-DDSM-like sources,
checked by dciodvfy (no errors accepted; warnings reported), written to bytes, read back with pydicom and walked: the
TID 4000 tree, PS3.3 Table A.35.5-2's value types and relationships, every by-reference target, and every code.

dciodvfy checks the modules and each content item's attributes, not the templates nor Table A.35.5-2: the walk
below does (constraints_broken), so a tree dciodvfy accepts but the standard does not is still caught."""

from __future__ import annotations

import dataclasses
import datetime
import re
import warnings
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from imaging.dicom_results.cad_sr import BreastComposition, CadAlgorithm, CadImage, mammography_cad_sr
from imaging.dicom_results.cad_sr.library import patient_orientation
from tests.dciodvfy import dciodvfy
from tests.dicom_factory import SECONDARY_CAPTURE, make_dicom, patch_dicom

MAMMOGRAPHY_CAD_SR = "1.2.840.10008.5.1.4.1.1.88.50"
CREATED = datetime.datetime(2024, 5, 1, 14, 30, 15, 250000, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
MODEL = CadAlgorithm(
    name="efficientnet-b0-cbis", version="v1", manufacturer="Mammography screening platform",
    model_sha256="3f" * 32, validated=False, operating_point=0.42,
)  # fmt: skip
DENSITY_MODEL = CadAlgorithm(
    name="density-net", version="0.3", manufacturer="Mammography screening platform",
    model_sha256="d7" * 32, validated=False, operating_point=0.5,
)  # fmt: skip
SCT, DCM = "SCT", "DCM"
# Codes that must never appear for a model that is not validated: malignant / benign labels, the probability of
# cancer, BI-RADS assessment categories (and their concept name). Meanings are checked by words as well.
FORBIDDEN_CODES = {
    ("21594007", SCT), ("86049000", SCT), ("363346000", SCT), ("30807003", SCT), ("3898006", SCT),
    ("111047", DCM), ("111005", DCM),
}  # fmt: skip
FORBIDDEN_WORDS = re.compile(r"malignan|benign|cancer|carcinoma|bi-?rads|assessment", re.IGNORECASE)
LEFT, RIGHT = ("80248007", SCT), ("73056007", SCT)
CC, MLO = ("399162004", SCT), ("399368009", SCT)
NOT_FOR_PRESENTATION, PRESENTATION_REQUIRED = ("111152", DCM), ("111150", DCM)


# --- Sources ---------------------------------------------------------------------------------------------------


def header(data: bytes) -> Dataset:
    return pydicom.dcmread(BytesIO(data), stop_before_pixels=True)


def mg_exam() -> list[Dataset]:
    """A 4-view Digital Mammography exam: one study, A\\R-style orientation, imager pixel spacing."""
    study = pydicom.uid.generate_uid()
    views = [("R", "CC", ["P", "L"]), ("L", "CC", ["A", "R"]), ("R", "MLO", ["P", "FL"]), ("L", "MLO", ["A", "FR"])]
    return [
        header(patch_dicom(make_dicom(laterality=side, view=view, study_uid=study), PatientOrientation=orientation))
        for side, view, orientation in views
    ]


def cbis_views() -> list[Dataset]:
    """Like real CBIS-DDSM files: Secondary Capture, each view its own study, side and view only in PatientID,
    Patient Orientation non-standard ('CC') or absent, one without any pixel spacing."""
    found = []
    for number, name in enumerate(["RIGHT_CC", "LEFT_MLO", "RIGHT_MLO", "LEFT_CC"]):
        data = make_dicom(sop_class=SECONDARY_CAPTURE, laterality="", view="", patient_id=f"Mass-Test_P_00173_{name}")
        if number == 0:
            data = patch_dicom(data, PatientOrientation="CC")
        found.append(header(data))
    del found[1].ImagerPixelSpacing, found[1].PixelSpacing
    return found


def build(images: list[CadImage], **overrides) -> Dataset:
    values = {
        "images": images,
        "algorithm": MODEL,
        "sop_instance_uid": "1.2.826.0.1.3680043.8.498.1001",
        "series_instance_uid": "1.2.826.0.1.3680043.8.498.1002",
        "series_number": 9004,
        "instance_number": 1,
        "content_datetime": CREATED,
        "study_source": images[0].source,
    }
    return mammography_cad_sr(**{**values, **overrides})


def encoded(ds: Dataset) -> bytes:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def checked(ds: Dataset, tmp_path: Path, name: str) -> Dataset:
    """dciodvfy finds no error (warnings are reported), Table A.35.5-2 holds; the object as read back."""
    path = tmp_path / f"{name}.dcm"
    path.write_bytes(encoded(ds))
    verdict = dciodvfy(path)
    assert verdict.iod == "MammographyCADSR", verdict.output
    assert verdict.errors == [], verdict.output
    for line in verdict.warnings:
        warnings.warn(f"dciodvfy {name}: {line}", UserWarning, stacklevel=2)
    read = pydicom.dcmread(path)
    assert constraints_broken(read) == []
    return read


# --- Walking the tree ------------------------------------------------------------------------------------------


def concept(item: Dataset) -> tuple[str, str]:
    name = item.ConceptNameCodeSequence[0]
    return str(name.CodeValue), str(name.CodingSchemeDesignator)


def value(item: Dataset) -> tuple[str, str]:
    code = item.ConceptCodeSequence[0]
    return str(code.CodeValue), str(code.CodingSchemeDesignator)


def children(item: Dataset, code: tuple[str, str] | None = None) -> list[Dataset]:
    found = list(item.get("ContentSequence", []))
    return [c for c in found if "ConceptNameCodeSequence" in c and concept(c) == code] if code else found


def child(item: Dataset, code: tuple[str, str]) -> Dataset:
    [found] = children(item, code)
    return found


def number(item: Dataset) -> float:
    return float(item.MeasuredValueSequence[0].NumericValue)


def walk(item: Dataset, path: tuple[int, ...] = (1,)):
    yield path, item
    for position, nested in enumerate(item.get("ContentSequence", []), start=1):
        yield from walk(nested, (*path, position))


def resolve(root: Dataset, identifier) -> Dataset:
    """The target of a by-reference relationship (PS3.3 C.17.3.2.5): positions from the root, which is 1."""
    assert int(identifier[0]) == 1
    item = root
    for position in identifier[1:]:
        item = item.ContentSequence[int(position) - 1]
    return item


def every_code(dataset: Dataset):
    """Every coded entry anywhere in the object: concept names, values, units, purposes, everything."""
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                if "CodeValue" in item:
                    yield str(item.CodeValue), str(item.CodingSchemeDesignator), str(item.get("CodeMeaning", ""))
                yield from every_code(item)


def every_text(dataset: Dataset):
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                yield from every_text(item)
        elif element.VR in ("UT", "LO", "LT", "ST", "SH") and element.value:
            yield str(element.value)


# PS3.3 Table A.35.5-2 (Mammography CAD SR relationship content constraints): (source value types, relationship)
# -> target value types; "by_reference" rows also allow a by-reference target.
RELATIONSHIPS = {
    (("CONTAINER",), "CONTAINS"): {"CODE", "NUM", "SCOORD", "IMAGE", "CONTAINER", "TEXT", "DATE"},
    (("CONTAINER", "TEXT", "CODE", "NUM"), "HAS OBS CONTEXT"): {
        "TEXT", "CODE", "NUM", "DATE", "TIME", "PNAME", "UIDREF", "COMPOSITE"},
    (("IMAGE",), "HAS ACQ CONTEXT"): {"TEXT", "CODE", "DATE", "TIME", "NUM"},
    (("CONTAINER", "CODE", "NUM", "COMPOSITE"), "HAS CONCEPT MOD"): {"TEXT", "CODE"},
    (("TEXT", "CODE", "NUM"), "HAS PROPERTIES"): {
        "CONTAINER", "TEXT", "CODE", "NUM", "DATE", "IMAGE", "SCOORD", "UIDREF"},
    (("CODE", "NUM"), "INFERRED FROM"): {"CODE", "NUM", "SCOORD", "CONTAINER", "TEXT", "IMAGE"},
    (("SCOORD",), "SELECTED FROM"): {"IMAGE"},
}  # fmt: skip
BY_REFERENCE = {"HAS PROPERTIES", "INFERRED FROM", "SELECTED FROM"}
VALUE_TYPES = {"TEXT", "CODE", "NUM", "DATE", "TIME", "PNAME", "SCOORD", "COMPOSITE", "IMAGE", "UIDREF", "CONTAINER"}


def constraints_broken(ds: Dataset) -> list[str]:
    """What breaks the Mammography CAD SR content constraints (PS3.3 A.35.5.3.1): the root template, the value
    types, Table A.35.5-2, and by-reference targets that do not exist or are not Image Library IMAGE items."""
    broken = []
    template = ds.ContentTemplateSequence[0]
    if (template.MappingResource, template.TemplateIdentifier) != ("DCMR", "4000"):
        broken.append("root template is not TID 4000")
    library = child(ds, ("111028", DCM))
    library_items = {id(item) for item in library.ContentSequence}
    for path, item in walk(ds):
        for nested in item.get("ContentSequence", []):
            relationship = nested.RelationshipType
            if "ReferencedContentItemIdentifier" in nested:
                target = resolve(ds, nested.ReferencedContentItemIdentifier)
                target_type, by_reference = target.ValueType, True
                if relationship not in BY_REFERENCE or id(target) not in library_items:
                    broken.append(f"{path}: by-reference {relationship} to a non-library item")
            else:
                target_type, by_reference = nested.ValueType, False
            if target_type not in VALUE_TYPES:
                broken.append(f"{path}: value type {target_type}")
            allowed = [targets for (sources, rel), targets in RELATIONSHIPS.items()
                       if item.ValueType in sources and rel == relationship]  # fmt: skip
            if not allowed or target_type not in allowed[0] or (by_reference and relationship not in BY_REFERENCE):
                broken.append(f"{path}: {item.ValueType} {relationship} {target_type}")
    return broken


def library_by_uid(ds: Dataset) -> dict[str, Dataset]:
    return {
        item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID: item
        for item in child(ds, ("111028", DCM)).ContentSequence
    }


def item_value(item: Dataset) -> object:
    if item.ValueType == "CODE":
        return value(item)
    if item.ValueType == "NUM":
        return number(item)
    return {"TEXT": item.get("TextValue"), "DATE": item.get("Date"), "TIME": item.get("Time")}[item.ValueType]


def acquisition_context(entry: Dataset) -> dict[str, object]:
    """An Image Library entry's HAS ACQ CONTEXT items by concept meaning (TID 4020)."""
    found: dict[str, object] = {}
    for item in entry.get("ContentSequence", []):
        assert item.RelationshipType == "HAS ACQ CONTEXT"
        found[item.ConceptNameCodeSequence[0].CodeMeaning] = item_value(item)
    return found


def peak_findings(ds: Dataset) -> dict[str, dict]:
    """Every Selected region finding (TID 4006), keyed by the SOP Instance UID of the image its Center is on."""
    summary = child(ds, ("111017", DCM))
    found = {}
    for impression in children(summary, ("111034", DCM)):
        for finding in children(impression, ("111059", DCM)):
            if value(finding) != ("111099", DCM):
                continue
            center = child(finding, ("111010", DCM))
            [selected_from] = center.ContentSequence
            assert selected_from.RelationshipType == "SELECTED FROM"
            target = resolve(ds, selected_from.ReferencedContentItemIdentifier)
            uid = target.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            found[uid] = {
                "point": [float(v) for v in center.GraphicData],
                "graphic_type": center.GraphicType,
                "intent": value(child(finding, ("111056", DCM))),
                "certainty": number(child(finding, ("111012", DCM))),
                "algorithm": child(finding, ("111001", DCM)).TextValue,
                "version": child(finding, ("111003", DCM)).TextValue,
                "parameters": [t.TextValue for t in children(finding, ("111002", DCM))],
                "container_intent": value(child(impression, ("111056", DCM))),
            }
    return found


def detection_statuses(ds: Dataset, detection: tuple[str, str] = ("111099", DCM)) -> dict[str, str]:
    """Per image: 'succeeded' (in Successful Detections), 'failed' (in Failed Detections) or 'not_attempted'."""
    statuses = dict.fromkeys(library_by_uid(ds), "not_attempted")
    summary = child(ds, ("111064", DCM))
    for group, status in ((("111063", DCM), "succeeded"), (("111025", DCM), "failed")):
        for container in children(summary, group):
            for performed in children(container, ("111022", DCM)):
                if value(performed) != detection:
                    continue
                for item in performed.ContentSequence:
                    if "ReferencedContentItemIdentifier" in item:
                        target = resolve(ds, item.ReferencedContentItemIdentifier)
                        statuses[target.ReferencedSOPSequence[0].ReferencedSOPInstanceUID] = status
    return statuses


def breast_impressions(ds: Dataset) -> dict[str, float]:
    """Certainty of Impression (the highest image score, %) per TID 4003 impression, keyed by its description."""
    summary = child(ds, ("111017", DCM))
    return {
        child(impression, ("111033", DCM)).TextValue.split(":")[0]: number(child(impression, ("111013", DCM)))
        for impression in children(summary, ("111034", DCM))
        if children(impression, ("111013", DCM))
    }


def assert_honest(ds: Dataset) -> None:
    """No malignant/benign label or code, no probability of cancer, no BI-RADS assessment, anywhere."""
    codes = list(every_code(ds))
    assert codes, "the walk found no code at all"
    for code_value, scheme, meaning in codes:
        assert (code_value, scheme) not in FORBIDDEN_CODES, (code_value, scheme, meaning)
        assert not FORBIDDEN_WORDS.search(meaning), meaning
    for text in every_text(ds):
        assert not FORBIDDEN_WORDS.search(text), text


# --- Tests -----------------------------------------------------------------------------------------------------


def test_a_four_view_exam_of_a_research_model_is_a_valid_honest_mammography_cad_sr(tmp_path):
    sources = mg_exam()
    scores = [0.1, 0.7345, 0.5, 0.2]
    peaks = [(100.0, 60.0), (12.0, 150.0), (30.5, 20.25), (255.0, 0.0)]
    images = [CadImage(source=s, status="succeeded", score=score, peak=peak)
              for s, score, peak in zip(sources, scores, peaks, strict=True)]  # fmt: skip
    ds = checked(build(images), tmp_path, "mg")

    assert ds.SOPClassUID == MAMMOGRAPHY_CAD_SR and ds.Modality == "SR"
    assert (concept(ds), ds.ValueType) == (("111036", DCM), "CONTAINER")
    assert value(child(ds, ("121049", DCM))) == ("en-US", "RFC5646")
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID", "AccessionNumber"):
        assert ds[keyword].value == sources[0][keyword].value
    assert (ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag) == ("COMPLETE", "UNVERIFIED", "PRELIMINARY")
    assert ds.ContentDate == "20240501" and ds.ContentTime == "123015.250000"  # UTC
    # The model is no validated device: the object says so where any system looks.
    assert ds.SeriesDescription.startswith("RESEARCH USE ONLY")
    assert ds.ContentQualification == "RESEARCH"
    assert ds.AuthorObserverSequence[0].ObserverType == "DEV"
    [evidence] = ds.CurrentRequestedProcedureEvidenceSequence
    assert {sop.ReferencedSOPInstanceUID for series in evidence.ReferencedSeriesSequence
            for sop in series.ReferencedSOPSequence} == {s.SOPInstanceUID for s in sources}  # fmt: skip
    assert "PertinentOtherEvidenceSequence" not in ds

    # Image Library: every image with its laterality, view, orientation and spacing.
    library = library_by_uid(ds)
    assert len(library) == 4
    expected = {s.SOPInstanceUID: s for s in sources}
    for uid, entry in library.items():
        context = acquisition_context(entry)
        source = expected[uid]
        assert context["Image Laterality"] == {"L": LEFT, "R": RIGHT}[source.ImageLaterality]
        assert context["Image View"] == {"CC": CC, "MLO": MLO}[source.ViewPosition]
        assert [context["Patient Orientation Row"], context["Patient Orientation Column"]] == list(
            source.PatientOrientation
        )
        assert context["Horizontal Pixel Spacing"] == 0.1 and context["Vertical Pixel Spacing"] == 0.1
        assert context["Study Date"] == "20240115"
    # Hanging order: right before left, CC before MLO.
    assert [acquisition_context(e)["Image View"] for e in library.values()] == [CC, MLO, CC, MLO]

    # Each finding on its own image, at the heatmap peak (column + 0.5, row + 0.5), not for presentation.
    findings = peak_findings(ds)
    assert set(findings) == set(expected)
    for source, score, (row, column) in zip(sources, scores, peaks, strict=True):
        found = findings[source.SOPInstanceUID]
        assert found["point"] == [column + 0.5, row + 0.5] and found["graphic_type"] == "POINT"
        assert found["certainty"] == pytest.approx(score * 100)
        assert found["intent"] == NOT_FOR_PRESENTATION and found["container_intent"] == NOT_FOR_PRESENTATION
        assert (found["algorithm"], found["version"]) == ("efficientnet-b0-cbis", "v1")
        assert "operating_point=0.42 (threshold on the image score, 0 to 1)" in found["parameters"]
        assert f"model_sha256={'3f' * 32}" in found["parameters"]
        assert any("not validated for clinical use" in p for p in found["parameters"])

    # TID 4006 is order-significant: rendering intent, tracking (TID 4108), TID 4019, certainty, TID 4021, TID 4013.
    summary = child(ds, ("111017", DCM))
    finding = children(children(summary, ("111034", DCM))[0], ("111059", DCM))[0]
    assert [(item.RelationshipType, concept(item)[0]) for item in finding.ContentSequence] == [
        ("HAS CONCEPT MOD", "111056"),
        ("HAS OBS CONTEXT", "112039"),
        ("HAS OBS CONTEXT", "112040"),
        *[("HAS PROPERTIES", code) for code in ("111001", "111003", "122405", "111002", "111002", "111002")],
        ("HAS PROPERTIES", "111012"),
        ("HAS PROPERTIES", "111010"),
        ("HAS PROPERTIES", "111058"),
    ]
    # TID 4000 rows in order: language, Image Library, findings summary, detections, analyses.
    assert [(item.RelationshipType, concept(item)[0]) for item in ds.ContentSequence] == [
        ("HAS CONCEPT MOD", "121049"),
        ("CONTAINS", "111028"),
        ("CONTAINS", "111017"),
        ("CONTAINS", "111064"),
        ("CONTAINS", "111065"),
    ]

    assert detection_statuses(ds) == dict.fromkeys(expected, "succeeded")
    assert value(child(ds, ("111064", DCM))) == ("111222", DCM)  # Summary of Detections: Succeeded
    assert value(child(ds, ("111065", DCM))) == ("111222", DCM)  # Summary of Analyses: Succeeded
    assert value(summary) == ("111242", DCM)  # All algorithms succeeded; with findings
    # Per breast and per exam: the highest image score, with the model and its research status.
    assert breast_impressions(ds) == {"Right breast": 50.0, "Left breast": 73.45}
    assert number(child(summary, ("111013", DCM))) == 73.45
    exam = child(summary, ("111033", DCM)).TextValue
    assert "0.7345" in exam and "efficientnet-b0-cbis v1" in exam and "not validated for clinical use" in exam
    assert_honest(ds)


def test_cbis_ddsm_secondary_captures_with_a_failed_and_a_skipped_view(tmp_path):
    sources = cbis_views()
    images = [
        CadImage(source=sources[0], status="succeeded", laterality="R", view="CC", score=0.3, peak=(40.0, 50.0)),
        CadImage(source=sources[1], status="succeeded", laterality="L", view="MLO", score=0.6, peak=(10.0, 5.0)),
        CadImage(source=sources[2], status="failed", laterality="R", view="MLO"),
        CadImage(source=sources[3], status="not_attempted", laterality="L", view="CC"),
    ]
    ds = checked(build(images), tmp_path, "cbis")

    uids = [s.SOPInstanceUID for s in sources]
    assert detection_statuses(ds) == dict(zip(uids, ["succeeded", "succeeded", "failed", "not_attempted"], strict=True))
    assert value(child(ds, ("111064", DCM))) == ("111223", DCM)  # Summary of Detections: Partially Succeeded
    assert value(child(ds, ("111017", DCM))) == ("111244", DCM)  # Not all algorithms succeeded; with findings
    library = library_by_uid(ds)
    contexts = {uid: acquisition_context(library[uid]) for uid in uids}
    # Laterality and view as the platform recorded them; no orientation from 'CC' or from nothing.
    assert [contexts[uid]["Image Laterality"] for uid in uids] == [RIGHT, LEFT, RIGHT, LEFT]
    assert [contexts[uid]["Image View"] for uid in uids] == [CC, MLO, MLO, CC]
    assert not any("Patient Orientation Row" in context for context in contexts.values())
    assert "Horizontal Pixel Spacing" not in contexts[uids[1]] and "Horizontal Pixel Spacing" in contexts[uids[0]]
    assert set(peak_findings(ds)) == set(uids[:2])
    # Each CBIS view is a study of its own: the report joins the first; the others are other evidence.
    assert ds.StudyInstanceUID == sources[0].StudyInstanceUID
    other = {study.StudyInstanceUID for study in ds.PertinentOtherEvidenceSequence}
    assert other == {s.StudyInstanceUID for s in sources[1:]}
    assert ds.PatientID == "Mass-Test_P_00173_RIGHT_CC"
    assert_honest(ds)


def test_an_exam_where_nothing_ran_says_so(tmp_path):
    sources = cbis_views()
    images = [CadImage(source=sources[0], status="failed", laterality="R", view="CC"),
              CadImage(source=sources[1], status="not_attempted", laterality="L", view="MLO")]  # fmt: skip
    ds = checked(build(images), tmp_path, "nothing")
    assert value(child(ds, ("111017", DCM))) == ("111245", DCM)  # No algorithms succeeded; without findings
    assert value(child(ds, ("111064", DCM))) == ("111224", DCM)  # Failed
    assert value(child(ds, ("111065", DCM))) == ("111225", DCM)  # Not Attempted
    assert children(child(ds, ("111017", DCM))) == []


def test_a_validated_model_marks_only_findings_at_or_above_its_operating_point(tmp_path):
    sources = mg_exam()
    validated = dataclasses.replace(MODEL, validated=True, operating_point=0.5)
    scores = [0.8, 0.3, 0.5, 0.1]
    images = [CadImage(source=s, status="succeeded", score=score, peak=(20.0, 30.0))
              for s, score in zip(sources, scores, strict=True)]  # fmt: skip
    ds = checked(build(images, algorithm=validated), tmp_path, "validated")

    findings = peak_findings(ds)
    intents = {uid: found["intent"] for uid, found in findings.items()}
    assert intents == {
        sources[0].SOPInstanceUID: PRESENTATION_REQUIRED,  # 0.8 >= 0.5
        sources[1].SOPInstanceUID: NOT_FOR_PRESENTATION,
        sources[2].SOPInstanceUID: PRESENTATION_REQUIRED,  # exactly at the operating point
        sources[3].SOPInstanceUID: NOT_FOR_PRESENTATION,
    }
    # The right breast (CC 0.8, MLO 0.5) has marks to show, the left (0.3, 0.1) none.
    assert {uid: found["container_intent"] for uid, found in findings.items()} == {
        sources[0].SOPInstanceUID: PRESENTATION_REQUIRED,
        sources[2].SOPInstanceUID: PRESENTATION_REQUIRED,
        sources[1].SOPInstanceUID: NOT_FOR_PRESENTATION,
        sources[3].SOPInstanceUID: NOT_FOR_PRESENTATION,
    }
    assert ds.ContentQualification == "PRODUCT" and "RESEARCH" not in ds.SeriesDescription
    assert "Model validated for clinical use." in child(child(ds, ("111017", DCM)), ("111033", DCM)).TextValue


def test_a_new_version_references_the_report_it_replaces(tmp_path):
    sources = mg_exam()
    images = [CadImage(source=sources[0], status="succeeded", score=0.4, peak=(1.0, 2.0)),
              CadImage(source=sources[1], status="not_attempted")]  # fmt: skip
    first = build(images)
    second_images = [images[0], CadImage(source=sources[1], status="succeeded", score=0.2, peak=(3.0, 4.0))]
    second = checked(
        build(second_images, sop_instance_uid="1.2.826.0.1.3680043.8.498.2001", instance_number=2, predecessor=first),
        tmp_path,
        "second",
    )
    [study] = second.PredecessorDocumentsSequence
    assert study.StudyInstanceUID == first.StudyInstanceUID == second.StudyInstanceUID
    [series] = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == first.SeriesInstanceUID
    [sop] = series.ReferencedSOPSequence
    assert (sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID) == (MAMMOGRAPHY_CAD_SR, first.SOPInstanceUID)
    assert "PredecessorDocumentsSequence" not in first

    elsewhere = mg_exam()[0]
    other_study = build([CadImage(source=elsewhere, status="failed")], study_source=elsewhere)
    with pytest.raises(ValueError, match="another study"):
        build(second_images, sop_instance_uid="1.2.826.0.1.3680043.8.498.2001", predecessor=other_study)


def test_the_same_inputs_give_the_same_bytes_whatever_the_order_of_the_images():
    sources = mg_exam()
    images = [CadImage(source=s, status="succeeded", score=0.25 * n, peak=(n, n)) for n, s in enumerate(sources)]
    first, second = encoded(build(images)), encoded(build(images))
    assert first == second
    assert encoded(build(list(reversed(images)))) == first
    assert encoded(build(images, sop_instance_uid="1.2.826.0.1.3680043.8.498.3001")) != first


def test_breast_composition_is_reported_when_given(tmp_path):
    sources = mg_exam()
    images = [CadImage(source=s, status="succeeded", score=0.2, peak=(5.0, 5.0)) for s in sources]
    composition = BreastComposition(categories={"L": "c", "R": "d"}, algorithm=DENSITY_MODEL)
    ds = checked(build(images, breast_composition=composition), tmp_path, "density")

    summary = child(ds, ("111017", DCM))
    found = {}
    for impression in children(summary, ("111034", DCM)):
        for finding in children(impression, ("111059", DCM)):
            if value(finding) == ("129715009", SCT):  # TID 4006 of value Breast composition
                category = value(child(finding, ("129715009", SCT)))  # TID 4007, CID 6000
                side = child(impression, ("111033", DCM)).TextValue.split(":")[0]
                found[side] = (
                    category,
                    value(child(finding, ("111056", DCM))),
                    child(finding, ("111001", DCM)).TextValue,
                )
    assert found == {
        "Breast composition, right breast": (("129719003", SCT), NOT_FOR_PRESENTATION, "density-net"),
        "Breast composition, left breast": (("129718006", SCT), NOT_FOR_PRESENTATION, "density-net"),
    }
    # The density model is listed among the detections performed, on the images of the breasts it assessed.
    assert set(detection_statuses(ds, ("129715009", SCT)).values()) == {"succeeded"}
    assert_honest(ds)
    # Without it, none of that.
    plain = build(images)
    assert ("129715009", SCT) not in {(c, s) for c, s, _ in every_code(plain)}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"status": "failed", "score": 0.3}, "no score"),
        ({"status": "succeeded"}, "needs a score"),
        ({"status": "succeeded", "score": 1.5}, "needs a score"),
        ({"status": "succeeded", "score": 0.5, "peak": (256.0, 3.0)}, "outside the 256 x 192 image"),
        ({"status": "done"}, "status must be one of"),
        ({"status": "failed", "laterality": "B"}, "laterality"),
    ],
)
def test_it_refuses_an_impossible_image(arguments, message):
    with pytest.raises(ValueError, match=message):
        CadImage(source=mg_exam()[0], **arguments)


def test_it_refuses_impossible_reports():
    sources = mg_exam()
    image = CadImage(source=sources[0], status="succeeded", score=0.5)
    with pytest.raises(ValueError, match="timezone-aware"):
        build([image], content_datetime=datetime.datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="only once"):
        build([image, image])
    with pytest.raises(ValueError, match="operating_point"):
        dataclasses.replace(MODEL, operating_point=1.5)
    with pytest.raises(ValueError, match="'a' to 'd'"):
        BreastComposition(categories={"L": "e"}, algorithm=DENSITY_MODEL)


def test_the_checks_do_catch_a_dishonest_or_broken_tree():
    """The walkers above can fail: a Malignant code, a relationship Table A.35.5-2 forbids, a dangling reference."""
    images = [CadImage(source=s, status="succeeded", score=0.5, peak=(1.0, 1.0)) for s in mg_exam()]
    ds = pydicom.dcmread(BytesIO(encoded(build(images))))
    finding = next(
        f for i in children(child(ds, ("111017", DCM)), ("111034", DCM)) for f in children(i, ("111059", DCM))
    )
    finding.ConceptCodeSequence[0].CodeValue, finding.ConceptCodeSequence[0].CodingSchemeDesignator = "21594007", SCT
    with pytest.raises(AssertionError):
        assert_honest(ds)
    finding.ConceptCodeSequence[0].CodeValue, finding.ConceptCodeSequence[0].CodingSchemeDesignator = "111099", DCM
    finding.ConceptCodeSequence[0].CodeMeaning = "Malignant"
    with pytest.raises(AssertionError):
        assert_honest(ds)
    child(ds, ("111028", DCM)).RelationshipType = "HAS PROPERTIES"
    assert constraints_broken(ds) == ["(1,): CONTAINER HAS PROPERTIES CONTAINER"]
    child(ds, ("111028", DCM)).RelationshipType = "CONTAINS"
    child(finding, ("111010", DCM)).ContentSequence[0].ReferencedContentItemIdentifier = [1, 3]
    assert any("non-library" in line for line in constraints_broken(ds))


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        (["A", "R"], ("A", "R")),
        (["P", "FL"], ("P", "FL")),
        ("A\\FR", ("A", "FR")),
        ("CC", None),  # CBIS-DDSM writes the view there
        (["MLO"], None),
        (["A"], None),
        (["A", "R", "F"], None),
        (["A", ""], None),
        (None, None),
    ],
)
def test_patient_orientation_is_copied_only_when_standard(orientation, expected):
    source = Dataset()
    if orientation is not None:
        source.PatientOrientation = orientation
    assert patient_orientation(source) == expected
