"""Evaluation report of a trained model on one split of a dataset, through the platform's own serving path.

Every image goes decode (imaging.decoding) -> preprocess -> Grad-CAM model -> calibrated probability
(inference.serving.runtime.analyse), so the figures describe what users see. The operating point is the one stored with
the model (chosen on validation data); nothing here chooses a threshold, a calibration or a checkpoint.

Writes report.json, REPORT.md and PNG plots (ROC, precision-recall, reliability, score distributions, Grad-CAM
pointing examples) into one folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inference.benchmarks import BENCHMARKS
from inference.metrics import (
    DEFAULT_BOOTSTRAP,
    TASK_TITLES,
    ap_summary,
    at_threshold,
    auc_summary,
    brier_score,
    calibration_bins,
    expected_calibration_error,
    finite_json,
    task_aucs,
    task_labels,
    wilson_ci,
)
from inference.serving.runtime import serving_model_load
from inference.serving.spec import ServingSpec
from inference.training.datasets import ImageRecord


def pointing_hit(peak: tuple[float, float], record: ImageRecord, *, pathology: str | None = None) -> bool | None:
    """Whether the heatmap peak (row, col in original pixels) lies inside a lesion circle (of `pathology`, if
    given). None when the image has no located lesion of that kind."""
    circles = [
        lesion
        for lesion in record.lesions
        if lesion.row is not None and lesion.radius is not None and (pathology is None or lesion.pathology == pathology)
    ]
    if not circles:
        return None
    return any(math.hypot(peak[0] - c.row, peak[1] - c.col) <= c.radius for c in circles)


def predict_records(records: Sequence[ImageRecord], loaded, *, progress: bool = True) -> list[dict]:
    """Serve every image as the platform does and keep what the report needs (and the maps for the figures)."""
    from tqdm import tqdm

    from imaging.heatmaps import heatmap_peak
    from inference.serving.preprocessing import heatmap_to_original
    from inference.serving.runtime import analyse
    from inference.training.patches import decode_record, working_scale

    rows = []
    for record in tqdm(records, desc="evaluate", unit="image", disable=not progress):
        decoded = decode_record(record)
        pixels = decoded.pixels
        analysis = analyse(pixels, loaded)
        heatmap = heatmap_to_original(analysis.cam, analysis.geometry, out_shape=pixels.shape)
        # The peak in original pixels, where the dataset's lesion positions are.
        to_working = working_scale(decoded)
        found = heatmap_peak(heatmap, original_shape=(heatmap.shape[0] / to_working, heatmap.shape[1] / to_working))
        peak = (found["row"], found["column"])
        rows.append(
            {
                "image_id": record.image_id,
                "patient_id": record.patient_id,
                "label": record.image_label,
                "logit": analysis.logit,
                "probability": analysis.probability,
                "predicted": analysis.label,
                "heatmap_peak": {"row": peak[0], "col": peak[1], "value": found["value"]},
                "pointing_hit": pointing_hit(peak, record, pathology=record.image_label)
                if record.image_label != "NORMAL"
                else None,
                "_record": record,
                "_heatmap_small": heatmap[::4, ::4].copy(),
                "_pixels_small": pixels[::4, ::4].copy(),
            }
        )
    return rows


def _pointing(rows: list[dict], label: str) -> dict:
    scored = [r for r in rows if r["label"] == label and r["pointing_hit"] is not None]
    hits = sum(1 for r in scored if r["pointing_hit"])
    no_evidence = sum(1 for r in scored if r["heatmap_peak"]["value"] <= 0)
    low, high = wilson_ci(hits, len(scored))
    return {
        "images": len(scored),
        "hits": hits,
        "rate": hits / len(scored) if scored else float("nan"),
        "rate_ci95": [low, high],
        "maps_without_positive_evidence": no_evidence,
        "unlocated_lesion_images": sum(1 for r in rows if r["label"] == label and r["pointing_hit"] is None),
    }


def patient_level(rows: list[dict], *, seed: int, n_bootstrap: int) -> dict:
    """Malignant-vs-rest AUC per woman with the max over her images (the platform's max-over-views rule)."""
    by_patient: dict[str, list[dict]] = {}
    for row in rows:
        by_patient.setdefault(row["patient_id"], []).append(row)
    labels = [any(r["label"] == "MALIGNANT" for r in group) for group in by_patient.values()]
    scores = [max(r["probability"] for r in group) for group in by_patient.values()]
    means = [float(np.mean([r["probability"] for r in group])) for group in by_patient.values()]
    return {
        "patients": len(by_patient),
        "max_over_images": auc_summary(labels, scores, seed=seed, n_bootstrap=n_bootstrap),
        "mean_over_images": auc_summary(labels, means, seed=seed, n_bootstrap=n_bootstrap),
    }


def build_report(
    rows: list[dict],
    *,
    spec: ServingSpec,
    dataset: str,
    split: str,
    model_name: str,
    warnings: Sequence[str] = (),
    seed: int = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
) -> dict:
    labels = [r["label"] for r in rows]
    probabilities = np.array([r["probability"] for r in rows])
    malignant = np.array([label == "MALIGNANT" for label in labels])
    tasks = task_aucs(labels, probabilities, seed=seed, n_bootstrap=n_bootstrap)
    for task, (mask, task_y) in task_labels(labels).items():
        tasks[task].update(ap_summary(task_y, probabilities[mask], seed=seed, n_bootstrap=n_bootstrap))
    point = at_threshold(malignant, probabilities, spec.threshold).as_dict()
    benign = np.array([label == "BENIGN" for label in labels])
    normal = np.array([label == "NORMAL" for label in labels])
    point["specificity_among_benign"] = at_threshold(
        malignant[malignant | benign], probabilities[malignant | benign], spec.threshold
    ).specificity
    point["specificity_among_normal"] = at_threshold(
        malignant[malignant | normal], probabilities[malignant | normal], spec.threshold
    ).specificity
    point["chosen_on"] = "validation data (stored with the model); not on this split"
    return {
        "model": {
            "name": model_name,
            "file": str(spec.model_path),
            "backbone": spec.backbone,
            "input_size": spec.input_size,
            "preprocessing_version": spec.preprocessing_version,
            "threshold": spec.threshold,
            "calibration_scale": spec.calibration_scale,
            "calibration_bias": spec.calibration_bias,
        },
        "dataset": dataset,
        "split": split,
        "images": {label: labels.count(label) for label in ("NORMAL", "BENIGN", "MALIGNANT")},
        "warnings": list(warnings),
        "serving_path": "imaging.decoding.decode_image -> preprocess -> Grad-CAM model "
        "(inference.serving.runtime.analyse) "
        "-> calibrated probability; heatmap peak via heatmap_to_original",
        "tasks": tasks,
        "patient_level": patient_level(rows, seed=seed, n_bootstrap=n_bootstrap),
        "operating_point": point,
        "benchmarks": BENCHMARKS,
        "calibration": {
            "bins": calibration_bins(malignant, probabilities),
            "expected_calibration_error": expected_calibration_error(malignant, probabilities),
            "brier_score": brier_score(malignant, probabilities),
            "mean_predicted": float(probabilities.mean()) if len(rows) else float("nan"),
            "observed_malignant_fraction": float(malignant.mean()) if len(rows) else float("nan"),
        },
        "pointing_game": {
            "definition": "Hit when the maximum of the Grad-CAM map, mapped back onto the original image with "
            "heatmap_to_original, lies inside an annotated lesion circle of the image's own pathology.",
            "malignant": _pointing(rows, "MALIGNANT"),
            "benign": _pointing(rows, "BENIGN"),
        },
        "bootstrap": {"resamples": n_bootstrap, "stratified": True, "seed": seed, "interval": "percentile 95%"},
        "predictions": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
    }


def write_report(report: dict, rows: list[dict], out_dir: Path, *, example_figures: bool = False) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from inference.training.report_plots import write_plots

    paths = write_plots(report, rows, out_dir, examples=example_figures)
    (out_dir / "report.json").write_text(json.dumps(finite_json(report), indent=2) + "\n")
    (out_dir / "REPORT.md").write_text(report_markdown(report, [p.name for p in paths]))
    return [out_dir / "report.json", out_dir / "REPORT.md", *paths]


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _ci(pair) -> str:
    return f"{_fmt(pair[0])}–{_fmt(pair[1])}"


def _pct(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def report_markdown(report: dict, figures: Sequence[str]) -> str:
    model, point = report["model"], report["operating_point"]
    lines = [
        f"# Evaluation: {model['name']} on {report['dataset']} / {report['split']}",
        "",
        f"Images: {report['images']['MALIGNANT']} malignant, {report['images']['BENIGN']} benign, "
        f"{report['images']['NORMAL']} normal. Backbone {model['backbone']}, input {model['input_size']} px, "
        f"preprocessing version {model['preprocessing_version']}.",
        "",
        f"Serving path: {report['serving_path']}.",
        "",
    ]
    for warning in report["warnings"]:
        lines += [f"> **Warning:** {warning}", ""]
    lines += [
        "## Discrimination (95% stratified bootstrap CIs)",
        "",
        "| Task | n+ / n- | AUC (95% CI) | Average precision (95% CI) |",
        "|---|---|---|---|",
    ]
    for task, title in TASK_TITLES.items():
        t = report["tasks"][task]
        lines.append(
            f"| {title} | {t['positives']} / {t['negatives']} | {_fmt(t['auc'])} ({_ci(t['auc_ci95'])}) | "
            f"{_fmt(t['average_precision'])} ({_ci(t['average_precision_ci95'])}) |"
        )
    patient = report["patient_level"]
    lines += [
        "",
        f"Per woman ({patient['patients']} women, malignant vs rest): max over her images AUC "
        f"{_fmt(patient['max_over_images']['auc'])} ({_ci(patient['max_over_images']['auc_ci95'])}); mean over her "
        f"images {_fmt(patient['mean_over_images']['auc'])} ({_ci(patient['mean_over_images']['auc_ci95'])}).",
        "",
        "## Operating point (threshold chosen on validation data, stored with the model)",
        "",
        f"Threshold on the calibrated probability: **{point['threshold']:.4f}**.",
        "",
        "| | Sensitivity (95% CI) | Specificity (95% CI) |",
        "|---|---|---|",
        f"| This model, malignant vs rest | {_pct(point['sensitivity'])} ({_pct(point['sensitivity_ci95'][0])}–"
        f"{_pct(point['sensitivity_ci95'][1])}) | {_pct(point['specificity'])} ({_pct(point['specificity_ci95'][0])}–"
        f"{_pct(point['specificity_ci95'][1])}) |",
        f"| BCSC benchmark (screening radiologists) | {_pct(BENCHMARKS['bcsc']['sensitivity'])} | "
        f"{_pct(BENCHMARKS['bcsc']['specificity'])} |",
        f"| Acceptable range (Miglioretti 2015) | >= {_pct(BENCHMARKS['acceptable']['sensitivity_at_least'])} | "
        f">= {_pct(BENCHMARKS['acceptable']['specificity_at_least'])} |",
        "",
        f"TP {point['true_positives']}, FN {point['false_negatives']}, TN {point['true_negatives']}, "
        f"FP {point['false_positives']}. Specificity among benign lesions {_pct(point['specificity_among_benign'])}, "
        f"among normal images {_pct(point['specificity_among_normal'])}.",
        "",
        "Literature: " + BENCHMARKS["literature"]["source"] + ", single model AUC 0.83–0.86 (independent re-runs "
        "0.69–0.75). " + BENCHMARKS["literature"]["note"] + " BCSC figures are per screening exam in a screening "
        "population, not per image of an enriched research set: read them as context, not as a like-for-like bar.",
        "",
        "## Calibration",
        "",
        f"Expected calibration error {_fmt(report['calibration']['expected_calibration_error'])}, Brier score "
        f"{_fmt(report['calibration']['brier_score'])}; mean predicted probability "
        f"{_fmt(report['calibration']['mean_predicted'])} vs observed malignant fraction "
        f"{_fmt(report['calibration']['observed_malignant_fraction'])}.",
        "",
        "## Grad-CAM pointing game",
        "",
        report["pointing_game"]["definition"],
        "",
        "| Lesions | Images with a located lesion | Hits | Rate (95% CI) |",
        "|---|---|---|---|",
    ]
    for key in ("malignant", "benign"):
        p = report["pointing_game"][key]
        lines.append(
            f"| {key} | {p['images']} | {p['hits']} | {_pct(p['rate'])} "
            f"({_pct(p['rate_ci95'][0])}–{_pct(p['rate_ci95'][1])}) |"
        )
    lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    lines += [
        "",
        f"Bootstrap: {report['bootstrap']['resamples']} stratified resamples, seed {report['bootstrap']['seed']}.",
        "",
    ]
    return "\n".join(lines)


# ---- entry points for the commands --------------------------------------------------------------------------------


def evaluate_records(
    *,
    records: Sequence[ImageRecord],
    spec: ServingSpec,
    dataset: str,
    split: str,
    model_name: str,
    out_dir: Path,
    warnings: Sequence[str] = (),
    seed: int = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    progress: bool = True,
    example_figures: bool = False,
) -> dict:
    if not records:
        raise ValueError(f"No images to evaluate in the {split!r} split.")
    rows = predict_records(records, serving_model_load(spec), progress=progress)
    report = build_report(
        rows,
        spec=spec,
        dataset=dataset,
        split=split,
        model_name=model_name,
        warnings=warnings,
        seed=seed,
        n_bootstrap=n_bootstrap,
    )
    write_report(report, rows, out_dir, example_figures=example_figures)
    return report


def evaluate_model_dir(
    *,
    model_dir: Path,
    records: Sequence[ImageRecord],
    dataset: str,
    split: str,
    out_dir: Path | None = None,
    update_card: bool | None = None,
    **kwargs,
) -> dict:
    """Evaluate `<model_dir>/model.keras` with the serving settings of its card; for the test split the card gets
    the test metrics (and MODEL_CARD.md is rendered again)."""
    from inference.training.model_card import add_test_metrics, write_card

    model_dir = Path(model_dir)
    card = json.loads((model_dir / "model_card.json").read_text())
    out_dir = Path(out_dir) if out_dir else model_dir / "evaluation"
    report = evaluate_records(
        records=records,
        spec=ServingSpec.from_card(model_dir / card.get("model_file", "model.keras"), card),
        dataset=dataset,
        split=split,
        model_name=card.get("name", model_dir.name),
        out_dir=out_dir,
        warnings=split_warnings(card, split),
        **kwargs,
    )
    if update_card if update_card is not None else split == "test":
        try:
            where = str(out_dir.resolve().relative_to(model_dir.resolve()))
        except ValueError:
            where = str(out_dir)
        write_card(add_test_metrics(card, report, report_dir=where), model_dir)
    return report


def split_warnings(card: dict, split: str) -> list[str]:
    if split == "train":
        return ["These images trained the model: the figures are optimistic and say nothing about generalisation."]
    if split == "val" and card.get("validation", {}).get("final_model_saw_validation_images"):
        return [
            "The served model was refitted on all training images after cross-validation, so it has seen these "
            "validation images: use the card's out-of-fold validation metrics instead."
        ]
    return []
