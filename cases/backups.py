"""Backups a hospital can restore: the database and the media store, consistent with each other, and a restore
onto a fresh server that is checked before it is trusted.

Consistency without stopping the platform: the database is dumped first (one snapshot: pg_dump runs in a single
transaction; SQLite's online backup API copies one consistent state), then the media store is archived. Files are
content-addressed and written before the rows that refer to them are committed, and no row that refers to a file is
ever deleted, so every file the dump refers to is already in the store when it is archived; files added after the
dump are extra (the storage reconciliation removes them after a restore). The incoming folder (uploads in
progress) is left out. The media store is read and written through core.storage, so the same backup and
restore work with a folder and with an object store (and move a site from one to the other).

A restore goes onto an empty database and an empty media store, then checks: the audit trail's hash chain
(verify_audit) and every image's files (present, and the original and working image matching their SHA-256).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from cases.models import Image, Letter
from core import storage
from core.errors import ApplicationError
from core.storage import file_sha256
from inference.models import Prediction

MANIFEST = "manifest.json"
DATABASE_DUMP = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}
MEDIA_ARCHIVE = "media.tar"


@dataclass(frozen=True)
class StorageCheck:
    images: int
    problems: list[str]


def backup_create(*, out_dir: Path) -> dict:
    """Write a backup into `out_dir` (created; must be empty): database, media archive, manifest. Returns the
    manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise ApplicationError(f"{out_dir} is not empty: a backup goes into a folder of its own.")
    vendor = connection.vendor
    if vendor not in DATABASE_DUMP:
        raise ApplicationError(f"Backups of a {vendor} database are not supported.")
    last_event = AuditEvent.objects.order_by("-id").values("id", "hash").first()
    database = out_dir / DATABASE_DUMP[vendor]
    # 1. The database: one consistent snapshot.
    if vendor == "postgresql":
        subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", "--file", str(database), _pg_dsn()],
            check=True,
            env=_pg_env(),
        )
    else:
        with sqlite3.connect(settings.DATABASES["default"]["NAME"]) as source, sqlite3.connect(database) as target:
            source.backup(target)
    # 2. Then the media store (everything the dump refers to is already there).
    media = out_dir / MEDIA_ARCHIVE
    with tarfile.open(media, "w") as archive:
        for stored in sorted(storage.listing(), key=lambda f: f.name):
            _archive_add(archive, stored)
    manifest = {
        "created_at": timezone.now().isoformat(),
        "database_vendor": vendor,
        "files": {name.name: file_sha256(name) for name in (database, media)},
        "images": Image.objects.count(),
        "predictions": Prediction.all_objects.count(),
        "audit_events": AuditEvent.objects.count(),
        "audit_head": last_event,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def backup_restore(*, from_dir: Path) -> dict:
    """Restore a backup onto this server's (empty) database and (empty) media folder. Checks the archives against
    the manifest first. Returns the manifest."""
    from_dir = Path(from_dir)
    manifest = json.loads((from_dir / MANIFEST).read_text())
    for name, digest in manifest["files"].items():
        if file_sha256(from_dir / name) != digest:
            raise ApplicationError(f"{name} does not match the backup's manifest: the backup is damaged.")
    vendor = connection.vendor
    if vendor != manifest["database_vendor"]:
        raise ApplicationError(f"The backup is of a {manifest['database_vendor']} database; this server uses {vendor}.")
    if next(storage.listing(), None) is not None:
        raise ApplicationError(f"The media store ({storage.describe()}) is not empty: restore onto a fresh server.")
    if connection.introspection.table_names():
        raise ApplicationError("The database is not empty: restore onto a fresh, empty database.")
    connection.close()
    database = from_dir / DATABASE_DUMP[vendor]
    if vendor == "postgresql":
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", _pg_dsn(), str(database)],
            check=True,
            env=_pg_env(),
        )
    else:
        target = Path(settings.DATABASES["default"]["NAME"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(database, target)
    with tarfile.open(from_dir / MEDIA_ARCHIVE) as archive:
        for member in archive:
            member = tarfile.data_filter(member, "/restore")  # refuses links, absolute names and '..'
            if member.isfile():
                with archive.extractfile(member) as content:
                    storage.put_stream(member.name, content, overwrite=True)
    return manifest


def _archive_add(archive: tarfile.TarFile, stored: storage.StoredFile) -> None:
    """One stored file into the archive, streamed from the store (either backend), never whole in memory."""
    info = tarfile.TarInfo(stored.name)
    info.mtime = int(stored.modified)
    info.mode = 0o600
    try:
        with storage.open_file(stored.name) as handle:
            info.size = handle.size
            archive.addfile(info, handle)
    except FileNotFoundError:
        pass  # removed since it was listed (the reconciliation): the dump does not refer to it


def storage_check() -> StorageCheck:
    """Every image's files are present, and its original and working image match their SHA-256: after a restore,
    every image opens."""
    problems = []
    images = 0
    for image in Image.objects.only("pk", "original", "sha256", "preview", "working_image", "working_sha256"):
        images += 1
        checks = [(image.original, image.sha256), (image.preview, None)]
        if image.working_image:
            checks.append((image.working_image, image.working_sha256))
        for name, digest in checks:
            if not storage.exists(name):
                problems.append(f"image {image.pk}: {name} is missing")
            elif digest and storage.sha256_of(name) != digest:
                problems.append(f"image {image.pk}: {name} does not match its SHA-256")
    for heatmap, overlay in Prediction.all_objects.values_list("heatmap", "overlay"):
        for name in (heatmap, overlay):
            if name and not storage.exists(name):  # empty: a model that gives no heatmap
                problems.append(f"heatmap {name} is missing")
    for letter in Letter.objects.only("pk", "pdf_name", "pdf_sha256"):  # the women's result letters
        if not storage.exists(letter.pdf_name):
            problems.append(f"letter {letter.reference}: {letter.pdf_name} is missing")
        elif storage.sha256_of(letter.pdf_name) != letter.pdf_sha256:
            problems.append(f"letter {letter.reference}: {letter.pdf_name} does not match its SHA-256")
    return StorageCheck(images=images, problems=problems)


def _pg_dsn() -> str:
    db = settings.DATABASES["default"]
    parts = {"host": db.get("HOST"), "port": db.get("PORT"), "user": db.get("USER"), "dbname": db["NAME"]}
    return " ".join(f"{key}={value}" for key, value in parts.items() if value)


def _pg_env() -> dict:
    env = dict(os.environ)
    password = settings.DATABASES["default"].get("PASSWORD")
    if password:
        env["PGPASSWORD"] = password
    return env
