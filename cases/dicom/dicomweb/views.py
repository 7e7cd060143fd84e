"""DICOMweb (PS3.18) under /dicomweb/: STOW-RS, QIDO-RS and WADO-RS, with the platform's token authentication
(knox: `Authorization: Token <key>`) or a signed-in session, and its role checks.

- STOW-RS  POST /studies: multipart/related; type="application/dicom". The body is parsed as it arrives, each part
  written to a file (cases.dicom.dicomweb.multipart), and each file goes through the same ingestion as the listener
  and the upload page. Answer: the store response dataset (application/dicom+json) with
  ReferencedSOPSequence (stored, or already stored; WarningReason 0xB000 when a value was recorded differently)
  and FailedSOPSequence (FailureReason); 200 all stored, 202 some failed, 409 none stored.
- QIDO-RS  GET /studies, /studies/{study}/series, /studies/{study}/instances, .../series/{series}/instances.
- WADO-RS  GET /studies/{study}[/series/{series}[/instances/{instance}]] (multipart/related application/dicom) and
  their /metadata (application/dicom+json), for received images and for the AI result objects.
"""

from __future__ import annotations

import logging
from io import BytesIO

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, JsonResponse
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from accounts.roles import Capability
from audit.services import audit_record
from cases.dicom import statuses
from cases.dicom.conformance import ACCEPTED_SOP_CLASSES
from cases.dicom.dicomweb import qido
from cases.dicom.dicomweb.index import Instance, dicomweb_instances
from cases.dicom.dicomweb.multipart import (
    BodyTooLarge,
    MultipartError,
    Part,
    SpooledPart,
    media_type_params,
    related_parts_spool,
    write_related,
)
from cases.dicom.ingest import dicom_file_ingest
from cases.studies.preparation import IncomingFile
from core import storage

logger = logging.getLogger(__name__)
DICOM_JSON = "application/dicom+json"


class _DicomWebView(APIView):
    permission_classes = [HasCapability(Capability.STUDY_VIEW)]

    def perform_content_negotiation(self, request, force=False):
        # DICOMweb negotiates its own media types (application/dicom, application/dicom+json, multipart/related);
        # DRF's JSON renderer is kept only for its error answers.
        return JSONRenderer(), "application/json"

    def base_url(self, request) -> str:
        return request.build_absolute_uri("/dicomweb").rstrip("/")


