"""QIDO-RS (PS3.18 10.6): study, series and instance searches answered in the DICOM JSON model (Annex F).

Matching follows PS3.4 C.2.2.2 for the keys supported here: single value (exact, case-sensitive), a UID list
(comma separated), wildcards * and ? in PatientID/PatientName/AccessionNumber/StudyDescription, and date ranges
(YYYYMMDD-YYYYMMDD, open at either end). Other keys are ignored with a Warning header, as PS3.18 allows.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from cases.dicom.dicomweb.index import Instance, dicomweb_instances, dicomweb_study_uids

# Studies built and matched at a time by the study search.
STUDY_SEARCH_BATCH = 200


class QueryError(ValueError):
    """A query parameter that cannot be understood: answered with 400 and this message."""


_CONTROL = {"limit", "offset", "fuzzymatching", "includefield"}
STUDY_KEYS = {"StudyInstanceUID", "PatientID", "PatientName", "AccessionNumber", "StudyDate", "StudyDescription",
              "ModalitiesInStudy"}  # fmt: skip
SERIES_KEYS = STUDY_KEYS | {"SeriesInstanceUID", "Modality", "SeriesNumber"}
INSTANCE_KEYS = SERIES_KEYS | {"SOPInstanceUID", "SOPClassUID", "InstanceNumber"}


def parse_query(params, *, allowed: set[str]) -> tuple[dict[str, str], int, int, list[str]]:
    """(matching keys, limit, offset, ignored keys) from the request's query parameters."""
    keys: dict[str, str] = {}
    ignored: list[str] = []
    for raw, value in params.items():
        if raw.lower() in _CONTROL:
            continue
        keyword = _keyword(raw)
        if keyword in allowed:
            if _MATCHERS.get(keyword) is _date_range:
                _date_range_check(keyword, value)
            keys[keyword] = value
        else:
            ignored.append(raw)
    try:
        limit = int(params.get("limit", 1000))
        offset = int(params.get("offset", 0))
    except ValueError as exc:
        raise QueryError("limit and offset must be whole numbers") from exc
    if limit < 1 or offset < 0:
        raise QueryError("limit must be at least 1 and offset at least 0")
    return keys, min(limit, 1000), offset, ignored


def _keyword(raw: str) -> str:
    if len(raw) == 8 and all(c in "0123456789abcdefABCDEF" for c in raw):
        return keyword_for_tag(Tag(int(raw, 16))) or raw
    return raw


def study_search(*, user, keys: dict[str, str], limit: int, offset: int, base_url: str) -> list[dict]:
    """One page of the study search for this user. Candidate studies come from SQL in answer order, already narrowed
    by the keys SQL can check (index.dicomweb_study_uids); they are built and matched as many at a time as the page
    still needs (at most STUDY_SEARCH_BATCH) until it is full, so a page costs about its own size, not the archive's."""
    answers: list[dict] = []
    skipped = 0
    candidates = iter(dicomweb_study_uids(user=user, keys=keys))
    if not any(keys.values()):
        # No matching key: every candidate is an answer, so the offset skips candidates without building them.
        skipped = sum(1 for _ in itertools.islice(candidates, offset))
    while len(answers) < limit:
        wanted = min(STUDY_SEARCH_BATCH, offset + limit - skipped - len(answers))
        batch = [uid for _, uid in zip(range(wanted), candidates, strict=False)]
        if not batch:
            break
        for answer in studies(dicomweb_instances(user=user, study_uids=batch), keys, base_url=base_url):
            if skipped < offset:
                skipped += 1
            elif len(answers) < limit:
                answers.append(answer)
    return answers


def studies(instances: list[Instance], keys: dict[str, str], *, base_url: str) -> list[dict]:
    by_study: dict[str, list[Instance]] = defaultdict(list)
    for item in instances:
        by_study[item.study_instance_uid].append(item)
    answers = []
    for uid, members in by_study.items():
        ds = _study_dataset(uid, members)
        ds.RetrieveURL = f"{base_url}/studies/{uid}"
        if _matches(ds, keys):
            answers.append(ds)
    return [ds.to_json_dict() for ds in answers]


def series(instances: list[Instance], keys: dict[str, str], *, base_url: str) -> list[dict]:
    by_series: dict[tuple[str, str], list[Instance]] = defaultdict(list)
    for item in instances:
        by_series[(item.study_instance_uid, item.series_instance_uid)].append(item)
    answers = []
    for (study_uid, series_uid), members in by_series.items():
        ds = _series_dataset(members)
        ds.RetrieveURL = f"{base_url}/studies/{study_uid}/series/{series_uid}"
        if _matches(ds, keys):
            answers.append(ds)
    return [ds.to_json_dict() for ds in answers]


