"""The cut-off sweeps of the strategies report as PNGs, drawn once when the report is computed (pages serve the
stored bytes). matplotlib's Agg canvas, no pyplot: no global state in the worker."""

from __future__ import annotations

import io

EARLIER = {"color": "#8a96a8", "linestyle": "--", "linewidth": 1.5}
LATER = {"color": "#1f5fa8", "linestyle": "-", "linewidth": 2}
CHOSEN = {"marker": "o", "color": "#b3261e", "markersize": 8, "linestyle": "none"}
BASELINE = {"marker": "s", "color": "#1e7b3a", "markersize": 7, "linestyle": "none"}


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.4), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, 2)


def _png(figure) -> bytes:
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _points(curve: dict, x_key: str, y_key: str, *, x_scale: float = 1, y_scale: float = 1):
    """The curve's (x, y) pairs where both are defined, and the chosen cut-off's pair if it has one."""
    pairs = [
        (x * x_scale, y * y_scale)
        for x, y in zip(curve[x_key], curve[y_key], strict=True)
        if x is not None and y is not None
    ]
    chosen = None
    if curve.get("chosen_cutoff") is not None and curve["cutoffs"]:
        # The first swept cut-off at or above the chosen one gives the same decisions on these screens.
        index = next((i for i, c in enumerate(curve["cutoffs"]) if c >= curve["chosen_cutoff"]), None)
        if index is not None and curve[x_key][index] is not None and curve[y_key][index] is not None:
            chosen = (curve[x_key][index] * x_scale, curve[y_key][index] * y_scale)
    return pairs, chosen


def _draw(ax, sweeps: dict, x_key: str, y_key: str, *, x_scale: float = 1, y_scale: float = 1) -> bool:
    drawn = False
    for period, style in (("earlier", EARLIER), ("later", LATER)):
        curve = sweeps[period]
        pairs, chosen = _points(curve, x_key, y_key, x_scale=x_scale, y_scale=y_scale)
        if not pairs:
            continue
        drawn = True
        label = f"{period.capitalize()} period ({curve['screens']:,} screens, {curve['cancers']:,} cancers)"
        ax.plot(*zip(*pairs, strict=True), label=label, **style)
        if chosen:
            ax.plot(
                *chosen,
                label=f"Chosen cut-off, {period} period",
                **{**CHOSEN, "alpha": 0.5 + 0.5 * (period == "later")},
            )
        base_x, base_y = curve["baseline"].get(x_key), curve["baseline"].get(y_key)
        if period == "later" and base_x is not None and base_y is not None:
            ax.plot(base_x * x_scale, base_y * y_scale, label="Double reading (later period)", **BASELINE)
    if not drawn:
        ax.text(0.5, 0.5, "Not enough data", ha="center", va="center", transform=ax.transAxes, color="#666666")
    else:
        ax.legend(loc="best", fontsize=7)
    ax.grid(True, alpha=0.3)
    return drawn


def triage_png(figures: dict) -> bytes:
    """Workload against sensitivity and against recall rate, one point per swept cut-off."""
    sweeps = figures["sweeps"]["ai_triage"]
    figure, (left, right) = _figure()
    _draw(left, sweeps, "screen_reads_per_1000", "sensitivity", y_scale=100)
    left.set_xlabel("Screen reads per 1,000 screens")
    left.set_ylabel("Sensitivity (%)")
    left.set_title("AI triage: cancers found against reading workload", fontsize=10)
    _draw(right, sweeps, "screen_reads_per_1000", "recall_rate", y_scale=100)
    right.set_xlabel("Screen reads per 1,000 screens")
    right.set_ylabel("Recall rate (%)")
    right.set_title("AI triage: recalls against reading workload", fontsize=10)
    return _png(figure)


def safety_net_png(figures: dict) -> bytes:
    """Recall rate against sensitivity, and extra recalls against the cut-off (reading workload does not change);
    cut-offs adding up to 50 recalls per 1,000 screens."""
    sweeps = figures["sweeps"]["ai_safety_net"]
    figure, (left, right) = _figure()
    _draw(left, sweeps, "recall_rate", "sensitivity", x_scale=100, y_scale=100)
    left.set_xlabel("Recall rate (%)")
    left.set_ylabel("Sensitivity (%)")
    left.set_title("AI safety net: cancers found against recalls (no extra reads)", fontsize=10)
    _draw(right, sweeps, "cutoffs", "extra_recalls_per_1000")
    right.set_xlabel("AI cut-off (a cleared screen scored at or above it is recalled)")
    right.set_ylabel("Extra recalls per 1,000 screens")
    right.set_title("AI safety net: extra recalls by cut-off", fontsize=10)
    return _png(figure)
