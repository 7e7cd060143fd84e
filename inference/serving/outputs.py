"""What an AI output may say outside the platform's own pages: the one rule for the API, the DICOM results, the
audit trail and the exports.

A model's score is a *call* only when the model is validated (inference.serving.validation): then the score is its
calibrated probability and the output says whether the image is flagged at the model's operating point. A model
that is not validated makes no call: its score is a research score, shown with the model, its version and the
sentence saying it is not validated for clinical use, and nothing that leaves the platform labels it malignant or
benign (a PACS or an API client cannot tell a research number from a diagnosis unless the output says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ScoreKind = Literal["calibrated_probability", "research_score"]
Call = Literal["flagged", "not_flagged"]

SCORE_KIND_HELP = (
    "`calibrated_probability`: the validated model's calibrated probability of malignancy; `research_score`: the "
    "score of a model that is not validated for clinical use (a number for research, not a probability to act on)."
)
CALL_HELP = (
    "Only for a validated model: `flagged` when the score is at or above the model's operating point, else "
    "`not_flagged`. Null for a model that is not validated: it makes no call."
)


@dataclass(frozen=True)
class AiOutput:
    score: float
    score_kind: ScoreKind
    operating_point: float
    call: Call | None
    validated: bool
    statement: str  # the model's validation, in one sentence for people

    def as_dict(self) -> dict:
        return {
            "score": self.score,
            "score_kind": self.score_kind,
            "operating_point": self.operating_point,
            "call": self.call,
        }


def ai_output(*, score: float, operating_point: float, validated: bool, statement: str) -> AiOutput:
    return AiOutput(
        score=score,
        score_kind="calibrated_probability" if validated else "research_score",
        operating_point=operating_point,
        call=("flagged" if score >= operating_point else "not_flagged") if validated else None,
        validated=validated,
        statement=statement,
    )


def prediction_output(prediction) -> AiOutput:
    """The output of one stored Prediction (its model version's validation decides what it may say)."""
    validation = prediction.model_version.validation
    return ai_output(
        score=float(prediction.probability),
        operating_point=float(prediction.threshold),
        validated=validation.validated,
        statement=validation.statement,
    )
