"""Content-addressed files under MEDIA_ROOT: originals, working images, previews, heatmaps, and the `incoming/`
folder where uploads are streamed while they are hashed (then moved into place, or removed).

Names are derived from content hashes, so writing the same content twice is a no-op and a retried task writes the
same name again instead of adding a file. Nothing here is reachable from a public URL; files are served only by
access-checked views (cases.studies.views.image_file and the API).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings


def _root() -> Path:
    return Path(settings.MEDIA_ROOT)


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


def path_of(name: str) -> Path:
    path = (_root() / name).resolve()
    if _root().resolve() not in path.parents:
        raise ValueError(f"Refusing a storage name outside MEDIA_ROOT: {name!r}")
    return path


def exists(name: str) -> bool:
    return path_of(name).exists()


def put(name: str, data: bytes, *, overwrite: bool = False) -> bool:
    """Write atomically (temp file + rename). Without overwrite, an existing name (same content) is left alone and
    False is returned."""
    path = path_of(name)
    if path.exists() and not overwrite:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def read(name: str) -> bytes:
    return path_of(name).read_bytes()


def delete(name: str) -> None:
    path_of(name).unlink(missing_ok=True)


INCOMING = "incoming"


def incoming_dir() -> Path:
    """Where uploads and received DICOM instances are written while they arrive: on the same file system as the
    store, so that accepting one is a rename, not a copy. What stays here (a worker killed mid-upload) is swept
    by the storage reconciliation (cases.studies.reconciliation)."""
    path = _root() / INCOMING
    path.mkdir(parents=True, exist_ok=True)
    return path


def put_file(name: str, source: Path) -> bool:
    """Move a file that is already on disk (under incoming_dir()) into the store under `name`, durably. An existing
    name (same content) is left alone, the source removed, and False returned."""
    path = path_of(name)
    source = Path(source)
    if path.exists():
        source.unlink(missing_ok=True)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(source, path)
    _fsync_dir(path.parent)
    return True


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: a crash right after it must not lose the file we acknowledged."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file on disk, read in blocks (models, backups, stored images)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