def instances_json(instances: list[Instance], keys: dict[str, str], *, base_url: str) -> list[dict]:
    answers = []
    for item in instances:
        ds = _series_dataset([item])
        del ds.NumberOfSeriesRelatedInstances
        ds.SOPClassUID = item.sop_class_uid
        ds.SOPInstanceUID = item.sop_instance_uid
        ds.InstanceNumber = item.instance_number or None
        if item.image is not None:
            ds.Rows, ds.Columns = item.image.rows, item.image.columns
        ds.RetrieveURL = (
            f"{base_url}/studies/{item.study_instance_uid}/series/{item.series_instance_uid}"
            f"/instances/{item.sop_instance_uid}"
        )
        if _matches(ds, keys):
            answers.append(ds)
    return [ds.to_json_dict() for ds in answers]


def page(items: list, *, limit: int, offset: int) -> list:
    return items[offset : offset + limit]


def _study_dataset(uid: str, members: list[Instance]) -> Dataset:
    study = members[0].study
    ds = Dataset()
    ds.StudyInstanceUID = uid
    ds.StudyDate = study.study_date.strftime("%Y%m%d") if study.study_date else ""
    ds.StudyTime = ""
    ds.AccessionNumber = study.accession_number
    ds.ModalitiesInStudy = sorted({m.modality for m in members if m.modality})
    ds.ReferringPhysicianName = ""
    ds.PatientName = study.patient.name
    ds.PatientID = study.patient.patient_id
    ds.PatientBirthDate = study.patient.birth_date.strftime("%Y%m%d") if study.patient.birth_date else ""
    ds.PatientSex = study.patient.sex
    ds.StudyID = str(study.pk)
    ds.StudyDescription = study.description
    ds.NumberOfStudyRelatedSeries = len({m.series_instance_uid for m in members})
    ds.NumberOfStudyRelatedInstances = len(members)
    return ds


def _series_dataset(members: list[Instance]) -> Dataset:
    first = members[0]
    ds = _study_dataset(first.study_instance_uid, members)
    for keyword in ("ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"):
        delattr(ds, keyword)
    ds.Modality = first.modality
    ds.SeriesInstanceUID = first.series_instance_uid
    ds.SeriesNumber = first.series_number or None
    ds.SeriesDescription = str(first.header.get("SeriesDescription", "")) if first.result is not None else ""
    ds.NumberOfSeriesRelatedInstances = len(members)
    return ds


def _matches(ds: Dataset, keys: dict[str, str]) -> bool:
    return all(_MATCHERS.get(keyword, _single)(ds, keyword, value) for keyword, value in keys.items())


def _values(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None:
        return []
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return [str(v) for v in value]
    return [str(value)]


def _single(ds: Dataset, keyword: str, wanted: str) -> bool:
    if wanted in ("", "*"):
        return True
    return wanted in _values(ds, keyword)


def _uid_list(ds: Dataset, keyword: str, wanted: str) -> bool:
    accepted = {uid.strip() for uid in wanted.replace("\\", ",").split(",") if uid.strip()}
    return not accepted or bool(accepted & set(_values(ds, keyword)))


def _wildcard(ds: Dataset, keyword: str, wanted: str) -> bool:
    if not wanted:
        return True
    return any(fnmatch.fnmatchcase(value, wanted) for value in _values(ds, keyword))


def _date_range(ds: Dataset, keyword: str, wanted: str) -> bool:
    if not wanted:
        return True
    value = "".join(_values(ds, keyword))
    low, dash, high = wanted.partition("-")
    if not dash:
        return value == low
    return bool(value) and (not low or value >= low) and (not high or value <= high)


def _date_range_check(keyword: str, wanted: str) -> None:
    low, _, high = wanted.partition("-")
    for bound in (low, high):
        if bound:
            try:
                if len(bound) != 8:
                    raise ValueError(bound)
                date(int(bound[:4]), int(bound[4:6]), int(bound[6:8]))
            except ValueError as exc:
                raise QueryError(f"{keyword} {wanted!r} is not a date or date range (YYYYMMDD-YYYYMMDD)") from exc


_MATCHERS: dict[str, Callable[[Dataset, str, str], bool]] = {
    "StudyInstanceUID": _uid_list,
    "SeriesInstanceUID": _uid_list,
    "SOPInstanceUID": _uid_list,
    "SOPClassUID": _uid_list,
    "PatientID": _wildcard,
    "PatientName": _wildcard,
    "AccessionNumber": _wildcard,
    "StudyDescription": _wildcard,
    "StudyDate": _date_range,
}
