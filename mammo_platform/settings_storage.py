"""The media store's settings, from the environment (read by settings.py; the store itself: core.storage).

MEDIA_STORAGE=local   (default) files under MEDIA_ROOT on this host: one machine, or a shared volume.
MEDIA_STORAGE=s3      an S3-compatible object store that every web, listener and worker host reaches:
    S3_BUCKET             the bucket (required; it must exist: the platform does not create buckets)
    S3_ENDPOINT_URL       the store's URL (MinIO, Ceph RGW, a hospital appliance...); unset: Amazon S3
    S3_REGION             the region (unset: boto3's default)
    S3_PREFIX             a folder inside the bucket (default: none)
    S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY
                          the credentials; unset: boto3's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
                          a credentials file, an instance role). There is no default for either.
    S3_ADDRESSING_STYLE   "path" (default with an endpoint URL: what most S3-compatible servers expect) or
                          "virtual"
    S3_SERVER_SIDE_ENCRYPTION  e.g. AES256 or aws:kms, asked of the store for every object (default: none)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured


def media_storage(env: environ.Env, *, media_root: Path) -> tuple[str, dict[str, Any]]:
    """(MEDIA_STORAGE, the STORAGES["default"] entry)."""
    kind = env("MEDIA_STORAGE", default="local").strip().lower()
    if kind == "local":
        return kind, {"BACKEND": "core.storage.LocalMediaStorage", "OPTIONS": {"location": media_root}}
    if kind != "s3":
        raise ImproperlyConfigured(f"MEDIA_STORAGE must be local or s3, not {kind!r}")
    bucket = env("S3_BUCKET", default="")
    if not bucket:
        raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL unless it is Amazon S3).")
    access_key, secret_key = env("S3_ACCESS_KEY_ID", default=None), env("S3_SECRET_ACCESS_KEY", default=None)
    if bool(access_key) != bool(secret_key):
        raise ImproperlyConfigured("Set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither.")
    endpoint = env("S3_ENDPOINT_URL", default="") or None
    from botocore.config import Config

    options: dict[str, Any] = {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "region_name": env("S3_REGION", default="") or None,
        "access_key": access_key or None,
        "secret_key": secret_key or None,
        "location": env("S3_PREFIX", default="").strip("/"),
        "addressing_style": env("S3_ADDRESSING_STYLE", default="path" if endpoint else "") or None,
        "file_overwrite": True,  # names are content hashes: the same name is the same content
        "default_acl": None,  # private: files are served only through access-checked views
        "querystring_auth": False,  # no signed URLs are handed out
        # A file opened for reading is fetched into a temporary file that spills to disk past 2 MB, not into memory.
        "max_memory_size": 2 * 1024 * 1024,
        # Fail fast when the store is unreachable (callers retry: the analysis, the DICOM sender).
        "client_config": Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 4, "mode": "standard"}),
    }
    if encryption := env("S3_SERVER_SIDE_ENCRYPTION", default=""):
        options["object_parameters"] = {"ServerSideEncryption": encryption}
    return kind, {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
