"""The media store, through Django's Storage API (STORAGES["default"]): originals, working images, viewer pixels,
previews, heatmaps and the DICOM result objects, all named by content hash.

One setting chooses where they live (MEDIA_STORAGE, mammo_platform/settings.py):
- "local" (the embedded default): LocalMediaStorage, files under MEDIA_ROOT, each written atomically;
- "s3": django-storages' S3Storage on an S3-compatible object store (S3_ENDPOINT_URL, S3_BUCKET), which every web,
  listener and worker host reaches: no host needs another's disk.

Everything that reads or writes a stored file goes through the functions below (never a path under MEDIA_ROOT):
read, open_file (a seekable binary file, streamed to a temporary file by the S3 backend), put, put_file, delete,
listing. A library that needs a real file is given one by local_path(). Writes are atomic in both backends (here:
temporary file, fsync, rename; S3: a PUT or a completed multipart upload is atomic), so a reader never sees half a
file; that code lives in write_atomically(), which the DICOM listener's spool uses too.

Names are derived from content hashes, so writing the same content twice is a no-op and a retried task writes the
same name again instead of adding a file. Nothing here is reachable from a public URL; files are served only by
access-checked views (cases.studies.files and the API).

Uploads and received DICOM instances are first written to incoming_dir(), a local folder (MEDIA_ROOT/incoming, on
the same file system as the local store so that accepting one is a rename; in S3 mode only this folder is on the
host's disk).

A backend that cannot be reached raises StorageUnavailable, an OSError: callers treat it as transient (the analysis
is retried, the DICOM sender is told to try again), as they treat a local disk error.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

INCOMING = "incoming"
CHUNK = 1 << 20


class StorageUnavailable(OSError):
    """The media store could not be reached, or refused a request (not: a file that is missing)."""


# ---- names ----------------------------------------------------------------------------------------------------------


def original_name(sha256: str, source_format: str) -> str:
    suffix = {"dicom": ".dcm", "png": ".png", "jpeg": ".jpg"}[source_format]
    return f"originals/{sha256[:2]}/{sha256}{suffix}"


def working_name(sha256: str) -> str:
    """The image at the model's working resolution, kept by ingestion so the worker never decodes the original."""
    return f"working/{sha256[:2]}/{sha256}.npy"


def viewer_pixels_name(sha256: str) -> str:
    """The full-resolution pixels the reading viewer draws (imaging.viewer_pixels), made on first view."""
    return f"viewer/{sha256[:2]}/{sha256}.mvp.gz"


def preview_name(sha256: str) -> str:
    return f"previews/{sha256[:2]}/{sha256}.png"


def heatmap_names(image_sha256: str, model_sha256: str) -> tuple[str, str]:
    stem = f"heatmaps/{image_sha256[:2]}/{image_sha256}-{model_sha256[:16]}"
    return f"{stem}-heatmap.png", f"{stem}-overlay.png"


# ---- the local backend ----------------------------------------------------------------------------------------------


