from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference.metrics import DEFAULT_BOOTSTRAP
from inference.training.dataset_loading import DATASETS, load_records


class Command(BaseCommand):
    help = (
        "Evaluate a trained model on one split of a dataset through the platform's serving path: ROC and "
        "precision-recall with bootstrap CIs, sensitivity/specificity at the model's validation-chosen threshold "
        "beside BCSC benchmarks, reliability plot, and the Grad-CAM pointing game. Writes report.json, REPORT.md "
        "and PNG plots. Evaluating --split test with --model-dir also records the test metrics in its model card."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--model-dir", type=Path, help="Folder with model.keras and model_card.json.")
        source.add_argument("--model-version", help="Name of a registered ModelVersion.")
        parser.add_argument("--dataset", required=True, choices=DATASETS)
        parser.add_argument("--data-path", type=Path, default=None, help="Default: MAMMO_DATA_DIR/<dataset>.")
        parser.add_argument("--csv-dir", type=Path, default=None)
        parser.add_argument(
            "--split",
            required=True,
            choices=["train", "test", "val"],
            help="val: the validation images listed in the model card.",
        )
        parser.add_argument("--out", type=Path, default=None, help="Default: <model-dir>/evaluation[-split].")
        parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--no-card-update", action="store_true", help="Leave the model card as it is.")
        parser.add_argument(
            "--example-figures",
            action="store_true",
            help="Also draw Grad-CAM on thumbnails of malignant images (copies of the data: keep out of the repo).",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **o):
        import json

        from inference.serving.spec import ServingSpec
        from inference.training.datasets import DatasetError, only_split
        from inference.training.evaluation import evaluate_model_dir, evaluate_records, split_warnings

        if o["model_dir"]:
            card_path = o["model_dir"] / "model_card.json"
            if not card_path.exists():
                raise CommandError(f"No model card at {card_path}.")
            card = json.loads(card_path.read_text())
        else:
            version, card = self._version(o["model_version"])
        try:
            records, _, _ = load_records(
                dataset=o["dataset"], data_path=o["data_path"], csv_dir=o["csv_dir"], lesion_centres=True
            )
            records = self._split(records, o["split"], card, only_split)
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        options = {
            "seed": o["seed"],
            "n_bootstrap": o["bootstrap"],
            "progress": not o["no_progress"],
            "example_figures": o["example_figures"],
        }
        try:
            if o["model_dir"]:
                default_out = o["model_dir"] / ("evaluation" if o["split"] == "test" else f"evaluation-{o['split']}")
                out = o["out"] or default_out
                report = evaluate_model_dir(
                    model_dir=o["model_dir"],
                    records=records,
                    dataset=o["dataset"],
                    split=o["split"],
                    out_dir=out,
                    update_card=o["split"] == "test" and not o["no_card_update"],
                    **options,
                )
            else:
                spec = ServingSpec.from_version(version)
                out = o["out"] or Path(f"evaluation-{version.name}-{o['split']}")
                report = evaluate_records(
                    records=records,
                    spec=spec,
                    dataset=o["dataset"],
                    split=o["split"],
                    model_name=version.name,
                    out_dir=out,
                    warnings=split_warnings(card, o["split"]),
                    **options,
                )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        tasks, point = report["tasks"], report["operating_point"]
        pointing = report["pointing_game"]["malignant"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Report in {out}: AUC malignant vs benign {tasks['malignant_vs_benign']['auc']:.3f}, abnormal vs "
                f"normal {tasks['abnormal_vs_normal']['auc']:.3f}, malignant vs rest "
                f"{tasks['malignant_vs_rest']['auc']:.3f}; at threshold {point['threshold']:.4f} sensitivity "
                f"{point['sensitivity']:.3f}, specificity {point['specificity']:.3f}; pointing game (malignant) "
                f"{pointing['hits']}/{pointing['images']}."
            )
        )

    def _version(self, name: str):
        from inference.models import ModelVersion

        version = ModelVersion.objects.filter(name=name).first()
        if version is None:
            raise CommandError(f"No model version named {name!r}.")
        return version, version.card or {}

    def _split(self, records, split: str, card: dict, only_split):
        if split in ("train", "test"):
            return only_split(records, split)
        wanted = set(card.get("validation", {}).get("validation_ids") or [])
        if not wanted:
            raise CommandError("The model card lists no validation images.")
        chosen = [record for record in records if record.image_id in wanted]
        if any(record.split == "test" for record in chosen):
            raise CommandError("The card's validation images include sealed test images; refusing.")
        return chosen
