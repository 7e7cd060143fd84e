"""The study's Mammography CAD SR (imaging.dicom_results.cad_sr builds it) from what the platform recorded: each
DICOM image of the study with its processing status (succeeded, failed, not attempted), its score and heatmap
peak, the model and whether it is validated."""

from __future__ import annotations

from pydicom.dataset import Dataset

from imaging.dicom_results.cad_sr import BreastComposition, CadAlgorithm, CadImage, mammography_cad_sr
from imaging.dicom_results.common import CAD_SR_SERIES_NUMBER, MANUFACTURER


def cad_sr_of_study(
    entries, *, sop_instance_uid: str, series_instance_uid: str, version: int, predecessor: Dataset | None
) -> Dataset:
    """`entries`: cases.dicom.results.StudyEntry of every DICOM image of the study, the study's first image first.

    The algorithm is the model of the newest analysis; an image analysed by another model (the active model was
    changed mid-study) is reported as not attempted by it, so one report never mixes two models' scores."""
    analysed = [entry for entry in entries if entry.prediction is not None]
    newest = max(analysed, key=lambda entry: entry.prediction.created_at).prediction
    model = newest.model_version
    algorithm = CadAlgorithm(
        name=model.name,
        version=model.version_label,
        manufacturer=MANUFACTURER,
        model_sha256=model.file_sha256,
        validated=bool(model.validation.validated),
        operating_point=float(model.threshold),
    )
    images = []
    for entry in entries:
        prediction = entry.prediction if entry.prediction and entry.prediction.model_version_id == model.pk else None
        status = entry.status if prediction is not None or entry.status == "failed" else "not_attempted"
        peak = (prediction.heatmap_peak or {}) if prediction else {}
        images.append(
            CadImage(
                source=entry.header,
                status=status,
                laterality=entry.image.laterality,
                view=entry.image.view,
                score=float(prediction.probability) if prediction else None,
                # No peak for a model that gives no heatmap: the image's score is reported without a location.
                peak=(float(peak["row"]), float(peak["column"])) if prediction and "row" in peak else None,
            )
        )
    return mammography_cad_sr(
        breast_composition=breast_composition_of(entries[0].image.study),
        images=images,
        algorithm=algorithm,
        sop_instance_uid=sop_instance_uid,
        series_instance_uid=series_instance_uid,
        series_number=CAD_SR_SERIES_NUMBER,
        instance_number=version,
        content_datetime=max(entry.prediction.created_at for entry in analysed),
        study_source=entries[0].header,
        predecessor=predecessor,
    )


def breast_composition_of(study) -> BreastComposition | None:
    """The active density model's estimate of the study on the BI-RADS scale (a-d), as the CAD SR's breast
    composition (TID 4007), with that model as its algorithm and its own validation; None without one. Shown as the
    model's estimate (its own Rendering Intent: not for presentation unless the density model is validated)."""
    from cases.studies.ai_density import current_estimate

    estimate = current_estimate(study)
    if estimate is None or not estimate.succeeded or estimate.scale != "birads":
        return None
    model = estimate.model_version
    categories = {"exam": estimate.category}
    for side, breast in (estimate.result.get("per_breast") or {}).items():
        if side in ("L", "R") and breast.get("category") in ("a", "b", "c", "d"):
            categories[side] = breast["category"]
    algorithm = CadAlgorithm(
        name=model.name,
        version=str(model.card.get("version") or model.file_sha256[:12]),
        manufacturer=MANUFACTURER,
        model_sha256=model.file_sha256,
        validated=bool(estimate.result.get("validated")),
        operating_point=0.5,  # a density model has no operating point; the CAD SR's algorithm record needs one
    )
    return BreastComposition(categories=categories, algorithm=algorithm)
