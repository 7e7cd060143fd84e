"""Content-addressed files under MEDIA_ROOT: originals, previews, heatmaps.

Names are derived from content hashes, so writing the same content twice is a no-op and a retried task writes the
same name again instead of adding a file. Nothing here is reachable from a public URL; files are served only by
access-checked views (cases.studies.views.image_file and the API).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import settings


def _root() -> Path:
    return Path(settings.MEDIA_ROOT)


def original_name(sha256: str, source_format: str) -> str:
    suffix = {"dicom": ".dcm", "png": ".png", "jpeg": ".jpg"}[source_format]
    return f"originals/{sha256[:2]}/{sha256}{suffix}"


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def read(name: str) -> bytes:
    return path_of(name).read_bytes()


def delete(name: str) -> None:
    path_of(name).unlink(missing_ok=True)
