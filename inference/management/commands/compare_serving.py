import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from inference.training.dataset_loading import DATASETS, load_records
from inference.training.datasets import DatasetError


class Command(BaseCommand):
    help = (
        "Out-of-fold comparison of ways to score a whole image with the weights of each cross-validation fold "
        "(train_model --keep-fold-weights DIR): the served score, test-time augmentation (mean logit of the image "
        "and its vertical mirror), and scanning patches of the training patch size (stride half a patch, maximum "
        "patch logit). Every image is scored only by the fold that did not train on it; the sealed test split is "
        "never read. Writes DIR/serving_variants.json. With --model-dir instead: a trained model (model.keras and "
        "its card) scored the same ways on its own training images, in sample — a diagnostic of fitting, not of "
        "generalisation (writes MODEL_DIR/serving_variants_train_images.json)."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--fold-weights", type=Path, metavar="DIR")
        source.add_argument("--model-dir", type=Path, metavar="MODEL_DIR")
        parser.add_argument("--dataset", required=True, choices=DATASETS)
        parser.add_argument("--data-path", type=Path, default=None)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **o):
        from inference.metrics import task_aucs
        from inference.training.patches import prepare_images
        from inference.training.serving_variants import fold_scores

        if o["model_dir"]:
            return self.own_training_images(o)
        folder: Path = o["fold_weights"]
        folds = sorted(folder.glob("fold*.validation.json"))
        if not folds:
            raise CommandError(f"No fold*.validation.json in {folder} (train with --keep-fold-weights {folder}).")
        records = self.records(o)
        by_id = {record.image_id: record for record in records}
        labels, scores = [], {}
        for meta_path in folds:
            meta = json.loads(meta_path.read_text())
            chosen = [by_id[i] for i in meta["validation_ids"]]
            if any(record.split == "test" for record in chosen):
                raise CommandError(f"{meta_path.name} lists sealed test images: refusing.")
            images = prepare_images(chosen, input_size=meta["input_size"])
            weights = meta_path.with_name(meta_path.name.replace(".validation.json", ".weights.h5"))
            for name, values in fold_scores(images, weights, meta).items():
                scores.setdefault(name, []).extend(values.tolist())
            labels += [record.image_label for record in chosen]
            self.stdout.write(f"{meta_path.name}: {len(chosen)} validation images scored")
        result = {
            "folds": len(folds),
            "images": len(labels),
            "variants": {
                name: task_aucs(labels, np.asarray(values), seed=o["seed"]) for name, values in scores.items()
            },
        }
        (folder / "serving_variants.json").write_text(json.dumps(result, indent=1) + "\n")
        self.report(result)

    def own_training_images(self, o):
        from inference.metrics import task_aucs
        from inference.training.datasets import only_split
        from inference.training.patches import prepare_images
        from inference.training.serving_variants import fold_scores

        folder: Path = o["model_dir"]
        card_path = folder / "model_card.json"
        if not card_path.exists() or not (folder / "model.keras").exists():
            raise CommandError(f"{folder} needs model.keras and model_card.json.")
        card = json.loads(card_path.read_text())
        meta = {**card["training"], "input_size": card["serving"]["input_size"], "pooling": card["serving"]["pooling"]}
        records = self.records(o)
        chosen = only_split(records, "train")
        images = prepare_images(chosen, input_size=meta["input_size"])
        scores = fold_scores(images, folder / "model.keras", meta)
        labels = [record.image_label for record in chosen]
        result = {
            "in_sample": True,
            "images": len(labels),
            "variants": {name: task_aucs(labels, values, seed=o["seed"]) for name, values in scores.items()},
        }
        (folder / "serving_variants_train_images.json").write_text(json.dumps(result, indent=1) + "\n")
        self.stdout.write(f"{folder.name}: its own {len(labels)} training images (in sample)")
        self.report(result)

    @staticmethod
    def records(o):
        try:
            records, _, _ = load_records(dataset=o["dataset"], data_path=o["data_path"])
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        return records

    def report(self, result: dict) -> None:
        for name, tasks in result["variants"].items():
            cells = ", ".join(
                f"{task} {t['auc']:.3f} ({t['auc_ci95'][0]:.3f}-{t['auc_ci95'][1]:.3f})" for task, t in tasks.items()
            )
            self.stdout.write(f"{name}: {cells}")
