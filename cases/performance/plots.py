"""Figures of the performance pages, drawn with matplotlib's Agg canvas (no pyplot: no global state between
requests)."""

from __future__ import annotations

import io

from cases.performance.performance import Benchmark, RocCurve


def roc_png(curve: RocCurve, *, benchmark: Benchmark) -> bytes:
    """The ROC curve as a PNG, drawn with matplotlib's Agg canvas (no pyplot: no global state between requests)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 5), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle=":", color="#999999", linewidth=1, label="Chance")
    ax.plot(
        curve.false_positive_rate,
        curve.true_positive_rate,
        color="#1f5fa8",
        linewidth=2,
        label=f"AI per breast (AUC {curve.auc:.3f})",
    )
    if curve.operating_point is not None:
        ax.plot(*curve.operating_point, "o", color="#b3261e", markersize=8, label="AI at its threshold")
    ax.plot(
        1 - benchmark.specificity,
        benchmark.sensitivity,
        "s",
        color="#1e7b3a",
        markersize=7,
        label="BCSC radiologists (per exam)",
    )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity (false-positive rate)")
    ax.set_ylabel("Sensitivity (true-positive rate)")
    ax.set_title(f"{curve.positives} malignant, {curve.negatives} non-malignant breasts", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
