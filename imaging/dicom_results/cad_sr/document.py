"""The Mammography CAD SR object (PS3.3 A.35.5): its modules around the TID 4000 content tree.

Patient, General Study, SR Document Series, General Equipment, SR Document General, SR Document Content and SOP
Common. Nothing comes from the clock or a random source: every UID is passed in or derived from the inputs, and
the dates and times come from content_datetime, so building the same report twice gives the same bytes.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Sequence

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from imaging.dicom_results.cad_sr.codes import VIEWS
from imaging.dicom_results.cad_sr.library import SIDE_NAMES, Entry, resolve_laterality, resolve_view
from imaging.dicom_results.cad_sr.model import BreastComposition, CadAlgorithm, CadImage
from imaging.dicom_results.cad_sr.tree import content_tree
from imaging.dicom_results.common import derived_uid, person_names_completed

MAMMOGRAPHY_CAD_SR = UID("1.2.840.10008.5.1.4.1.1.88.50")
# Patient and General Study attributes copied from the study's source; the Type 2 ones are written empty when
# the source lacks them (the standard's way of saying "unknown").
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")  # fmt: skip
_TYPE3 = ("IssuerOfPatientID", "PatientAge", "StudyDescription")


def mammography_cad_sr(
    *,
    images: Sequence[CadImage],
    algorithm: CadAlgorithm,
    sop_instance_uid: str,
    series_instance_uid: str,
    series_number: int,
    instance_number: int,
    content_datetime: datetime.datetime,
    study_source: Dataset,
    predecessor: Dataset | None = None,
    breast_composition: BreastComposition | None = None,
) -> Dataset:
    """A Mammography CAD SR (TID 4000) for one exam: every image, its processing status, the per-breast and
    per-exam results, one finding per analysed image at its heatmap peak, and (optionally) breast composition.

    study_source: a header of the exam whose patient and study the report joins. predecessor: the header of the
    report this one replaces (same study), referenced in the Predecessor Documents Sequence.
    """
    if not images:
        raise ValueError("a CAD report needs at least one image")
    if content_datetime.tzinfo is None:
        raise ValueError("content_datetime must be timezone-aware")
    uids = [str(image.source.SOPInstanceUID) for image in images]
    if len(set(uids)) != len(uids):
        raise ValueError("each image may appear only once")
    for image in images:
        if not image.source.get("StudyInstanceUID") or not image.source.get("SeriesInstanceUID"):
            raise ValueError(f"image {image.source.SOPInstanceUID} lacks its Study or Series Instance UID")
    study_uid = str(study_source.StudyInstanceUID)
    if predecessor is not None:
        if str(predecessor.StudyInstanceUID) != study_uid:
            raise ValueError("the predecessor belongs to another study: a new version stays in the same study")
        if str(predecessor.SOPInstanceUID) == str(sop_instance_uid):
            raise ValueError("a report cannot be its own predecessor")

    ds = Dataset()
    _sop_common(ds, sop_instance_uid, content_datetime)
    _content_qualification(ds, algorithm)
    _patient_and_study(ds, study_source)
    _series_and_equipment(ds, algorithm, series_instance_uid, series_number, content_datetime)
    _document_general(ds, algorithm, instance_number, content_datetime, images, study_uid, predecessor)
    root = content_tree(_entries(images), algorithm, breast_composition)
    for element in root:
        ds.add(element)
    return ds


def _entries(images: Sequence[CadImage]) -> list[Entry]:
    """The Image Library in hanging order (right before left, CC before MLO), then by SOP Instance UID, so the
    caller's order does not change the object."""
    views = [view for view in VIEWS.values()]
    sides = list(SIDE_NAMES)

    def key(image: CadImage) -> tuple:
        view = resolve_view(image)
        return (
            sides.index(resolve_laterality(image)),
            views.index(view) if view else len(views),
            image.source.SOPInstanceUID,
        )

    ordered = sorted(images, key=key)
    return [
        Entry(image=image, laterality=resolve_laterality(image), view=resolve_view(image), path=(1, 2, position))
        for position, image in enumerate(ordered, start=1)
    ]


def _sop_common(ds: Dataset, sop_instance_uid: str, moment: datetime.datetime) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MAMMOGRAPHY_CAD_SR
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 192"  # patient names are copied as they are, in any script
    ds.SOPClassUID = MAMMOGRAPHY_CAD_SR
    ds.SOPInstanceUID = UID(sop_instance_uid)
    ds.InstanceCreationDate, ds.InstanceCreationTime = _date_time(moment)
    ds.TimezoneOffsetFromUTC = "+0000"


