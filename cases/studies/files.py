"""Serving an image's files (original, preview, heatmap, overlay) to pages and the API alike: the access check,
the audit row, a private response. There is no public media URL."""

from __future__ import annotations

from django.http import FileResponse, Http404

from audit.services import audit_record, audit_study_opened
from cases.studies import selectors
from mammo_platform import storage


def image_file_response(request, *, pk: int, kind: str) -> FileResponse:
    """Shared by the page and the API: check access, then stream the file, never cached by shared caches. Every
    opening is in the audit trail: downloads of the original each time, viewing once per person, study and session
    window (audit.services.audit_study_opened)."""
    user = request.user
    image = selectors.image_get(user=user, pk=pk)
    name = selectors.image_file_name(user=user, image=image, kind=kind)
    try:
        handle = open(storage.path_of(name), "rb")  # noqa: SIM115  (FileResponse closes it)
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
    as_attachment = kind == "original"
    filename = image.original_filename if as_attachment else f"image-{image.pk}-{kind}.png"
    response = FileResponse(handle, as_attachment=as_attachment, filename=filename)
    response["Cache-Control"] = "private, no-store"
    return response
