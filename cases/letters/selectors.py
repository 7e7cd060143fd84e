"""What the letters pages show: the letter list (to print, printed, all), one study's confirmed result and letters,
the site's wording with its versions."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from accounts.roles import Capability, role_can
from cases.letters.wording import PLACEHOLDERS
from cases.models import Study
from cases.models.letters import Letter, LetterTemplate, ScreeningResultConfirmation, ScreeningResultKind

SHOW = {"to_print": "To print", "printed": "Printed", "all": "All"}


def letters_list(*, show: str = "to_print", result: str = "") -> QuerySet[Letter]:
    """Letters, newest first, with whether each is its result's current letter (not made again since).
    to_print: current letters not yet printed; printed: printed ones; all: every letter ever made."""
    newer = Letter.objects.filter(confirmation=OuterRef("confirmation"), pk__gt=OuterRef("pk"))
    letters = (
        Letter.objects.select_related("confirmation__study__patient", "template", "made_by", "printed_by")
        .annotate(superseded=Exists(newer))
        .order_by("-made_at", "-pk")
    )
    if show == "to_print":
        letters = letters.filter(printed_at__isnull=True, superseded=False)
    elif show == "printed":
        letters = letters.filter(printed_at__isnull=False)
    if result in ScreeningResultKind.values:
        letters = letters.filter(confirmation__result=result)
    return letters


def study_result_panel(*, user, study: Study, screening_outcome: dict | None) -> dict | None:
    """For the study page: the confirmed result and its letters, or the confirm button for who may confirm.
    None when the user sees no screening outcome (it is shown to readers once the study is final)."""
    if screening_outcome is None:
        return None
    confirmation = ScreeningResultConfirmation.objects.select_related("confirmed_by").filter(study=study).first()
    can_see_letters = role_can(user, Capability.LETTER_VIEW)
    return {
        "confirmation": confirmation,
        "letters": list(confirmation.letters.order_by("-pk")) if confirmation and can_see_letters else [],
        "can_confirm": confirmation is None
        and bool(screening_outcome.get("result"))
        and role_can(user, Capability.RESULT_CONFIRM),
        "can_remake": confirmation is not None and role_can(user, Capability.RESULT_CONFIRM),
    }


def result_confirmation_as_dict(study: Study) -> dict | None:
    """For the study API: the confirmed result, who and when, and its letters (newest first); None until confirmed."""
    confirmation = ScreeningResultConfirmation.objects.select_related("confirmed_by").filter(study=study).first()
    if confirmation is None:
        return None
    return {
        "result": confirmation.result,
        "confirmed_by": str(confirmation.confirmed_by),
        "confirmed_at": confirmation.confirmed_at,
        "letters": [{"id": letter.pk, "reference": letter.reference, "printed_at": letter.printed_at}
                    for letter in confirmation.letters.order_by("-pk")],
    }  # fmt: skip


def letter_templates_current() -> list[dict]:
    from cases.letters.services import letter_template_current

    rows = []
    for kind in ScreeningResultKind:
        template = letter_template_current(kind.value)
        rows.append({"result": kind, "template": template, "versions": template.version})
    return rows


def letter_template_versions(result: str) -> QuerySet[LetterTemplate]:
    return LetterTemplate.objects.filter(result=result).select_related("created_by").order_by("-version")


def placeholders() -> list[tuple[str, str]]:
    return list(PLACEHOLDERS.items())
