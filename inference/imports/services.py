"""Importing a model from elsewhere (the import page and `manage.py import_model`), and registering the platform's
own density models: the file is identified (SHA-256), copied into MODEL_DIR, checked (inference.imports.conformance,
in a child process), and only then recorded as imported, with who imported it, its manifest and the check's
report; a refusal is audited with its reason. Nothing in an uploaded file is executed: a .keras file is read in
Keras' safe mode, a SavedModel zip is unpacked with its paths checked and its graph inspected before TensorFlow
loads it, an ONNX file is checked before ONNX Runtime gets it; all of that in the child process.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from django.conf import settings
from django.db import transaction

from audit.services import audit_record
from core.errors import ApplicationError
from inference.imports.manifest import ManifestInvalid, manifest_card, manifest_validated
from inference.lifecycle import model_status_record_created
from inference.models import ModelKind, ModelRuntime, ModelVersion
from inference.serving.loading import file_sha256
from inference.serving.spec import ServingSpec

RUNTIME_BY_SUFFIX = {".keras": ModelRuntime.KERAS, ".onnx": ModelRuntime.ONNX, ".zip": ModelRuntime.SAVEDMODEL}
MAX_ARCHIVE_MEMBERS = 20_000
REPO = Path(__file__).resolve().parents[2]


class ImportRefused(ApplicationError):
    """The model was not imported; `errors` maps manifest fields to messages when the manifest was the reason."""

    def __init__(self, message: str, *, errors: dict[str, str] | None = None, report: dict | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}
        self.report = report or {}


def runtime_of(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in RUNTIME_BY_SUFFIX:
        raise ImportRefused(
            f"{Path(filename).name}: upload a Keras .keras file, a .zip of a TensorFlow SavedModel folder, or an "
            ".onnx file."
        )
    return RUNTIME_BY_SUFFIX[suffix]


def savedmodel_unpack(archive: Path, target: Path) -> Path:
    """Unpack a zipped SavedModel into `target`, refusing absolute paths, '..', links and archives that unpack past
    MODEL_IMPORT_MAX_UNPACKED_BYTES. Returns the folder that holds saved_model.pb (the top, or its one folder)."""
    try:
        zipped = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise ImportRefused("The .zip file is not a readable zip archive.") from exc
    with zipped:
        members = zipped.infolist()
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise ImportRefused(f"The archive holds {len(members)} entries; at most {MAX_ARCHIVE_MEMBERS}.")
        total = sum(m.file_size for m in members)
        if total > settings.MODEL_IMPORT_MAX_UNPACKED_BYTES:
            limit_mb = settings.MODEL_IMPORT_MAX_UNPACKED_BYTES / 1e6
            raise ImportRefused(
                f"The archive unpacks to {total / 1e6:.0f} MB, over {limit_mb:.0f} MB (MODEL_IMPORT_MAX_UNPACKED_BYTES)"
            )
        for member in members:
            name = member.filename
            mode = member.external_attr >> 16
            if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name or "\\" in name:
                raise ImportRefused(f"The archive holds an unsafe path: {name!r}.")
            if stat.S_ISLNK(mode):
                raise ImportRefused(f"The archive holds a link: {name!r}.")
        target.mkdir(parents=True)
        written = 0
        for member in members:
            destination = target / member.filename
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(member) as source, open(destination, "wb") as out:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > settings.MODEL_IMPORT_MAX_UNPACKED_BYTES:  # sizes in the header can lie
                        raise ImportRefused("The archive unpacks past MODEL_IMPORT_MAX_UNPACKED_BYTES.")
                    out.write(chunk)
    if (target / "saved_model.pb").is_file():
        return target
    tops = [p for p in target.iterdir() if p.is_dir() and (p / "saved_model.pb").is_file()]
    if len(tops) == 1:
        return tops[0]
    raise ImportRefused("The archive holds no SavedModel: no saved_model.pb at its top or in its one folder.")


def conformance_run_isolated(spec: ServingSpec) -> dict:
    """The conformance check in a child process (manage.py model_conformance), its report back as JSON. A child
    that crashes, runs out of time or prints nonsense is a refusal with that reason."""
    request = {
        "model_path": str(spec.model_path),
        "runtime": spec.runtime,
        "input_size": spec.input_size,
        "threshold": spec.threshold,
        "manifest": spec.manifest,
        "max_ms_per_image": settings.MODEL_IMPORT_MAX_MS_PER_IMAGE,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(request, handle)
        request_file = handle.name
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "model_conformance", request_file],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=settings.MODEL_IMPORT_CHECK_TIMEOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    except subprocess.TimeoutExpired:
        return _refused_report(
            f"The conformance check took longer than {settings.MODEL_IMPORT_CHECK_TIMEOUT} s "
            "(MODEL_IMPORT_CHECK_TIMEOUT)."
        )
    finally:
        Path(request_file).unlink(missing_ok=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        return _refused_report(
            f"The conformance check stopped (exit code {result.returncode}): {tail[0][:300]}",
            detail=(result.stderr or "")[-2000:],
        )
    report = json.loads(lines[-1])
    report["check_seconds"] = round(time.monotonic() - started, 1)
    return report


def _refused_report(reason: str, detail: str = "") -> dict:
    return {"passed": False, "refusal": reason, "checks": [], "detail": detail}


def model_version_import(
    *, file_path: Path, filename: str, manifest: dict, actor=None, via: str = "import page"
) -> ModelVersion:
    """Import one model file with its manifest. Returns the new ModelVersion (status imported), or raises
    ImportRefused with the reason (the manifest's errors per field, or the conformance check's refusal)."""
    who = actor.get_username() if actor is not None else via
    runtime = runtime_of(filename)
    try:
        manifest = manifest_validated(manifest, runtime=runtime)
    except ManifestInvalid as exc:
        raise ImportRefused("The manifest is not complete or not valid.", errors=exc.errors) from exc
    if ModelVersion.objects.filter(name=manifest["name"]).exists():
        raise ImportRefused(
            f"A model named {manifest['name']!r} is already in the inventory.", errors={"name": "Taken."}
        )
    file_path = Path(file_path)
    sha = ""
    try:
        size = file_path.stat().st_size
        if size > settings.MODEL_IMPORT_MAX_BYTES:
            raise ImportRefused(
                f"The file is {size / 1e6:.0f} MB, over the {settings.MODEL_IMPORT_MAX_BYTES / 1e6:.0f} MB limit "
                "(MODEL_IMPORT_MAX_BYTES)."
            )
        sha = file_sha256(file_path)
        target = _stored(file_path, runtime=runtime, sha=sha)
        spec = ServingSpec(
            model_path=_savedmodel_root(target) if runtime == ModelRuntime.SAVEDMODEL else target,
            backbone="imported",
            input_size=manifest["input"]["size"],
            threshold=manifest["operating_points"][0]["threshold"],
            runtime=runtime,
            manifest=manifest,
        )
        report = conformance_run_isolated(spec)
        if not report.get("passed"):
            _discard_unused(target)
            raise ImportRefused(f"Refused: {report.get('refusal') or 'the conformance check failed'}", report=report)
    except ImportRefused as exc:
        audit_record(
            action="model.import_refused",
            actor=actor,
            object_type="modelversion",
            details={"name": manifest["name"], "runtime": runtime, "file_sha256": sha, "filename": Path(filename).name,
                     "reason": exc.message, "by": who, "via": via},
        )  # fmt: skip
        raise
    with transaction.atomic():
        version = ModelVersion.objects.create(
            name=manifest["name"],
            kind=ModelKind.MALIGNANCY,
            runtime=runtime,
            backbone="imported",
            input_size=manifest["input"]["size"],
            file=str(spec.model_path.relative_to(Path(settings.MODEL_DIR))),
            file_sha256=sha,
            preprocessing_version=manifest["input"]["preprocessing"].removeprefix("platform-"),
            threshold=manifest["operating_points"][0]["threshold"],
            card=manifest_card(manifest),
            manifest=manifest,
            conformance=report,
            ms_per_image=report.get("ms_per_image"),
            imported_by=actor,
            imported_via=via,
        )
        model_status_record_created(
            model_version=version,
            actor=actor,
            actor_name=via,
            reason=f"Imported ({version.get_runtime_display()}): passed the conformance check on "
            f"{report.get('images')} synthetic images, {report.get('ms_per_image')} ms per image.",
        )
        audit_record(
            action="model.imported",
            actor=actor,
            obj=version,
            details={"name": version.name, "kind": version.kind, "runtime": runtime, "file_sha256": sha,
                     "filename": Path(filename).name, "vendor": manifest["vendor"], "version": manifest["version"],
                     "ms_per_image": report.get("ms_per_image"), "heatmap": report.get("heatmap"), "by": who,
                     "via": via},
        )  # fmt: skip
    return version


def _stored(source: Path, *, runtime: str, sha: str) -> Path:
    """The file in MODEL_DIR, named by its SHA-256 (a SavedModel: unpacked into a folder of that name)."""
    folder = Path(settings.MODEL_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    if runtime == ModelRuntime.SAVEDMODEL:
        target = folder / f"{sha}.savedmodel"
        if not target.exists():
            staging = Path(tempfile.mkdtemp(dir=folder, prefix=".unpacking-"))
            try:
                savedmodel_unpack(source, staging / "model")
                (staging / "model").rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target
    target = folder / f"{sha}{'.onnx' if runtime == ModelRuntime.ONNX else '.keras'}"
    if not target.exists():
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        partial.replace(target)
    return target


def _savedmodel_root(folder: Path) -> Path:
    if (folder / "saved_model.pb").is_file():
        return folder
    tops = [p for p in folder.iterdir() if p.is_dir() and (p / "saved_model.pb").is_file()]
    return tops[0] if tops else folder


def _discard_unused(target: Path) -> None:
    """Remove a refused file from MODEL_DIR unless a recorded model uses the same file."""
    if ModelVersion.objects.filter(file__startswith=target.name).exists():
        return
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)
