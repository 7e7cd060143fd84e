import hashlib
import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference.training.dataset_loading import REPO, data_dir

SOURCE_FILES = (
    "histogram-model/model.ckpt.data-00000-of-00001",
    "histogram-model/model.ckpt.index",
    "histogram-model/model.ckpt.meta",
    "histogram-model/model.p",
    "images/L-CC.png",
    "images/R-CC.png",
    "images/L-MLO.png",
    "images/R-MLO.png",
    "LICENSE",
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Command(BaseCommand):
    help = (
        "Convert the NYU histogram density model's published weights (MAMMO_DATA_DIR/nyu-density: TensorFlow "
        "checkpoint, checked bit for bit against the torch copy read by a restricted unpickler) into "
        "<out>/weights.npz with its LICENSE and model card, and check the port against the published sample exam. "
        "Run once; the result is committed. Refuses to replace a card that already holds test figures."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", type=Path, default=None, help="Default: MAMMO_DATA_DIR/nyu-density.")
        parser.add_argument("--out", type=Path, default=REPO / "default_model" / "density-nyu-histogram")

    def handle(self, *args, **o):
        from inference.density.nyu import NyuHistogramDensity
        from inference.density.nyu_weights import convert_nyu_weights
        from inference.training.density.cards import NYU_SOURCE, nyu_card, write_density_card
        from inference.training.density.sample_exam import sample_exam_reproduction

        source = o["source"] or data_dir() / "nyu-density"
        out = o["out"]
        card_path = out / "model_card.json"
        if card_path.exists():
            import json

            if (json.loads(card_path.read_text()).get("metrics") or {}).get("test"):
                raise CommandError(f"{card_path} holds sealed-test figures; it is not replaced.")
        missing = [name for name in SOURCE_FILES if not (source / name).is_file()]
        if missing:
            raise CommandError(f"{source} lacks {', '.join(missing)}.")
        sums = self._published_sums(source)
        hashes = {name: _sha256(source / name) for name in SOURCE_FILES}
        wrong = [name for name, sha in hashes.items() if name in sums and sums[name] != sha]
        if wrong:
            raise CommandError(f"SHA-256 differs from {source / 'SHA256SUMS'}: {', '.join(wrong)}.")
        convert_nyu_weights(
            checkpoint_prefix=source / "histogram-model" / "model.ckpt",
            torch_file=source / "histogram-model" / "model.p",
            out=out / "weights.npz",
        )
        shutil.copyfile(source / "LICENSE", out / "LICENSE")
        model = NyuHistogramDensity(out / "weights.npz")
        reproduction = sample_exam_reproduction(model, source / "images", NYU_SOURCE["published_sample_output"])
        if reproduction["max_abs_difference"] >= 5e-4:
            raise CommandError(f"The port does not reproduce the published sample output: {reproduction}")
        seconds = reproduction.pop("seconds")  # not in the card: it would change on every run
        command = "python manage.py convert_nyu_density_weights"
        card = nyu_card(
            sources=hashes, weights_sha256=_sha256(out / "weights.npz"), reproduction=reproduction, command=command
        )
        write_density_card(card, out)
        port = reproduction["port"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {out}/weights.npz, LICENSE, model_card.json, MODEL_CARD.md. Sample exam: "
                + ", ".join(f"{c} {port[c]:.6g}" for c in "abcd")
                + f" (largest difference from the published {reproduction['max_abs_difference']:.2g};"
                f" {seconds:.2f} s)."
            )
        )

    @staticmethod
    def _published_sums(source: Path) -> dict[str, str]:
        path = source / "SHA256SUMS"
        if not path.is_file():
            return {}
        sums = {}
        for line in path.read_text().splitlines():
            if line.strip():
                sha, name = line.split(maxsplit=1)
                sums[name.strip().lstrip("*")] = sha
        return sums
