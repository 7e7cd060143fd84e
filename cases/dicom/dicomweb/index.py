"""What DICOMweb shows a user: the stored DICOM instances (received images) and the AI result objects, grouped by
DICOM study and series, each checked against the user's role.

Received images need STUDY_VIEW; result objects also need PREDICTION_VIEW and are hidden where the AI is withheld
from this user (cases.ai_visibility: a read given without the AI, a first impression still to record). The study-
and patient-level
attributes come from the platform's records (the woman's ID, as the platform groups her images; CBIS-DDSM's
view-naming identifiers are not repeated).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from pydicom import dcmread
from pydicom.dataset import Dataset

from accounts.roles import Capability, role_can
from cases.ai_visibility import ai_access
from cases.models import DicomResultObject, Image, Study
from core import storage

STUDY_UID_CHUNK = 500  # images read per query while looking for the next studies of a search page


@dataclass
class Instance:
    study: Study
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str
    storage_name: str
    image: Image | None = None
    result: DicomResultObject | None = None

    @cached_property
    def header(self) -> Dataset:
        """The stored file's attributes, without pixel data (read only when asked for)."""
        with storage.open_file(self.storage_name) as handle:
            return dcmread(handle, stop_before_pixels=True)

    @property
    def series_number(self) -> str:
        return str(self.header.get("SeriesNumber", "") or "")

    @property
    def instance_number(self) -> str:
        return str(self.header.get("InstanceNumber", "") or "")


def dicomweb_study_uids(*, user, keys: dict[str, str]) -> Iterator[str]:
    """The DICOM Study Instance UIDs of the received images, in the order the study search answers them (by the
    first image received), narrowed in SQL by the study-level keys that SQL can check. The narrowing only ever keeps
    too many (a wildcard is reduced to its literal start; SQLite compares case-insensitively): the search still
    matches each study it builds against every key (cases.dicom.dicomweb.qido), so what is answered is exactly what
    PS3.4 matching answers, without building every study of the archive first.

    The images are walked in primary-key order, STUDY_UID_CHUNK at a time from the last key seen (an index range
    scan), and each study is yielded at its first image, which is its place in the answer order. A page therefore
    reads about its own number of images, not the archive's (a GROUP BY over every image to find each study's first
    one took 250-300 ms at 100,000 studies)."""
    _require_study_view(user)
    images = Image.objects.filter(source_format=Image.Format.DICOM).exclude(dicom_study_instance_uid="")
    images = images.exclude(sop_instance_uid="")
    for keyword, field in (
        ("PatientID", "study__patient__patient_id"),
        ("PatientName", "study__patient__name"),
        ("AccessionNumber", "study__accession_number"),
        ("StudyDescription", "study__description"),
    ):
        images = _narrowed_by_text(images, field, keys.get(keyword, ""))
    if uids := {u.strip() for u in keys.get("StudyInstanceUID", "").replace("\\", ",").split(",") if u.strip()}:
        images = images.filter(dicom_study_instance_uid__in=uids)
    if wanted := keys.get("StudyDate", ""):  # already checked as YYYYMMDD or a range (qido.parse_query)
        low, dash, high = wanted.partition("-")
        if not dash:
            images = images.filter(study__study_date=_date(low))
        else:
            images = images.exclude(study__study_date=None)
            images = images.filter(study__study_date__gte=_date(low)) if low else images
            images = images.filter(study__study_date__lte=_date(high)) if high else images
    return _first_sightings(images.order_by("pk").values_list("pk", "dicom_study_instance_uid"))


def _first_sightings(rows: QuerySet) -> Iterator[str]:
    seen: set[str] = set()
    last_pk = 0
    while True:
        chunk = list(rows.filter(pk__gt=last_pk)[:STUDY_UID_CHUNK])
        for pk, uid in chunk:
            if uid not in seen:
                seen.add(uid)
                yield uid
            last_pk = pk
        if len(chunk) < STUDY_UID_CHUNK:
            return


def _narrowed_by_text(images: QuerySet, field: str, wanted: str) -> QuerySet:
    if wanted in ("", "*"):
        return images
    literal = wanted.split("*", 1)[0].split("?", 1)[0]
    if literal == wanted:
        return images.filter(**{field: wanted})
    return images.filter(**{f"{field}__startswith": literal}) if literal else images


def _date(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _require_study_view(user) -> None:
    if not role_can(user, Capability.STUDY_VIEW):
        raise PermissionDenied(f"Your role does not allow this ({Capability.STUDY_VIEW}).")


def dicomweb_instances(
    *, user, study_uid: str = "", series_uid: str = "", sop_uid: str = "", study_uids: list[str] | None = None
) -> list[Instance]:
    """The instances this user may see, optionally narrowed to a study (or several), series or instance."""
    _require_study_view(user)
    images = Image.objects.filter(source_format=Image.Format.DICOM).select_related("study__patient")
    results = DicomResultObject.objects.filter(status=DicomResultObject.Status.BUILT).select_related(
        "study__patient", "image"
    )
    if study_uids is not None:
        images = images.filter(dicom_study_instance_uid__in=study_uids)
        results = results.filter(study_instance_uid__in=study_uids)
    if study_uid:
        images = images.filter(dicom_study_instance_uid=study_uid)
        results = results.filter(study_instance_uid=study_uid)
    if series_uid:
        images = images.filter(series_instance_uid=series_uid)
        results = results.filter(series_instance_uid=series_uid)
    if sop_uid:
        images = images.filter(sop_instance_uid=sop_uid)
        results = results.filter(sop_instance_uid=sop_uid)
    found = [
        Instance(
            study=image.study,
            study_instance_uid=image.dicom_study_instance_uid,
            series_instance_uid=image.series_instance_uid,
            sop_instance_uid=image.sop_instance_uid,
            sop_class_uid=image.sop_class_uid,
            transfer_syntax_uid=image.transfer_syntax_uid,
            modality=image.modality,
            storage_name=image.original,
            image=image,
        )  # fmt: skip
        for image in images.order_by("pk")
        if image.dicom_study_instance_uid and image.sop_instance_uid
    ]
    if role_can(user, Capability.PREDICTION_VIEW):
        for result in results.order_by("pk"):
            if not ai_access(user=user, study=result.study).shown:
                continue
            found.append(
                Instance(
                    study=result.study,
                    study_instance_uid=result.study_instance_uid,
                    series_instance_uid=result.series_instance_uid,
                    sop_instance_uid=result.sop_instance_uid,
                    sop_class_uid=result.sop_class_uid,
                    transfer_syntax_uid="1.2.840.10008.1.2.1",
                    modality="SR" if result.kind != DicomResultObject.Kind.OVERLAY_SC else "OT",
                    storage_name=result.file,
                    result=result,
                )  # fmt: skip
            )
    return found
