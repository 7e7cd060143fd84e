"""The site's letter wording: the platform's first wording for each result, the placeholders a template may use, and
rendering a template's text for one woman.

Templates use Django's template language in an engine of their own: no loaders (no {% include %} or {% extends %} of
files), no tag libraries beyond the built-in ones, no autoescaping (the text goes into a PDF, not HTML; the PDF maker
escapes it). A template is checked when saved: it must parse, and use only the placeholders below, so that a typo
never reaches a woman as an empty gap.
"""

from __future__ import annotations

from django.template import Context, Engine, TemplateDoesNotExist, TemplateSyntaxError

from cases.models.letters import ScreeningResultKind
from core.errors import ApplicationError

PLACEHOLDERS: dict[str, str] = {
    "name": "The woman's name as her letter is addressed (given name, family name).",
    "screening_date": "The day her images were taken, e.g. 3 December 2026.",
    "views_to_repeat": "Technical recall: the views to take again, e.g. 'right CC and left MLO'.",
    "service_name": "The screening service (SCREENING_SERVICE_NAME).",
    "service_phone": "Its telephone number (SCREENING_SERVICE_PHONE).",
}

_ENGINE = Engine(loaders=[], libraries={}, autoescape=False, string_if_invalid="\x00%s\x00")

_CLOSING = "Yours sincerely,\n\n{{ service_name }}"
_SYMPTOMS = (
    "Screening does not find every cancer. If you notice a change in either breast before your next invitation (a "
    "lump, a change in the skin or the nipple, a discharge or a pain that does not go away), please see your doctor "
    "without waiting for your next screening."
)
DEFAULT_WORDING: dict[str, tuple[str, str]] = {
    ScreeningResultKind.ROUTINE: (
        "Your breast screening result",
        "Dear {{ name }},\n\n"
        "Thank you for coming for breast screening on {{ screening_date }}. Two readers looked at your mammogram "
        "(breast X-ray) and we are pleased to tell you that it showed no sign of cancer.\n\n"
        "We will invite you again for screening in the usual way.\n\n" + _SYMPTOMS + "\n\n" + _CLOSING,
    ),
    ScreeningResultKind.TECHNICAL: (
        "Some of your breast X-rays need to be taken again",
        "Dear {{ name }},\n\n"
        "Thank you for coming for breast screening on {{ screening_date }}. Some of your X-rays were not clear "
        "enough for us to read fully, so we need to take them again: {{ views_to_repeat }}. This happens for "
        "technical reasons (for example the position of the breast or a small movement) and does not mean that we "
        "found anything wrong.\n\n"
        "Please telephone us on {{ service_phone }} to arrange a time. It will take only a few minutes.\n\n" + _CLOSING,
    ),
    ScreeningResultKind.ASSESSMENT: (
        "Your breast screening: we would like to see you again",
        "Dear {{ name }},\n\n"
        "Thank you for coming for breast screening on {{ screening_date }}. We would like you to come back to a "
        "breast clinic for more tests, so that we can look more closely at an area of your mammogram.\n\n"
        "Most women who come back for more tests do not have breast cancer. The tests may include more X-rays, an "
        "ultrasound scan and an examination by a specialist.\n\n"
        "Please telephone us on {{ service_phone }} if you cannot come at the time in the enclosed appointment, or "
        "if you have any questions.\n\n" + _CLOSING,
    ),
}


def wording_check(*, subject: str, body: str) -> None:
    """ApplicationError saying what is wrong, when the wording would not make a complete letter."""
    if not subject.strip():
        raise ApplicationError("The subject is empty.")
    if not body.strip():
        raise ApplicationError("The letter's text is empty.")
    for label, text in (("subject", subject), ("text", body)):
        try:
            rendered = _ENGINE.from_string(text).render(Context(dict.fromkeys(PLACEHOLDERS, "x"), autoescape=False))
        except (TemplateSyntaxError, TemplateDoesNotExist) as exc:
            raise ApplicationError(f"The {label} cannot be used: {exc}") from exc
        unknown = sorted(set(rendered.split("\x00")[1::2]))
        if unknown:
            raise ApplicationError(
                f"The {label} uses {', '.join('{{ ' + u + ' }}' for u in unknown)}, which the platform does not know. "
                f"Placeholders: {', '.join(PLACEHOLDERS)}."
            )


def wording_render(text: str, values: dict[str, str]) -> str:
    """The template text with the woman's values (a template saved through wording_check)."""
    rendered = _ENGINE.from_string(text).render(Context(values, autoescape=False))
    return rendered.replace("\x00", "")
