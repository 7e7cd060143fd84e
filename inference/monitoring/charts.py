"""The monitoring charts as inline SVG made on the server (no script: the site's CSP allows none inline, and SVG
presentation attributes are not styles). One small line chart per metric over days, with its control limits."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 14, 28


@dataclass
class Limit:
    value: float
    label: str
    colour: str = "#b00020"


def line_chart(
    *, title: str, days: list[str], values: list[float | None], limits: list[Limit] = (), y_max: float | None = None
) -> SafeString:
    """An SVG line chart of `values` (None: no point) over `days`, horizontal `limits` dashed; accessible: a title,
    and a description listing the last value."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    top = max([v for _, v in points] + [lim.value for lim in limits] + [y_max or 0.0, 1e-9])
    top = y_max if y_max is not None and y_max >= top else top * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(days) - 1, 1)

    def x(i: int) -> float:
        return LEFT + plot_w * i / n

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(max(v / top, 0.0), 1.0))

    last = f"last value {points[-1][1]:.4g} on {days[points[-1][0]]}" if points else "no values yet"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title><desc>{escape(last)}</desc>",
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#444"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" font-size="10" text-anchor="end">{top:.3g}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" font-size="10" text-anchor="end">0</text>',
    ]
    if days:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="10">{escape(days[0])}</text>')
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">{escape(days[-1])}</text>'
        )
    for lim in limits:
        parts.append(
            f'<line class="limit" x1="{LEFT}" y1="{y(lim.value):.1f}" x2="{WIDTH - RIGHT}" y2="{y(lim.value):.1f}" '
            f'stroke="{lim.colour}" stroke-dasharray="4 3"/>'
            f'<text x="{WIDTH - RIGHT}" y="{y(lim.value) - 3:.1f}" font-size="10" text-anchor="end" '
            f'fill="{lim.colour}">{escape(lim.label)}</text>'
        )
    if len(points) > 1:
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in points)
        parts.append(f'<polyline fill="none" stroke="#1a5fb4" stroke-width="1.5" points="{path}"/>')
    for i, v in points:
        over = any(v > lim.value for lim in limits)
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{"#b00020" if over else "#1a5fb4"}">'
            f"<title>{escape(days[i])}: {v:.4g}</title></circle>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every text above is escaped; numbers are formatted)


def monitoring_charts(series: dict) -> list[dict]:
    """The page's charts from monitoring_series(): flag rate, its CUSUM, PSI, KS p-value, agreement, sensitivity,
    views per exam."""
    from inference.monitoring import stats

    days = [d["day"] for d in series["days"]]

    def col(name: str) -> list:
        return [d[name] for d in series["days"]]

    baseline_rate = (series.get("baseline") or {}).get("flag_rate")
    rate_limits = (
        [Limit(baseline_rate, f"baseline {baseline_rate:.3f}", "#2e7d32")] if baseline_rate is not None else []
    )
    return [
        {
            "title": "Flag rate (studies at or above the operating point)",
            "svg": line_chart(title="Flag rate", days=days, values=col("flag_rate"), limits=rate_limits, y_max=1.0),
        },
        {
            "title": f"CUSUM of the flag rate (upper), decision limit h = {stats.CUSUM_H}",
            "svg": line_chart(
                title="CUSUM of the flag rate (upper)",
                days=days,
                values=col("cusum_upper"),
                limits=[Limit(stats.CUSUM_H, f"h = {stats.CUSUM_H}")],
            ),
        },
        {
            "title": f"CUSUM of the flag rate (lower), decision limit h = {stats.CUSUM_H}",
            "svg": line_chart(
                title="CUSUM of the flag rate (lower)",
                days=days,
                values=col("cusum_lower"),
                limits=[Limit(stats.CUSUM_H, f"h = {stats.CUSUM_H}")],
            ),
        },
        {
            "title": "Score PSI against the baseline",
            "svg": line_chart(
                title="Score PSI",
                days=days,
                values=col("psi"),
                limits=[
                    Limit(stats.PSI_WATCH, f"watch {stats.PSI_WATCH}", "#e65100"),
                    Limit(stats.PSI_ACT, f"act {stats.PSI_ACT}"),
                ],
            ),
        },
        {
            "title": "Score KS statistic D against the baseline",
            "svg": line_chart(title="KS statistic", days=days, values=col("ks_statistic"), y_max=1.0),
        },
        {
            "title": "AI-reader agreement per breast (AI flag vs the final decision's recall)",
            "svg": line_chart(title="Agreement per breast", days=days, values=col("agreement_breast"), y_max=1.0),
        },
        {
            "title": "Outcome-based sensitivity (malignant breasts the AI flagged)",
            "svg": line_chart(title="Sensitivity", days=days, values=col("sensitivity"), y_max=1.0),
        },
        {
            "title": "Views per exam (images scored per study)",
            "svg": line_chart(title="Views per exam", days=days, values=col("views_per_exam")),
        },
    ]
