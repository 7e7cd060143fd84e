"""PNG figures of an evaluation report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inference.benchmarks import BENCHMARKS
from inference.metrics import TASK_TITLES, task_labels

_COLOURS = {"malignant_vs_rest": "tab:red", "malignant_vs_benign": "tab:purple", "abnormal_vs_normal": "tab:blue"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(report: dict, rows: list[dict], out_dir: Path, *, examples: bool = False) -> list[Path]:
    """The report's figures. `examples` adds thumbnails of dataset images with their Grad-CAM: useful to look at,
    but they are copies of the images, so they are off by default (a report may be committed)."""
    plt = _pyplot()
    paths = [
        _roc(plt, report, rows, out_dir / "roc.png"),
        _pr(plt, report, rows, out_dir / "precision_recall.png"),
        _calibration(plt, report, rows, out_dir / "calibration.png"),
        _distribution(plt, report, rows, out_dir / "score_distribution.png"),
    ]
    if examples:
        figure = _pointing_examples(plt, rows, out_dir / "pointing_examples.png")
        if figure is not None:
            paths.append(figure)
    return paths


def _scores(rows: list[dict]) -> tuple[list[str], np.ndarray]:
    return [r["label"] for r in rows], np.array([r["probability"] for r in rows], dtype=np.float64)


def _roc(plt, report, rows, path: Path) -> Path:
    from sklearn.metrics import roc_curve

    labels, scores = _scores(rows)
    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=110)
    for task, (mask, y) in task_labels(labels).items():
        if 0 < y.sum() < len(y):
            fpr, tpr, _ = roc_curve(y, scores[mask])
            t = report["tasks"][task]
            ax.plot(
                fpr,
                tpr,
                color=_COLOURS[task],
                lw=2,
                label=f"{TASK_TITLES[task]}: AUC {t['auc']:.2f} ({t['auc_ci95'][0]:.2f}–{t['auc_ci95'][1]:.2f})",
            )
    point = report["operating_point"]
    if np.isfinite(point["sensitivity"]) and np.isfinite(point["specificity"]):
        ax.plot(
            1 - point["specificity"],
            point["sensitivity"],
            "o",
            color="black",
            ms=8,
            label=f"Validation-chosen threshold {point['threshold']:.3f} (malignant vs rest)",
        )
    bcsc = BENCHMARKS["bcsc"]
    ax.plot(
        1 - bcsc["specificity"],
        bcsc["sensitivity"],
        "*",
        color="tab:green",
        ms=14,
        label="BCSC radiologists (per exam)",
    )
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(
        xlabel="1 - specificity",
        ylabel="Sensitivity",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=f"ROC: {report['dataset']} / {report['split']}",
    )
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _pr(plt, report, rows, path: Path) -> Path:
    from sklearn.metrics import precision_recall_curve

    labels, scores = _scores(rows)
    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=110)
    for task, (mask, y) in task_labels(labels).items():
        if 0 < y.sum() < len(y):
            precision, recall, _ = precision_recall_curve(y, scores[mask])
            t = report["tasks"][task]
            ax.step(
                recall,
                precision,
                where="post",
                color=_COLOURS[task],
                lw=2,
                label=f"{TASK_TITLES[task]}: AP {t['average_precision']:.2f} "
                f"({t['average_precision_ci95'][0]:.2f}–{t['average_precision_ci95'][1]:.2f}), "
                f"prevalence {y.mean():.2f}",
            )
            ax.axhline(y.mean(), color=_COLOURS[task], ls=":", lw=1)
    ax.set(
        xlabel="Recall (sensitivity)",
        ylabel="Precision",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=f"Precision-recall: {report['dataset']} / {report['split']}",
    )
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _calibration(plt, report, rows, path: Path) -> Path:
    bins = report["calibration"]["bins"]
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(6.0, 7.0), dpi=110, gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    ax.plot([0, 1], [0, 1], ":", color="grey", label="Perfect calibration")
    if bins:
        ax.plot(
            [b["mean_predicted"] for b in bins],
            [b["observed"] for b in bins],
            "o-",
            color="tab:red",
            label=f"Model (ECE {report['calibration']['expected_calibration_error']:.3f})",
        )
        for b in bins:
            ax.annotate(
                str(b["count"]),
                (b["mean_predicted"], b["observed"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    ax.set(
        ylabel="Observed fraction malignant",
        xlim=(0, 1),
        ylim=(0, 1),
        title="Reliability of the calibrated probability (numbers: images per bin)",
    )
    ax.legend(loc="upper left", fontsize=8)
    _, scores = _scores(rows)
    hist.hist(scores, bins=20, range=(0, 1), color="tab:grey")
    hist.axvline(report["operating_point"]["threshold"], color="black", ls="--", lw=1)
    hist.set(xlabel="Calibrated probability of malignancy", ylabel="Images")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _distribution(plt, report, rows, path: Path) -> Path:
    labels, scores = _scores(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    rng = np.random.default_rng(0)
    for i, label in enumerate(("NORMAL", "BENIGN", "MALIGNANT")):
        values = scores[np.array(labels) == label]
        ax.scatter(values, i + rng.uniform(-0.15, 0.15, len(values)), s=14, alpha=0.7, label=f"{label} ({len(values)})")
    ax.axvline(report["operating_point"]["threshold"], color="black", ls="--", lw=1, label="Threshold")
    ax.set(
        yticks=[0, 1, 2], yticklabels=["normal", "benign", "malignant"], xlabel="Calibrated probability", xlim=(0, 1)
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _pointing_examples(plt, rows, path: Path, *, count: int = 8) -> Path | None:
    """Malignant images with a located lesion: image, Grad-CAM, lesion circle (green) and heatmap peak (cross)."""
    from matplotlib.patches import Circle

    chosen = [r for r in rows if r["label"] == "MALIGNANT" and r["pointing_hit"] is not None][:count]
    if not chosen:
        return None
    columns = 4
    lines = (len(chosen) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(3.0 * columns, 3.2 * lines), dpi=100, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), chosen, strict=False):
        pixels, heatmap = row["_pixels_small"], row["_heatmap_small"]
        factor = 4.0  # the stored copies keep every 4th pixel
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=1)
        ax.imshow(np.ma.masked_less(heatmap, 0.2), cmap="jet", alpha=0.4, vmin=0, vmax=1)
        for lesion in row["_record"].lesions:
            if lesion.row is not None and lesion.radius is not None:
                ax.add_patch(
                    Circle(
                        (lesion.col / factor, lesion.row / factor),
                        lesion.radius / factor,
                        fill=False,
                        color="lime" if lesion.pathology == "MALIGNANT" else "yellow",
                        lw=1.5,
                    )
                )
        peak = row["heatmap_peak"]
        ax.plot(peak["col"] / factor, peak["row"] / factor, "x", color="white", ms=10, mew=2)
        ax.set_title(
            f"{row['image_id']} p={row['probability']:.2f} {'hit' if row['pointing_hit'] else 'miss'}", fontsize=9
        )
    fig.suptitle("Grad-CAM on malignant images (circle: annotated lesion; x: heatmap maximum)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
