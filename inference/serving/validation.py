"""Is a model validated? Read from its model card's sealed-test figures, the one rule used everywhere.

A model is validated when its card carries test figures and the 95 % confidence interval of its headline test AUC
lies entirely above 0.5 (chance). A model without test figures, or whose interval reaches 0.5, is "not validated":
activating it needs an administrator's explicit confirmation, and its outputs are shown as a neutral research
score (no malignant/benign label, no triage sort by default) with one line saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

# The headline task, in order of preference: malignant vs benign is what the shipped card and its reports quote;
# malignant vs everything else is what a screening population is closer to.
HEADLINE_TASKS = (("malignant_vs_benign", "malignant vs benign"), ("malignant_vs_rest", "malignant vs rest"))
DATASET_NAMES = {"mini-mias": "mini-MIAS", "cbis-ddsm": "CBIS-DDSM"}


@dataclass(frozen=True)
class ModelValidation:
    validated: bool
    task: str = ""
    auc: float | None = None
    auc_low: float | None = None
    auc_high: float | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    dataset: str = ""
    images: int | None = None

    @property
    def figures(self) -> str:
        """'test AUC 0.38 (95 % CI 0.21–0.56), malignant vs benign, mini-MIAS test split, 98 images', or ''."""
        if self.auc is None:
            return ""
        text = f"test AUC {self.auc:.2f} (95 % CI {self.auc_low:.2f}–{self.auc_high:.2f}), {self.task}"
        if self.sensitivity is not None and self.specificity is not None:
            text += f"; sensitivity {self.sensitivity:.0%}, specificity {self.specificity:.0%} at its threshold"
        where = ", ".join(part for part in (self.dataset, f"{self.images} images" if self.images else "") if part)
        return f"{text}; {where}" if where else text

    @property
    def statement(self) -> str:
        """One line for people, beside every AI result."""
        if self.validated:
            return f"Validated: {self.figures}."
        if self.auc is None:
            return "Not validated: this model has no test figures. Its output is a research score, not a diagnosis."
        why = (
            "the interval lies below 0.5: worse than chance"
            if self.auc_high < 0.5
            else "the interval reaches 0.5 (chance)"
        )
        return f"Not validated: {self.figures}; {why}. Its output is a research score, not a diagnosis."

    @property
    def short(self) -> str:
        """A few words for tight places: 'not validated (test AUC 0.38, 0.21–0.56)'."""
        state = "validated" if self.validated else "not validated"
        if self.auc is None:
            return f"{state} (no test figures)"
        return f"{state} (test AUC {self.auc:.2f}, {self.auc_low:.2f}–{self.auc_high:.2f})"

    def as_dict(self) -> dict:
        return {
            "validated": self.validated,
            "task": self.task,
            "auc": self.auc,
            "auc_ci95": [self.auc_low, self.auc_high] if self.auc is not None else None,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "dataset": self.dataset,
            "images": self.images,
            "statement": self.statement,
        }


def model_validation(card: dict | None) -> ModelValidation:
    test = ((card or {}).get("metrics") or {}).get("test") or {}
    tasks = test.get("tasks") or {}
    for key, label in HEADLINE_TASKS:
        task = tasks.get(key) or {}
        interval = task.get("auc_ci95") or []
        if task.get("auc") is not None and len(interval) == 2 and None not in interval:
            point = test.get("operating_point") or {}
            split = test.get("split") or "test"
            dataset = DATASET_NAMES.get(test.get("dataset", ""), test.get("dataset", ""))
            return ModelValidation(
                validated=float(interval[0]) > 0.5,
                task=label,
                auc=float(task["auc"]),
                auc_low=float(interval[0]),
                auc_high=float(interval[1]),
                sensitivity=point.get("sensitivity"),
                specificity=point.get("specificity"),
                dataset=f"{dataset} {split} split".strip(),
                images=sum((test.get("images") or {}).values()) or None,
            )
    return ModelValidation(validated=False)