class LocalMediaStorage(FileSystemStorage):
    """Files under MEDIA_ROOT (the embedded default). Unlike FileSystemStorage, a file is written to a temporary
    name and renamed into place after an fsync, so that a crash or a concurrent reader never sees half of it, and
    an existing name is replaced rather than renamed aside (names are content hashes)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(**kwargs)

    def _save(self, name: str, content) -> str:
        write_atomically(Path(self.path(name)), content.chunks(CHUNK))
        return name


# ---- the store ------------------------------------------------------------------------------------------------------


def _backend() -> Storage:
    return storages["default"]


def is_local() -> bool:
    """True when the store is a folder on this host (MEDIA_STORAGE=local)."""
    return isinstance(_backend(), FileSystemStorage)


@contextlib.contextmanager
def _reaching_the_store() -> Iterator[None]:
    """An object store's errors as OSError (StorageUnavailable), a missing object as FileNotFoundError."""
    try:
        yield
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404 or exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            raise FileNotFoundError(str(exc)) from exc
        raise StorageUnavailable(f"The media store refused the request: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"The media store cannot be reached: {exc}") from exc


def exists(name: str) -> bool:
    with _reaching_the_store():
        return _backend().exists(name)


def open_file(name: str) -> File:
    """The stored file, opened for binary reading (seekable). FileNotFoundError when it is not there. The caller
    closes it (a FileResponse does)."""
    with _reaching_the_store():
        handle = _backend().open(name, "rb")
        if not is_local():
            handle.file  # noqa: B018  (fetches the object now, so that a failure is raised here, not mid-response)
        return handle


def read(name: str) -> bytes:
    with open_file(name) as handle, _reaching_the_store():
        return handle.read()


def put(name: str, data: bytes, *, overwrite: bool = False) -> bool:
    """Store `data` under `name`, atomically. Without overwrite, an existing name (same content) is left alone and
    False is returned."""
    from django.core.files.base import ContentFile

    with _reaching_the_store():
        if not overwrite and _backend().exists(name):
            return False
        _backend().save(name, ContentFile(data, name=name))
    return True


def put_stream(name: str, stream: BinaryIO, *, overwrite: bool = False) -> bool:
    """As put(), from a readable binary stream (read in blocks, never whole)."""
    with _reaching_the_store():
        if not overwrite and _backend().exists(name):
            return False
        _backend().save(name, File(stream, name=name))
    return True


def put_file(name: str, source: Path, *, move: bool = True) -> bool:
    """Store a file that is already on this host's disk under `name`, durably, without reading it into memory.

    move=True (a file of ours in incoming_dir()): the local store renames it into place (no copy); the object store
    uploads it, then it is removed. move=False (a file that belongs to someone else: the DICOM listener's spool,
    which removes it once ingestion has decided): the local store hard-links it into place (no copy; a copy only
    when the spool is on another file system), the object store uploads it; the source is left alone.
    An existing name (same content) is left alone and False returned (the source still removed when move=True)."""
    source = Path(source)
    backend = _backend()
    with _reaching_the_store():
        if backend.exists(name):
            if move:
                source.unlink(missing_ok=True)
            return False
        if isinstance(backend, FileSystemStorage):
            write_atomically(Path(backend.path(name)), source, move=move)
            return True
        with source.open("rb") as handle:
            backend.save(name, File(handle, name=name))
    if move:
        source.unlink(missing_ok=True)
    return True


def delete(name: str) -> None:
    """Remove a stored file (no error when it is not there)."""
    with _reaching_the_store():
        _backend().delete(name)


def sha256_of(name: str) -> str:
    """SHA-256 of a stored file, read in blocks."""
    digest = hashlib.sha256()
    with open_file(name) as handle, _reaching_the_store():
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def local_path(name: str) -> Iterator[Path]:
    """A path on this host's disk holding the stored file, for a library that takes only a path (or for a caller
    that must not hold a large file in memory). The local store gives its own file (read it, never write it); the
    object store's file is copied to a temporary file in incoming_dir(), removed afterwards."""
    backend = _backend()
    if isinstance(backend, FileSystemStorage):
        path = Path(backend.path(name))
        if not path.exists():
            raise FileNotFoundError(f"{name} is not in the media store")
        yield path
        return
    fd, tmp = tempfile.mkstemp(dir=incoming_dir(), prefix="copy-")
    try:
        with os.fdopen(fd, "wb") as out, open_file(name) as handle, _reaching_the_store():
            shutil.copyfileobj(handle, out, CHUNK)
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int
    modified: float  # seconds since the epoch


def listing() -> Iterator[StoredFile]:
    """Every file in the store (the incoming folder excluded), in no particular order."""
    backend = _backend()
    if isinstance(backend, FileSystemStorage):
        root = Path(backend.location)
        for folder, dirs, files in os.walk(root):
            if Path(folder) == root and INCOMING in dirs:
                dirs.remove(INCOMING)
            for file_name in files:
                path = Path(folder) / file_name
                with contextlib.suppress(FileNotFoundError):  # moved into place or removed meanwhile
                    stat = path.stat()
                    yield StoredFile(path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime)
        return
    prefix = backend.location.strip("/")
    with _reaching_the_store():
        for obj in backend.bucket.objects.filter(Prefix=f"{prefix}/" if prefix else ""):
            name = obj.key[len(prefix) + 1 :] if prefix else obj.key
            yield StoredFile(name, obj.size, obj.last_modified.timestamp())


def describe() -> str:
    """Where the store is, for logs and commands ('MEDIA_ROOT /data/media', 's3://bucket/prefix at endpoint')."""
    backend = _backend()
    if isinstance(backend, FileSystemStorage):
        return f"folder {backend.location}"
    where = f"s3://{backend.bucket_name}/{backend.location}".rstrip("/")
    return f"{where} at {backend.endpoint_url}" if backend.endpoint_url else where


# ---- this host's disk -----------------------------------------------------------------------------------------------


def incoming_dir() -> Path:
    """Where uploads and received DICOM instances are written while they arrive (this host's disk; in the local
    store's folder, so that accepting one is a rename, not a copy). What stays here (a worker killed mid-upload) is
    swept by the storage reconciliation (cases.studies.reconciliation) on the host where it runs."""
    path = Path(settings.MEDIA_ROOT) / INCOMING
    path.mkdir(parents=True, exist_ok=True)
    return path


def incoming_leftovers() -> Iterator[tuple[str, Path]]:
    """('incoming/<file>', path) of each file in this host's incoming folder."""
    folder = Path(settings.MEDIA_ROOT) / INCOMING
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file():
                yield f"{INCOMING}/{path.name}", path


def write_atomically(target: Path, source: bytes | Iterable[bytes] | Path, *, move: bool = False) -> None:
    """The one atomic, durable write to local disk: the content goes to a temporary file beside `target`, is
    fsync'd and renamed over it, and the folder is fsync'd (a crash right after must not lose what was
    acknowledged). `source`: bytes, an iterable of byte blocks, or a file on this host, which is renamed
    (move=True) or hard-linked (move=False) instead of copied when it is on the same file system."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, Path) and _placed_without_copy(source, target, move=move):
        return
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(source, Path):
                with source.open("rb") as original:
                    shutil.copyfileobj(original, handle, CHUNK)
            elif isinstance(source, bytes | bytearray | memoryview):
                handle.write(source)
            else:
                for block in source:
                    handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if isinstance(source, Path) and move:
        source.unlink(missing_ok=True)
    fsync_dir(target.parent)


def _placed_without_copy(source: Path, target: Path, *, move: bool) -> bool:
    """Rename or hard-link `source` into place; False when the two are on different file systems (or the file
    system has no hard links), and the caller copies."""
    with open(source, "rb") as handle:
        os.fsync(handle.fileno())
    try:
        if move:
            os.replace(source, target)
        else:
            tmp = target.parent / f".tmp-{os.getpid()}-{os.urandom(6).hex()}"
            os.link(source, tmp)
            os.replace(tmp, target)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            return False
        raise
    fsync_dir(target.parent)
    return True


def fsync_dir(folder: Path) -> None:
    """Make a rename durable: sync the directory entry too."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file on disk, read in blocks (models, backups, incoming files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
