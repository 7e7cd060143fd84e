"""Registering a density model folder the platform ships (default_model/density-*: model_card.json and the weights
file it names) as kind=density in the same registry: the file copied into MODEL_DIR by its SHA-256, loaded the way
the platform will load it (inference.density.density_model_from_file) and run on a synthetic four-view exam
(DensityModel.self_check) as its conformance check. Its validation is its card's own (inference.density.validation):
the NYU histogram model is a research estimate; whatever it says, the registry shows that statement beside it.

Finding the density model to use is `ModelVersion.objects.density().active()` (kind="density", is_active=True).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from audit.services import audit_record
from core.errors import ApplicationError
from inference.lifecycle import model_status_record_created
from inference.models import ModelKind, ModelRuntime, ModelVersion
from inference.serving.loading import file_sha256
from inference.serving.preprocessing import PREPROCESSING_VERSION


def density_manifest(card: dict) -> dict:
    """The inventory's facts about a shipped density model, from its card."""
    source = card.get("source") or {}
    data = card.get("data") or {}
    density = card.get("density") or {}
    validation = card.get("acceptance") or {}
    return {
        "name": card.get("name", ""),
        "version": str(card.get("version") or card.get("created_at", "")[:10]),
        "vendor": (
            f"NYU ({source['repository']}), ported to Keras here" if source.get("repository") else "this platform"
        ),
        "licence": source.get("licence") or data.get("licence") or "",
        "intended_use": card.get("intended_use") or "",
        "kind": "density",
        "input": {"views": density.get("views", ""), "description": density.get("input", "")},
        "output": {"scale": density.get("scale", ""), "classes": density.get("classes", [])},
        "training_data": source.get("training_data") or data.get("split_used_for_training") or "",
        "validation": {"summary": validation.get("criterion", ""), "card_status": card.get("status", "")},
    }


def density_model_register(*, folder: Path, registered_by: str, actor=None) -> ModelVersion:
    """Register the density model in `folder` (once: a model with the same file is returned as it is)."""
    from inference.density import density_model_from_file

    folder = Path(folder)
    card = json.loads((folder / "model_card.json").read_text())
    source = folder / str(card.get("model_file") or "")
    if not source.is_file():
        raise ApplicationError(f"{folder}: the card's model_file {card.get('model_file')!r} is missing.")
    sha = file_sha256(source)
    existing = ModelVersion.objects.density().filter(file_sha256=sha).first()
    if existing is not None:
        return existing
    name = str(card.get("name") or f"density-{sha[:8]}")
    if ModelVersion.objects.filter(name=name).exists():
        raise ApplicationError(f"A model named {name!r} is already in the inventory (with another file).")
    target_dir = Path(settings.MODEL_DIR)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{sha}{source.suffix}"
    if not target.exists():
        shutil.copyfile(source, target)
    started = time.perf_counter()
    try:
        model = density_model_from_file(target, card)
        loaded_ms = (time.perf_counter() - started) * 1000
        mark = time.perf_counter()
        result = model.self_check()
        exam_ms = (time.perf_counter() - mark) * 1000
    except Exception as exc:  # noqa: BLE001  (any failure: not registered, with the reason)
        raise ApplicationError(f"The density model in {folder} does not work: {exc}") from exc
    density = card.get("density") or {}
    report = {
        "passed": True,
        "refusal": "",
        "runtime": "density",
        "image_source": "DensityModel.self_check (a synthetic four-view exam)",
        "checks": [
            {"check": "Loads safely", "passed": True, "detail": f"{model.architecture}, loaded in {loaded_ms:.0f} ms"},
            {"check": "A distribution over its classes", "passed": True,
             "detail": ", ".join(f"{k} {v:.3f}" for k, v in result.probabilities.items())},
        ],
        "classes": list(model.classes),
        "self_check": result.probabilities,
        "ms_per_exam": round(exam_ms, 1),
        "heatmap": False,
        "no_heatmap_reason": "a density model gives a category per exam and per breast, not a location",
    }  # fmt: skip
    with transaction.atomic():
        version = ModelVersion.objects.create(
            name=name,
            kind=ModelKind.DENSITY,
            runtime=ModelRuntime.WEIGHTS if source.suffix == ".npz" else ModelRuntime.KERAS,
            backbone=model.architecture[:20],
            input_size=512 if density.get("features", "").startswith("lite0") else 0,
            file=target.name,
            file_sha256=sha,
            preprocessing_version=str(density.get("preprocessing_version") or PREPROCESSING_VERSION),
            card=card,
            metrics=card.get("metrics") or {},
            manifest=density_manifest(card),
            conformance=report,
            imported_by=actor,
            imported_via=registered_by,
        )
        model_status_record_created(
            model_version=version,
            actor=actor,
            actor_name=registered_by,
            reason=f"Registered by {registered_by} from {folder.name}: loads and gives a distribution over "
            f"{', '.join(model.classes)} on a synthetic four-view exam. {version.validation.statement}",
        )
        audit_record(
            action="model.registered",
            actor=actor,
            obj=version,
            details={"name": name, "kind": version.kind, "runtime": version.runtime, "file_sha256": sha,
                     "validation": version.validation.statement, "by": registered_by},
        )  # fmt: skip
    return version
