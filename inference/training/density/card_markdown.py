"""MODEL_CARD.md of a density model, rendered from its model_card.json (nothing here is measured)."""

from __future__ import annotations

from inference.density.validation import density_validation


def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(pair, digits: int = 3) -> str:
    return "n/a" if not pair or None in pair else f"{pair[0]:.{digits}f}–{pair[1]:.{digits}f}"


def _agreement_rows(title: str, figures: dict) -> list[str]:
    dense = figures["dense"]
    return [
        f"| {title} | {figures['units']} | {_f(figures['accuracy'])} ({_ci(figures['accuracy_ci95'])}) | "
        f"{_f(figures['kappa_linear'])} ({_ci(figures['kappa_linear_ci95'])}) | {_f(figures['kappa_quadratic'])} | "
        f"{_f(dense['sensitivity'])} / {_f(dense['specificity'])} |"
    ]


AGREEMENT_HEADER = [
    "| | n | accuracy (95 % CI) | linear kappa (95 % CI) | quadratic kappa | dense (D) sensitivity / specificity |",
    "|---|---|---|---|---|---|",
]


def _confusion(figures: dict) -> list[str]:
    classes = figures["classes"]
    lines = ["| label \\ predicted | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    lines += [
        f"| {name} | " + " | ".join(map(str, row)) + " |"
        for name, row in zip(classes, figures["confusion"], strict=True)
    ]
    return lines


def density_card_markdown(card: dict) -> str:
    density, validation = card.get("density") or {}, density_validation(card)
    lines = [f"# Model card: {card['name']} (breast density)", ""]
    lines += [
        f"**Status: {'validated' if validation.validated else 'research estimate, not validated'}.** "
        f"{validation.statement}",
        "",
    ]
    lines += [f"{card.get('intended_use', '')}", ""]
    lines += ["## What it is", ""]
    for key in ("architecture", "scale", "network", "features", "views", "input", "why_three_classes"):
        if density.get(key):
            lines.append(f"- {key.replace('_', ' ')}: {density[key]}")
    lines.append(f"- classes: {', '.join(density.get('classes', []))}")
    lines.append(f"- weights file: `{card.get('model_file')}`, SHA-256 `{card.get('weights_sha256')}`")
    source = card.get("source")
    if source:
        lines += ["", "## Where it comes from", ""]
        lines += [
            f"- {key.replace('_', ' ')}: {source[key]}"
            for key in ("repository", "commit", "paper", "licence", "training_data")
        ]
        lines += [f"- source file `{name}`: SHA-256 `{sha}`" for name, sha in source.get("files_sha256", {}).items()]
        conversion = card.get("conversion") or {}
        lines += [
            f"- conversion: {conversion.get('from', '')}; checked against {conversion.get('checked_against', '')}"
        ]
    reproduction = card.get("reproduction")
    if reproduction:
        lines += [
            "",
            "## Reproduction of the published sample exam",
            "",
            "| | a | b | c | d |",
            "|---|---|---|---|---|",
        ]
        for key, title in (
            ("published", "published (reference README)"),
            ("port", "this port"),
            ("port_exact_arithmetic", "exact-arithmetic histogram"),
        ):
            values = reproduction.get(key) or {}
            lines.append(f"| {title} | " + " | ".join(f"{values.get(c, float('nan')):.6g}" for c in "abcd") + " |")
        lines += [
            "",
            f"Largest difference of the port: {reproduction.get('max_abs_difference'):.2g}. "
            f"{reproduction.get('note', '')}",
        ]
    data = card.get("data")
    if data:
        lines += [
            "",
            "## Data",
            "",
            f"- {data['split_used_for_training']}",
            f"- training women by tissue: {data['training_women_by_tissue']}",
            f"- licence: {data['licence']}",
            f"- citation: {data['citation']}",
        ]
    training = card.get("training")
    if training:
        lines += [
            "",
            "## Training and cross-validation (train split only)",
            "",
            f"- rule: {training['rule']}",
            f"- read-out: {training['readout']}; final C {training['final_c']}",
            f"- chosen: **{training['chosen']}**; trained in {training['seconds']} s",
            "",
            "| features | dims | woman accuracy (sd) | woman linear kappa (sd) | image accuracy | image kappa |",
            "|---|---|---|---|---|---|",
        ]
        for kind, r in card["validation"]["cross_validation"].items():
            lines.append(
                f"| {kind} | {r['dimensions']} | {_f(r['woman_accuracy'])} ({_f(r['woman_accuracy_sd'])}) | "
                f"{_f(r['woman_kappa_linear'])} ({_f(r['woman_kappa_linear_sd'])}) | "
                f"{_f(r['image_accuracy'])} | {_f(r['image_kappa_linear'])} |"
            )
    exploration = (card.get("validation") or {}).get("exploration_before")
    if exploration:
        lines += ["", exploration]
    acceptance = card.get("acceptance") or {}
    lines += [
        "",
        "## Acceptance criterion (written before the test split was opened)",
        "",
        f"Validated if, {acceptance.get('criterion', '')}.",
        "",
    ]
    lines += [f"- {why}" for why in acceptance.get("why", [])]
    train = (card.get("metrics") or {}).get("train")
    if train:
        lines += [
            "",
            "## mini-MIAS protocol, chosen on the train split",
            "",
            f"- pseudo-exam: {train['pseudo_exam']}; rule: {train['rule']}",
            f"- chosen: input **{train['chosen']['input']}**, mapping **{train['chosen']['mapping']}**",
            f"- mean probabilities on the train women: {train['mean_probabilities']}",
            "",
            *AGREEMENT_HEADER,
        ]
        for name, figures in train["candidates"].items():
            lines += _agreement_rows(name, figures)
    test = (card.get("metrics") or {}).get("test")
    if test:
        lines += [
            "",
            f"## Sealed test split ({test['dataset']}, {test['women']} women; measured once)",
            "",
            f"Criterion committed in {test.get('criterion_commit', 'n/a')}; evaluated {test.get('evaluated_at')}.",
        ]
        if test.get("protocol"):
            lines.append(f"Protocol: {test['protocol']}.")
        lines += ["", *AGREEMENT_HEADER]
        lines += _agreement_rows("per woman (criterion)", test["woman_level"])
        lines += _agreement_rows("per breast (image), bootstrap by woman", test["breast_level"])
        lines += ["", "Per woman, label against prediction:", "", *_confusion(test["woman_level"])]
        lines += ["", f"Command: `{test.get('command', '')}`"]
    lines += ["", "## Limitations", ""] + [f"- {item}" for item in card.get("limitations", [])]
    if card.get("notes"):
        lines += ["", "## Notes (added after the figures above; nothing measured was changed)", ""]
        lines += [f"- {note}" for note in card["notes"]]
    lines += ["", "## Commands", ""] + [f"- {key}: `{value}`" for key, value in (card.get("commands") or {}).items()]
    lines += ["", f"Code commit when written: {card.get('code_commit')}", ""]
    return "\n".join(lines)
