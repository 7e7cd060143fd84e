"""Serving an image's files (original, preview, viewer pixels, heatmap, overlay) to pages and the API alike: the
access check, the audit row, a private response. There is no public media URL."""

from __future__ import annotations

import gzip

from django.http import FileResponse, Http404, HttpResponse

from audit.services import audit_record, audit_study_opened
from cases.studies import selectors
from cases.studies.pixels import image_viewer_pixels
from core import storage
from core.errors import ApplicationError
from imaging.viewer_pixels import CONTENT_TYPE as VIEWER_PIXELS_TYPE


def image_file_response(request, *, pk: int, kind: str) -> FileResponse:
    """Shared by the page and the API: check access, then stream the file, never cached by shared caches. Every
    opening is in the audit trail: downloads of the original each time, viewing once per person, study and session
    window (audit.services.audit_study_opened)."""
    user = request.user
    image = selectors.image_get(user=user, pk=pk)
    name = selectors.image_file_name(user=user, image=image, kind=kind)
    if kind == "pixels":
        try:
            image_viewer_pixels(image=image)
        except ApplicationError as exc:
            return HttpResponse(exc.message, status=422, content_type="text/plain; charset=utf-8")
    try:
        handle = storage.open_file(name)  # FileResponse closes it
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    if kind == "original":
        audit_record(action="image.downloaded", obj=image, study_id=image.study_id, details={"kind": kind})
    else:
        session = getattr(request, "session", None)
        audit_study_opened(
            user=user,
            study_id=image.study_id,
            image_id=image.pk,
            kind=kind,
            session_key=(session.session_key or "") if session is not None else "",
        )
    if kind == "pixels":
        response = _viewer_pixels_response(request, handle)
    else:
        as_attachment = kind == "original"
        filename = image.original_filename if as_attachment else f"image-{image.pk}-{kind}.png"
        response = FileResponse(handle, as_attachment=as_attachment, filename=filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _viewer_pixels_response(request, handle) -> FileResponse:
    """The stored file is gzip: sent as it is with Content-Encoding gzip, so the browser inflates it natively
    (every browser accepts gzip); inflated here only for a client that does not."""
    accepts_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    response = FileResponse(handle if accepts_gzip else gzip.GzipFile(fileobj=handle), content_type=VIEWER_PIXELS_TYPE)
    if accepts_gzip:
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    return response
