"""Is a density model validated? Read from its card, by the acceptance criterion the card itself wrote down before
its sealed-test figures existed (the git history shows the order). One rule, used by the API, the cards and the
README section; the malignancy models' rule is inference.serving.validation.

A density card carries:
- "acceptance": {"criterion": the sentence, "kappa_ci95_low_at_least": k, "accuracy_ci95_low_at_least": a,
  "unit": "woman", "dataset": ..., "split": "test"};
- "metrics"."test": {"women", "woman_level": {"kappa_linear", "kappa_linear_ci95", "accuracy", "accuracy_ci95",
  ...}, "breast_level": {...}, ...} once measured (evaluate_density_model --split test); the criterion reads the
  woman-level figures.
Validated when the test figures exist and both lower bounds reach the criterion's; otherwise the output is a
research estimate, shown as such.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DensityValidation:
    validated: bool
    criterion: str = ""
    kappa: float | None = None
    kappa_low: float | None = None
    kappa_high: float | None = None
    accuracy: float | None = None
    accuracy_low: float | None = None
    accuracy_high: float | None = None
    where: str = ""  # "mini-MIAS test split, 49 women"
    kappa_floor: float | None = None
    accuracy_floor: float | None = None

    @property
    def figures(self) -> str:
        if self.kappa is None or self.accuracy is None:
            return ""
        return (
            f"linearly weighted kappa {self.kappa:.2f} (95 % CI {self.kappa_low:.2f}–{self.kappa_high:.2f}), "
            f"accuracy {self.accuracy:.0%} ({self.accuracy_low:.0%}–{self.accuracy_high:.0%}); {self.where}"
        )

    @property
    def statement(self) -> str:
        """One line for people, beside every density the AI gives."""
        if self.kappa is None:
            return "Research estimate: this density model has no sealed-test figures yet; not validated."
        if self.validated:
            return f"Validated density model: {self.figures}."
        return (
            f"Research estimate, not validated: {self.figures}; its card's criterion (95 % CI lower bounds: kappa >= "
            f"{self.kappa_floor}, accuracy >= {self.accuracy_floor}) is not met."
        )

    @property
    def short(self) -> str:
        if self.kappa is None:
            return "research estimate (no test figures)"
        state = "validated" if self.validated else "research estimate"
        return f"{state} (test kappa {self.kappa:.2f}, {self.kappa_low:.2f}–{self.kappa_high:.2f})"

    def as_dict(self) -> dict:
        return {
            "validated": self.validated,
            "criterion": self.criterion,
            "kappa_linear": self.kappa,
            "kappa_linear_ci95": [self.kappa_low, self.kappa_high] if self.kappa is not None else None,
            "accuracy": self.accuracy,
            "accuracy_ci95": [self.accuracy_low, self.accuracy_high] if self.accuracy is not None else None,
            "where": self.where,
            "statement": self.statement,
        }


def density_validation(card: dict | None) -> DensityValidation:
    card = card or {}
    acceptance = card.get("acceptance") or {}
    criterion = str(acceptance.get("criterion") or "")
    test = (card.get("metrics") or {}).get("test") or {}
    woman = test.get("woman_level") or {}
    kappa_ci, accuracy_ci = woman.get("kappa_linear_ci95") or [], woman.get("accuracy_ci95") or []
    measured = (
        woman.get("kappa_linear") is not None
        and woman.get("accuracy") is not None
        and len(kappa_ci) == 2
        and len(accuracy_ci) == 2
        and None not in (*kappa_ci, *accuracy_ci)
    )
    if not measured:
        return DensityValidation(validated=False, criterion=criterion)
    kappa_floor = acceptance.get("kappa_ci95_low_at_least")
    accuracy_floor = acceptance.get("accuracy_ci95_low_at_least")
    validated = (
        kappa_floor is not None
        and accuracy_floor is not None
        and float(kappa_ci[0]) >= float(kappa_floor)
        and float(accuracy_ci[0]) >= float(accuracy_floor)
    )
    where = f"{test.get('dataset', '')} {test.get('split', '')} split, {test.get('women', '?')} women".strip()
    return DensityValidation(
        validated=validated,
        criterion=criterion,
        kappa=float(woman["kappa_linear"]),
        kappa_low=float(kappa_ci[0]),
        kappa_high=float(kappa_ci[1]),
        accuracy=float(woman["accuracy"]),
        accuracy_low=float(accuracy_ci[0]),
        accuracy_high=float(accuracy_ci[1]),
        where=where,
        kappa_floor=kappa_floor,
        accuracy_floor=accuracy_floor,
    )