class StudiesView(_DicomWebView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [HasCapability(Capability.STUDY_UPLOAD)()]
        return super().get_permissions()

    def get(self, request):
        return _search(request, level="study", base=self.base_url(request))

    def post(self, request, study: str = ""):
        return _store(request, base=self.base_url(request), target_study=study)


class SeriesSearchView(_DicomWebView):
    def get(self, request, study: str):
        return _search(request, level="series", base=self.base_url(request), study=study)


class InstanceSearchView(_DicomWebView):
    def get(self, request, study: str, series: str = ""):
        return _search(request, level="instance", base=self.base_url(request), study=study, series=series)


class RetrieveView(_DicomWebView):
    def get(self, request, study: str, series: str = "", instance: str = ""):
        found = dicomweb_instances(user=request.user, study_uid=study, series_uid=series, sop_uid=instance)
        if not found:
            return _error(404, "No such study, series or instance (or none you may see).")
        accepted = _accepted_transfer_syntax(request.headers.get("Accept", ""))
        if accepted is None:
            return _error(406, 'Only multipart/related; type="application/dicom" is offered here.')
        parts = []
        for item in found:
            data, syntax = _instance_bytes(item, accepted)
            parts.append(Part(content_type=f"application/dicom; transfer-syntax={syntax}", data=data))
        _audit_retrieval(request, found)
        body, content_type = write_related(parts, root_type="application/dicom")
        return HttpResponse(body, content_type=content_type)


class MetadataView(_DicomWebView):
    def get(self, request, study: str, series: str = "", instance: str = ""):
        found = dicomweb_instances(user=request.user, study_uid=study, series_uid=series, sop_uid=instance)
        if not found:
            return _error(404, "No such study, series or instance (or none you may see).")
        answers = [_without_bulk_data(item.header).to_json_dict() for item in found]
        return JsonResponse(answers, safe=False, content_type=DICOM_JSON)


def _search(request, *, level: str, base: str, study: str = "", series: str = "") -> HttpResponse:
    allowed = {"study": qido.STUDY_KEYS, "series": qido.SERIES_KEYS, "instance": qido.INSTANCE_KEYS}[level]
    try:
        keys, limit, offset, ignored = qido.parse_query(request.query_params, allowed=allowed)
        if level == "study":
            answers = qido.study_search(user=request.user, keys=keys, limit=limit, offset=offset, base_url=base)
        else:  # within one study (or all series or instances: the archive's, built whole)
            found = dicomweb_instances(user=request.user, study_uid=study, series_uid=series)
            build = {"series": qido.series, "instance": qido.instances_json}[level]
            answers = qido.page(build(found, keys, base_url=base), limit=limit, offset=offset)
    except qido.QueryError as exc:
        return _error(400, str(exc))
    # 204: no match (PS3.18 10.6.3.2), not an empty list.
    response = JsonResponse(answers, safe=False, content_type=DICOM_JSON) if answers else HttpResponse(status=204)
    if ignored:
        response["Warning"] = (
            f'299 mammo "The following query keys are not supported and were ignored: {", ".join(ignored)}"'
        )
    return response


def _store(request, *, base: str, target_study: str) -> HttpResponse:
    media, params = media_type_params(request.content_type or request.headers.get("Content-Type", ""))
    if media != "multipart/related" or params.get("type", "application/dicom") != "application/dicom":
        return _error(415, 'STOW-RS takes multipart/related; type="application/dicom".')
    # Each part goes to a file in the incoming folder as it arrives (the body is never held in memory), then each
    # file is ingested from disk; the files are removed whatever happens.
    try:
        parts = related_parts_spool(
            content_type=request.headers.get("Content-Type", ""),
            stream=_request_stream(request._request),
            folder=storage.incoming_dir(),
            max_bytes=settings.MAMMO_MAX_REQUEST_BYTES,
        )
    except BodyTooLarge:
        return _error(413, "The request is larger than the platform accepts.")
    except MultipartError as exc:
        return _error(400, f"The multipart body cannot be read: {exc}")
    if not parts:
        return _error(400, "The request holds no DICOM instance.")
    stored, failed = [], []
    try:
        for part in parts:
            item, ok = _store_part(part, request=request, base=base, target_study=target_study)
            (stored if ok else failed).append(item)
    finally:
        for part in parts:
            part.path.unlink(missing_ok=True)
    answer = Dataset()
    answer.RetrieveURL = f"{base}/studies/{target_study}" if target_study else ""
    if stored:
        answer.ReferencedSOPSequence = stored
    if failed:
        answer.FailedSOPSequence = failed
    audit_record(
        action="dicomweb.stored", actor=request.user,
        details={"stored": len(stored), "failed": len(failed),
                 "failures": [{"uid": f.get("ReferencedSOPInstanceUID", ""), "reason": f"0x{f.FailureReason:04X}"}
                              for f in failed]},
    )  # fmt: skip
    status = 200 if not failed else 202 if stored else 409
    return JsonResponse(answer.to_json_dict(), status=status, content_type=DICOM_JSON)


def _request_stream(request):
    """The body as a stream, also when it came chunked (Orthanc's STOW-RS client sends Transfer-Encoding: chunked).
    Django reads only Content-Length bytes; a server that decodes chunked bodies says so with wsgi.input_terminated
    (gunicorn does), and then the stream itself ends where the body ends."""
    environ = request.environ
    if not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
        return environ["wsgi.input"]
    return request  # HttpRequest.read(n): at most Content-Length bytes


def _store_part(part: SpooledPart, *, request, base: str, target_study: str) -> tuple[Dataset, bool]:
    item = Dataset()
    try:
        header = dcmread(part.path, stop_before_pixels=True)
        item.ReferencedSOPClassUID = str(header.SOPClassUID)
        item.ReferencedSOPInstanceUID = str(header.SOPInstanceUID)
        study_uid = str(header.get("StudyInstanceUID", ""))
    except Exception:
        item.FailureReason = statuses.CANNOT_UNDERSTAND
        return item, False
    if part.content_type != "application/dicom":
        item.FailureReason = statuses.CANNOT_UNDERSTAND
        return item, False
    if item.ReferencedSOPClassUID not in ACCEPTED_SOP_CLASSES:
        item.FailureReason = statuses.SOP_CLASS_NOT_SUPPORTED
        return item, False
    if target_study and study_uid != target_study:  # PS3.18 10.5.1: the instance must belong to the target study
        item.FailureReason = statuses.DATASET_MISMATCH
        return item, False
    try:
        incoming = IncomingFile(
            name="stow.dcm", path=part.path, sha256=part.sha256, size=part.size, borrowed=True,
            too_large=part.size > settings.MAMMO_MAX_FILE_BYTES,
        )  # fmt: skip
        uid = item.ReferencedSOPInstanceUID
        outcome = dicom_file_ingest(incoming=incoming, sop_instance_uid=uid, user=request.user)
    except Exception:
        logger.exception("STOW-RS ingestion of %s failed", item.ReferencedSOPInstanceUID)
        item.FailureReason = statuses.PROCESSING_FAILURE
        return item, False
    if outcome.status == "rejected":
        item.FailureReason = statuses.status_for_rejection(outcome.code, outcome.reason).failure_reason
        return item, False
    item.RetrieveURL = f"{base}/studies/{study_uid}/series/{header.SeriesInstanceUID}/instances/{header.SOPInstanceUID}"
    if outcome.coerced:
        item.WarningReason = statuses.WARNING_COERCED
    return item, True


def _accepted_transfer_syntax(accept: str) -> str | None:
    """'*' (as stored), a transfer syntax UID, or None when no acceptable media type is offered."""
    if not accept.strip() or accept.strip() == "*/*":
        return str(ExplicitVRLittleEndian)
    for item in accept.split(","):
        media, params = media_type_params(item.strip())
        if media == "multipart/related" and params.get("type", "application/dicom") == "application/dicom":
            return params.get("transfer-syntax", str(ExplicitVRLittleEndian))
        if media in ("*/*", "multipart/*"):
            return str(ExplicitVRLittleEndian)
    return None


def _instance_bytes(item: Instance, syntax: str) -> tuple[bytes, str]:
    """The stored file as it is ('*' or its own syntax), else decompressed to Explicit VR Little Endian (the
    default of application/dicom in PS3.18)."""
    data = storage.read(item.storage_name)
    if syntax in ("*", item.transfer_syntax_uid) or not item.transfer_syntax_uid:
        return data, item.transfer_syntax_uid or str(ExplicitVRLittleEndian)
    ds = dcmread(BytesIO(data))
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    out = BytesIO()
    ds.save_as(out, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return out.getvalue(), str(ExplicitVRLittleEndian)


def _without_bulk_data(header: Dataset) -> Dataset:
    ds = Dataset()
    for element in header:
        if element.VR not in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            ds.add(element)
    return ds


def _audit_retrieval(request, found: list[Instance]) -> None:
    for study_id in sorted({item.study.pk for item in found}):
        uids = [item.sop_instance_uid for item in found if item.study.pk == study_id]
        audit_record(
            action="image.downloaded", actor=request.user, object_type="study", object_id=study_id, study_id=study_id,
            details={"via": "WADO-RS", "sop_instance_uids": uids},
        )  # fmt: skip


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def views():
    """The views as URL patterns use them: token or session authentication, never the login page redirect."""
    return {
        name: login_not_required(view.as_view())
        for name, view in {
            "studies": StudiesView, "series": SeriesSearchView, "instances": InstanceSearchView,
            "retrieve": RetrieveView, "metadata": MetadataView,
        }.items()
    }  # fmt: skip