def _content_qualification(ds: Dataset, algorithm: CadAlgorithm) -> None:
    # SOP Common, Type 3, enumerated: what a research model makes is RESEARCH, never PRODUCT.
    ds.ContentQualification = "PRODUCT" if algorithm.validated else "RESEARCH"


def _patient_and_study(ds: Dataset, source: Dataset) -> None:
    for keyword in _TYPE2:
        if keyword in source:
            ds[keyword] = copy.deepcopy(source[keyword])
        else:
            setattr(ds, keyword, "")
    for keyword in _TYPE3:
        if source.get(keyword):
            ds[keyword] = copy.deepcopy(source[keyword])
    ds.StudyInstanceUID = source.StudyInstanceUID
    person_names_completed(ds)


def _series_and_equipment(
    ds: Dataset, algorithm: CadAlgorithm, series_uid: str, series_number: int, moment: datetime.datetime
) -> None:
    ds.Modality = "SR"
    ds.SeriesInstanceUID = UID(series_uid)
    ds.SeriesNumber = int(series_number)
    ds.SeriesDate, ds.SeriesTime = _date_time(moment)
    # LO holds 64 characters: the research status goes first so that truncation can never drop it.
    status = "" if algorithm.validated else "RESEARCH USE ONLY: "
    ds.SeriesDescription = f"{status}Mammography CAD ({algorithm.name} {algorithm.version})"[:64]
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.Manufacturer = algorithm.manufacturer[:64]
    ds.ManufacturerModelName = algorithm.name[:64]
    ds.SoftwareVersions = algorithm.version[:64]


def _document_general(
    ds: Dataset,
    algorithm: CadAlgorithm,
    instance_number: int,
    moment: datetime.datetime,
    images: Sequence[CadImage],
    study_uid: str,
    predecessor: Dataset | None,
) -> None:
    ds.InstanceNumber = int(instance_number)
    ds.PreliminaryFlag = "PRELIMINARY"  # a CAD result is input to a reader, never the final report
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ContentDate, ds.ContentTime = _date_time(moment)
    ds.AuthorObserverSequence = [_device_observer(algorithm)]
    ds.PerformedProcedureCodeSequence = []
    current = [image.source for image in images if str(image.source.StudyInstanceUID) == study_uid]
    other = [image.source for image in images if str(image.source.StudyInstanceUID) != study_uid]
    if current:
        ds.CurrentRequestedProcedureEvidenceSequence = _hierarchical_references(current)
    if other:  # CBIS-DDSM gives each view a study of its own
        ds.PertinentOtherEvidenceSequence = _hierarchical_references(other)
    if predecessor is not None:
        ds.PredecessorDocumentsSequence = _hierarchical_references([predecessor])


def _device_observer(algorithm: CadAlgorithm) -> Dataset:
    """The model as the author of the document (SR Document General, Author Observer Sequence, DEV)."""
    observer = Dataset()
    observer.ObserverType = "DEV"
    observer.DeviceUID = derived_uid("cad-sr-device", algorithm.model_sha256)
    observer.Manufacturer = algorithm.manufacturer[:64]
    observer.ManufacturerModelName = algorithm.name[:64]
    observer.StationName = ""  # Type 2C for a device: the model runs on no named station
    observer.InstitutionName = ""
    observer.InstitutionCodeSequence = []
    return observer


def _hierarchical_references(instances: Sequence[Dataset]) -> list[Dataset]:
    """SOP Instance Reference Macro by study and series, in UID order."""
    tree: dict[str, dict[str, list[Dataset]]] = {}
    for instance in instances:
        tree.setdefault(str(instance.StudyInstanceUID), {}).setdefault(str(instance.SeriesInstanceUID), []).append(
            instance
        )
    studies = []
    for study_uid in sorted(tree):
        study = Dataset()
        study.StudyInstanceUID = study_uid
        series_items = []
        for series_uid in sorted(tree[study_uid]):
            series = Dataset()
            series.SeriesInstanceUID = series_uid
            series.ReferencedSOPSequence = [
                _sop_reference(instance)
                for instance in sorted(tree[study_uid][series_uid], key=lambda i: str(i.SOPInstanceUID))
            ]
            series_items.append(series)
        study.ReferencedSeriesSequence = series_items
        studies.append(study)
    return studies


def _sop_reference(instance: Dataset) -> Dataset:
    reference = Dataset()
    reference.ReferencedSOPClassUID = instance.SOPClassUID
    reference.ReferencedSOPInstanceUID = instance.SOPInstanceUID
    return reference


def _date_time(moment: datetime.datetime) -> tuple[str, str]:
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y%m%d"), utc.strftime("%H%M%S.%f")
