import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference.metrics import DEFAULT_BOOTSTRAP, finite_json
from inference.training.dataset_loading import REPO, data_dir

MODELS = {"nyu-histogram": "density-nyu-histogram", "mini-mias": "density-mini-mias"}


class Command(BaseCommand):
    help = (
        "Measure a density model on mini-MIAS through the serving API, one prediction per woman. --split train "
        "(NYU model only): every candidate of its mini-MIAS protocol (input, a-d -> F/G/D mapping) and the choice, "
        "recorded in its card. --split test: the sealed test split, once: refused until the card's acceptance "
        "criterion (and for the NYU model its protocol) is committed; records the figures and the status in the "
        "card; a second run recomputes and compares, and never overwrites. Writes the per-woman report to --out."
    )

    def add_arguments(self, parser):
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--model", choices=list(MODELS))
        where.add_argument("--model-dir", type=Path)
        parser.add_argument("--split", required=True, choices=["train", "test"])
        parser.add_argument("--data-path", type=Path, default=None, help="Default: MAMMO_DATA_DIR/mini-mias.")
        parser.add_argument("--out", type=Path, default=None, help="Default: research/<folder>/evaluation-<split>.json")
        parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **o):
        from inference.density.api import DensityModel
        from inference.training.datasets import DatasetError
        from inference.training.density.data import density_women

        model_dir = o["model_dir"] or REPO / "default_model" / MODELS[o["model"]]
        card_path = model_dir / "model_card.json"
        if not card_path.exists():
            raise CommandError(f"No model card at {card_path}.")
        model = DensityModel.from_folder(model_dir)
        nyu = model.architecture == "nyu-histogram"
        try:
            women = density_women(root=o["data_path"] or data_dir() / "mini-mias", split=o["split"])
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        out = o["out"] or REPO / "research" / model_dir.name / f"evaluation-{o['split']}.json"
        options = {"n_bootstrap": o["bootstrap"], "seed": o["seed"]}
        command = (
            f"python manage.py evaluate_density_model --model{'-dir' if o['model_dir'] else ''} "
            f"{o['model_dir'] or o['model']} --split {o['split']}"
        )
        if o["split"] == "train":
            self._train(model, women, card_path, out, options, nyu, command)
        else:
            self._test(model, women, card_path, out, options, nyu, command)

    def _train(self, model, women, card_path, out, options, nyu, command):
        from inference.training.density.cards import write_density_card
        from inference.training.density.evaluation import nyu_train_protocol

        if not nyu:
            raise CommandError(
                "The mini-MIAS model was fitted on the train split: its honest train-split figures are the "
                "cross-validation in its card."
            )
        card = json.loads(card_path.read_text())
        if (card.get("metrics") or {}).get("test"):
            raise CommandError("The card holds sealed-test figures: its protocol can no longer change.")
        protocol = nyu_train_protocol(model, women, progress=self.stdout.write, **options)
        self._write(out, protocol)
        card.setdefault("metrics", {})["train"] = finite_json(protocol)
        card.setdefault("commands", {})["protocol"] = command
        write_density_card(card, card_path.parent)
        chosen = protocol["candidates"][f"{protocol['chosen']['input']}; {protocol['chosen']['mapping']}"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Chosen on {len(women)} train women: {protocol['chosen']} (accuracy {chosen['accuracy']:.3f}, "
                f"linear kappa {chosen['kappa_linear']:.3f}). Card updated; commit it before --split test."
            )
        )

    def _test(self, model, women, card_path, out, options, nyu, command):
        from inference.density.validation import density_validation
        from inference.training.density.cards import write_density_card
        from inference.training.density.evaluation import evaluate_women

        card = json.loads(card_path.read_text())
        if not (card.get("acceptance") or {}).get("criterion"):
            raise CommandError("The card has no acceptance criterion: write it and commit it before the test split.")
        protocol = ((card.get("metrics") or {}).get("train") or {}).get("chosen") if nyu else None
        if nyu and not protocol:
            raise CommandError("Choose the NYU model's mini-MIAS protocol first: --split train, then commit.")
        criterion_commit = self._committed(card_path)
        report = evaluate_women(model, women, protocol=protocol, progress=self.stdout.write, **options)
        figures = finite_json({k: v for k, v in report.items() if k != "predictions"})
        recorded = (card.get("metrics") or {}).get("test")
        if recorded:
            same = all(recorded["woman_level"][k] == figures["woman_level"][k] for k in ("accuracy", "kappa_linear"))
            self.stdout.write(
                (self.style.SUCCESS if same else self.style.ERROR)(
                    f"The card already holds its sealed-test figures (evaluated {recorded.get('evaluated_at')}); "
                    f"this run {'reproduces' if same else 'DIFFERS FROM'} them. Nothing was written."
                )
            )
            return
        self._write(out, report)
        card["metrics"]["test"] = {
            **figures,
            "dataset": "mini-MIAS",
            "split": "test",
            "criterion_commit": criterion_commit,
            "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "report": str(out.relative_to(REPO)) if out.is_relative_to(REPO) else str(out),
            "command": command,
        }
        card["commands"]["evaluate_test"] = command
        validation = density_validation(card)
        card["status"] = "validated" if validation.validated else "research estimate"
        write_density_card(card, card_path.parent)
        woman = figures["woman_level"]
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(women)} test women: accuracy {woman['accuracy']:.3f} ({woman['accuracy_ci95'][0]:.3f}–"
                f"{woman['accuracy_ci95'][1]:.3f}), linear kappa {woman['kappa_linear']:.3f} "
                f"({woman['kappa_linear_ci95'][0]:.3f}–{woman['kappa_linear_ci95'][1]:.3f}). {validation.statement}"
            )
        )

    @staticmethod
    def _committed(card_path: Path) -> str:
        """The commit holding the card as it is now (criterion included); refuses an uncommitted card."""

        def git(*arguments: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["git", *arguments], cwd=card_path.parent, capture_output=True, text=True, check=False
            )

        if git("ls-files", "--error-unmatch", card_path.name).returncode != 0:
            raise CommandError(f"{card_path} is not committed: commit the acceptance criterion before the test split.")
        if git("diff", "--quiet", "HEAD", "--", card_path.name).returncode != 0:
            raise CommandError(f"{card_path} has uncommitted changes: commit them before the test split.")
        return git("log", "-1", "--format=%H", "--", card_path.name).stdout.strip()

    @staticmethod
    def _write(out: Path, report: dict) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(finite_json(report), indent=1) + "\n")
