"""Uploaded files reach ingestion without ever being held whole in memory.

HashingUploadHandler (settings.FILE_UPLOAD_HANDLERS) streams each file of a multipart request into the store's
incoming folder while computing its SHA-256; a file over MAMMO_MAX_FILE_BYTES stops being written as soon as it
passes the limit (the rest of it is read and discarded) and is reported as too large by ingestion. A request
larger than MAMMO_MAX_REQUEST_BYTES is refused from its headers before its body is read
(core.request_limits); one without a length that grows past it is stopped here.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from cases.studies.preparation import IncomingFile
from core import storage

# Set on the request when its body grew past MAMMO_MAX_REQUEST_BYTES without a Content-Length saying so.
REQUEST_TOO_LARGE = "mammo_request_too_large"


class HashedUploadedFile(UploadedFile):
    """An uploaded file on disk in the incoming folder, with its SHA-256. Closing it removes the file unless
    ingestion has already moved it into the store."""

    def __init__(self, *, path: Path | None, name: str, sha256: str, size: int, content_type, charset, too_large):
        handle = open(path, "rb") if path is not None else io.BytesIO(b"")  # noqa: SIM115  (closed by close())
        super().__init__(handle, name, content_type, size, charset)
        self.path = path
        self.sha256 = sha256
        self.too_large = too_large

    def temporary_file_path(self) -> str | None:
        return str(self.path) if self.path else None

    def close(self):
        try:
            return super().close()
        finally:
            if self.path is not None:
                self.path.unlink(missing_ok=True)

    def as_incoming(self) -> IncomingFile:
        return IncomingFile(
            name=self.name, path=self.path, sha256=self.sha256, size=self.size, too_large=self.too_large
        )


class HashingUploadHandler(FileUploadHandler):
    def __init__(self, request=None):
        super().__init__(request)
        self.total = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        fd, name = tempfile.mkstemp(dir=storage.incoming_dir(), prefix="upload-")
        self.handle = os.fdopen(fd, "wb")
        self.path: Path | None = Path(name)
        self.digest = hashlib.sha256()
        self.size = 0

    def receive_data_chunk(self, raw_data, start):
        self.total += len(raw_data)
        if self.total > settings.MAMMO_MAX_REQUEST_BYTES:
            if self.request is not None:
                setattr(self.request, REQUEST_TOO_LARGE, True)
            self._discard()
            raise StopUpload(connection_reset=True)
        self.size += len(raw_data)
        if self.path is not None:
            if self.size > settings.MAMMO_MAX_FILE_BYTES:
                self._discard()  # too large: keep counting, stop writing
            else:
                self.handle.write(raw_data)
                self.digest.update(raw_data)
        return None

    def file_complete(self, file_size):
        too_large = self.path is None
        if not too_large:
            self.handle.close()
        return HashedUploadedFile(
            path=self.path,
            name=self.file_name,
            sha256="" if too_large else self.digest.hexdigest(),
            size=self.size,
            content_type=self.content_type,
            charset=self.charset,
            too_large=too_large,
        )

    def upload_interrupted(self):
        if getattr(self, "path", None) is not None:
            self._discard()

    def _discard(self) -> None:
        if self.path is not None:
            self.handle.close()
            self.path.unlink(missing_ok=True)
            self.path = None


def incoming_files(uploaded) -> list[IncomingFile]:
    """The request's files (from HashingUploadHandler) for ingestion."""
    return [f.as_incoming() for f in uploaded]


def request_too_large(request) -> bool:
    return bool(getattr(request, REQUEST_TOO_LARGE, False))
