import json
import shlex
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference.serving.backbones import BACKBONES, POOLINGS
from inference.training.dataset_loading import DATASETS, load_records
from inference.training.trainer import TrainConfig


class Command(BaseCommand):
    help = (
        "Train a classifier on a dataset's train split: patient-grouped validation (k-fold or hold-out), early "
        "stopping on validation AUC, Platt calibration and the threshold on validation predictions. Writes "
        "<out>/model.keras, model_card.json and MODEL_CARD.md; --evaluate-test then evaluates the sealed test "
        "split once into <out>/evaluation; --register NAME records it as a ModelVersion (--activate to serve it)."
    )

    def add_arguments(self, parser):
        defaults = TrainConfig()
        parser.add_argument("--dataset", required=True, choices=DATASETS)
        parser.add_argument("--data-path", type=Path, default=None, help="Default: MAMMO_DATA_DIR/<dataset>.")
        parser.add_argument("--csv-dir", type=Path, default=None, help="CBIS-DDSM CSV folder (default: --data-path).")
        parser.add_argument("--out", type=Path, required=True, help="Output folder (created).")
        parser.add_argument("--backbone", choices=list(BACKBONES), default=defaults.backbone)
        parser.add_argument("--image-size", type=int, default=defaults.input_size, help="Served input size S.")
        parser.add_argument(
            "--mode",
            choices=["patch", "whole"],
            default=None,
            help="patch: lesion-centred patches (needs lesion locations); whole: whole images. "
            "Default: patch when the dataset has lesion locations.",
        )
        parser.add_argument("--patch-size", type=int, default=defaults.patch_size)
        parser.add_argument(
            "--pooling",
            choices=POOLINGS,
            default=None,
            help="Head: location (logit per position, image = max; default for patch), avg (default for whole), max.",
        )
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
        parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
        parser.add_argument("--dropout", type=float, default=defaults.dropout)
        parser.add_argument(
            "--initial-weights",
            default=defaults.initial_weights,
            help="'scratch', 'imagenet' (shipped EfficientNet-Lite0 weights) or a local Keras "
            "weights file for the backbone's body.",
        )
        parser.add_argument("--augment", action="store_true", default=True)
        parser.add_argument("--no-augment", dest="augment", action="store_false")
        parser.add_argument("--class-weighting", action="store_true", default=True)
        parser.add_argument("--no-class-weighting", dest="class_weighting", action="store_false")
        parser.add_argument("--validation", choices=["kfold", "holdout"], default=defaults.validation)
        parser.add_argument("--folds", type=int, default=defaults.folds)
        parser.add_argument("--holdout-fraction", type=float, default=defaults.holdout_fraction)
        parser.add_argument("--patience", type=int, default=defaults.patience)
        parser.add_argument("--threshold-method", choices=["sensitivity", "youden"], default=defaults.threshold_method)
        parser.add_argument("--target-sensitivity", type=float, default=defaults.target_sensitivity)
        parser.add_argument("--lesion-patches", type=int, default=defaults.lesion_patches)
        parser.add_argument("--tissue-patches", type=int, default=defaults.tissue_patches)
        parser.add_argument("--hard-negatives", type=int, default=defaults.hard_negatives)
        parser.add_argument(
            "--mine-fraction",
            type=float,
            default=defaults.mine_fraction,
            help="Share of the training images whose hard negatives are re-mined after each epoch (1 = every image).",
        )
        parser.add_argument(
            "--freeze",
            choices=["none", "body"],
            default=defaults.freeze,
            help="body: keep the backbone's (pretrained) weights and train only the head (a linear probe).",
        )
        parser.add_argument(
            "--keep-fold-weights",
            type=Path,
            default=None,
            metavar="DIR",
            help="Keep each cross-validation fold's weights and validation ids in DIR (for out-of-fold analyses).",
        )
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--name", default=None, help="Model name in the card (default: --register or the folder).")
        parser.add_argument(
            "--card-notes",
            type=Path,
            default=None,
            help="JSON merged into the card under 'notes' (e.g. the experiments that led here).",
        )
        parser.add_argument(
            "--evaluate-test",
            action="store_true",
            help="After training, evaluate the sealed test split once (same code as evaluate_model).",
        )
        parser.add_argument("--register", default=None, metavar="NAME", help="Register as a ModelVersion.")
        parser.add_argument("--activate", action="store_true", help="With --register: make it the active model.")
        parser.add_argument(
            "--confirm-unvalidated",
            action="store_true",
            help="With --activate: activate it even if it is not validated (no sealed-test AUC interval above 0.5).",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **o):
        started = time.perf_counter()
        if o["activate"] and not o["register"]:
            raise CommandError("--activate needs --register NAME.")
        from inference.training.datasets import DatasetError, only_split
        from inference.training.model_card import build_card, write_card
        from inference.training.trainer import TrainingError, train

        try:
            records, data_path, description = load_records(
                dataset=o["dataset"],
                data_path=o["data_path"],
                csv_dir=o["csv_dir"],
                lesion_centres=o["mode"] != "whole",
            )
            train_records = only_split(records, "train")
            if not train_records:
                raise CommandError("The dataset has no images in its train split.")
            has_locations = any(lesion.row is not None for record in train_records for lesion in record.lesions)
            mode = o["mode"] or ("patch" if has_locations else "whole")
            config = TrainConfig(
                backbone=o["backbone"],
                input_size=o["image_size"],
                mode=mode,
                patch_size=o["patch_size"],
                pooling=o["pooling"] or ("location" if mode == "patch" else "avg"),
                epochs=o["epochs"],
                batch_size=o["batch_size"],
                learning_rate=o["learning_rate"],
                dropout=o["dropout"],
                initial_weights=o["initial_weights"],
                augment=o["augment"],
                class_weighting=o["class_weighting"],
                patience=o["patience"],
                validation=o["validation"],
                folds=o["folds"],
                holdout_fraction=o["holdout_fraction"],
                seed=o["seed"],
                threshold_method=o["threshold_method"],
                target_sensitivity=o["target_sensitivity"],
                lesion_patches=o["lesion_patches"],
                tissue_patches=o["tissue_patches"],
                hard_negatives=o["hard_negatives"],
                mine_fraction=o["mine_fraction"],
                freeze=o["freeze"],
            )
            self.stdout.write(
                f"Training {config.backbone} ({mode}) on {len(train_records)} {o['dataset']} train images "
                f"({description}); {config.validation} validation grouped by patient."
            )
            outcome = train(
                train_records, config, progress=not o["no_progress"], fold_weights_dir=o["keep_fold_weights"]
            )
        except (DatasetError, TrainingError, ValueError) as exc:
            raise CommandError(str(exc)) from exc

        out: Path = o["out"]
        out.mkdir(parents=True, exist_ok=True)
        model_path = out / "model.keras"
        outcome.model.save(model_path)
        (out / "validation_predictions.json").write_text(json.dumps(outcome.validation["predictions"], indent=1) + "\n")
        name = o["name"] or o["register"] or out.resolve().name
        command = "python manage.py train_model " + shlex.join(sys.argv[2:])
        evaluate = (
            f"python manage.py evaluate_model --model-dir {shlex.quote(str(out))} --dataset {o['dataset']}"
            + (f" --data-path {shlex.quote(str(o['data_path']))}" if o["data_path"] else "")
            + (f" --csv-dir {shlex.quote(str(o['csv_dir']))}" if o["csv_dir"] else "")
            + " --split test"
        )
        notes = json.loads(o["card_notes"].read_text()) if o["card_notes"] else None
        training_seconds = time.perf_counter() - started
        card = build_card(
            outcome=outcome,
            name=name,
            dataset=o["dataset"],
            data_description=description,
            command=command,
            evaluate_command=evaluate,
            training_seconds=training_seconds,
            notes=notes,
        )
        write_card(card, out)
        size_mb = model_path.stat().st_size / 1e6
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {model_path} ({size_mb:.1f} MB) and the model card in {training_seconds / 60:.1f} min. "
                f"Validation AUC malignant vs rest {card['metrics']['validation']['malignant_vs_rest']['auc']}, "
                f"threshold {card['serving']['threshold']:.4f}."
            )
        )

        if o["evaluate_test"]:
            from inference.training.evaluation import evaluate_model_dir

            test_records = only_split(records, "test")
            if not test_records:
                raise CommandError("--evaluate-test: the dataset has no test split.")
            report = evaluate_model_dir(
                model_dir=out, records=test_records, dataset=o["dataset"], split="test", progress=not o["no_progress"]
            )
            card = json.loads((out / "model_card.json").read_text())
            self.stdout.write(f"Test evaluation written to {out / 'evaluation'}: {_summary(report)}")

        if o["register"]:
            from core.errors import ApplicationError
            from inference.serving.registry import model_version_register_from_card

            try:
                version = model_version_register_from_card(
                    model_path=model_path,
                    card=card,
                    name=o["register"],
                    activate=o["activate"],
                    confirm_unvalidated=o["confirm_unvalidated"],
                    registered_by="train_model --register",
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            state = "registered and activated" if o["activate"] else "registered (not active)"
            self.stdout.write(self.style.SUCCESS(f"{version.name} {state}; file SHA-256 {version.file_sha256}."))


def _summary(report: dict) -> str:
    tasks, pg = report["tasks"], report["pointing_game"]["malignant"]
    return (
        f"AUC malignant vs benign {tasks['malignant_vs_benign']['auc']:.3f}, abnormal vs normal "
        f"{tasks['abnormal_vs_normal']['auc']:.3f}, pointing game (malignant) {pg['hits']}/{pg['images']}"
    )
