"""Numbers as people read them: models store probabilities and thresholds as full doubles (0.41999999999999998),
and `{{ value }}` would print all 17 digits. Pages round here; the API and the JSON exports keep full precision.

    {% load figures %}  {{ threshold|score }} -> "0.420"   {{ rate|percent }} -> "11.6 %"
"""

from __future__ import annotations

from django import template

register = template.Library()

SCORE_DECIMALS = 3  # probabilities, thresholds, AUCs: a thousandth is finer than any of them is known
PERCENT_DECIMALS = 1  # screening programmes read rates to a tenth of a percentage point


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@register.filter
def score(value) -> str:
    """A probability, threshold or AUC in [0, 1] to 3 decimals; anything not a number is shown as it is."""
    number = _number(value)
    return value if number is None else f"{number:.{SCORE_DECIMALS}f}"


@register.filter
def scores(values, separator: str = ", ") -> str:
    """Several of them (e.g. the thresholds of more than one model version), each to 3 decimals."""
    return separator.join(score(v) for v in values)


@register.filter
def percent(value) -> str:
    """A proportion in [0, 1] as a percentage to 1 decimal: 0.1164 -> "11.6 %"."""
    number = _number(value)
    return value if number is None else f"{100 * number:.{PERCENT_DECIMALS}f} %"
