"""The screening decision rules a read must obey, in one place: the services enforce them, the forms and the API
repeat their messages, and static/reading_form.js mirrors them in the browser (keep the two in step).

- A screening read gives BI-RADS 0, 1, 2, 4 or 5. BI-RADS 3 (probably benign) is a diagnostic category given after
  work-up; the ACR asks a screening read that needs more work-up for BI-RADS 0 (recall for assessment) instead.
  BI-RADS 6 (known biopsy-proven cancer) is not a screening outcome either.
- Recall follows from BI-RADS: 0, 4 and 5 recall; 1 and 2 are routine screening. The reader never sets it apart.
- Agreement with the AI follows from the reader's recall and the AI's per-breast call (positive at the model's
  threshold): agree when they match, override when they do not (an override needs a written reason). When the AI was
  not shown or not available the agreement is "not shown"; when the model is not validated it makes no call (its
  output is a neutral research score), so there is nothing to agree with: "not applicable".
"""

from __future__ import annotations

from cases.models import BreastAssessment
from cases.models.reading import RECALL_BIRADS, SCREENING_BIRADS

# The AI's call for one breast, as a reader met it.
AI_POSITIVE = "positive"  # validated model, highest score of the breast's views at or above its threshold
AI_NEGATIVE = "negative"  # validated model, below its threshold
AI_NO_CALL = "no_call"  # a result was shown, from a model that is not validated: a research score, no call
AI_NOT_SHOWN = "not_shown"  # no result shown: the read is given without the AI, or there is none for this breast

Agreement = BreastAssessment.Agreement
NO_CALL_AGREEMENTS = (Agreement.NOT_SHOWN, Agreement.NOT_APPLICABLE)


def birads_problem(birads: int) -> str:
    """Why a BI-RADS category cannot be a screening read's, or '' when it can."""
    if birads == 3:
        return (
            "BI-RADS 3 (probably benign) is not a screening outcome: it is given after diagnostic work-up. "
            "A screening read that needs further work-up is BI-RADS 0 (recall for assessment); "
            "use 1 or 2 for routine screening."
        )
    if birads == 6:
        return (
            "BI-RADS 6 (known biopsy-proven malignancy) is not a screening outcome. "
            "Use 0, 4 or 5 to recall, or 1 or 2 for routine screening."
        )
    if birads not in SCREENING_BIRADS:
        return "BI-RADS must be 0, 1, 2, 4 or 5 in a screening read."
    return ""


def recall_for(birads: int) -> bool:
    return birads in RECALL_BIRADS


def recall_words(recall: bool) -> str:
    return "recall for assessment" if recall else "routine screening (no recall)"


def ai_call(breast: dict | None) -> str:
    """The AI's call for one breast of cases.studies.selectors.breast_summary (None: the breast has no entry)."""
    prediction = (breast or {}).get("prediction")
    if prediction is None:
        return AI_NOT_SHOWN
    if not prediction.model_version.validation.validated:
        return AI_NO_CALL
    return AI_POSITIVE if prediction.is_malignant else AI_NEGATIVE


def agreement_for(*, recall: bool, call: str) -> str:
    if call == AI_NOT_SHOWN:
        return Agreement.NOT_SHOWN
    if call == AI_NO_CALL:
        return Agreement.NOT_APPLICABLE
    return Agreement.AGREE if recall == (call == AI_POSITIVE) else Agreement.OVERRIDE


def agreement_matches(given: str, derived: str) -> bool:
    """Whether an agreement a client sent says the same as the derived one ('' is "derive it")."""
    if not given:
        return True
    if derived in NO_CALL_AGREEMENTS:
        return given in NO_CALL_AGREEMENTS
    return given == derived
