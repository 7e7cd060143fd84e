"""What the reading viewer (mammo_platform/static/viewer/, templates/reading/_viewer.html) is given: the exam and
its prior as hanging data, marks of the reads the user may see, the AI switch's state and the next/previous study.
Rendered into the page with json_script; nothing here decides blinding (cases.reading.worklist.reads_visible_to) or
whether the AI may be shown (cases.studies.selectors): callers pass what those allowed."""

from __future__ import annotations

import math

from django.conf import settings
from django.urls import reverse

from cases.models import Image, Read, Study
from cases.studies import selectors

READ_MARK_LABELS = {"first": "1", "second": "2", "arbitration": "A"}


def _numbers(value) -> list[float]:
    values = value if isinstance(value, list) else [value]
    numbers = []
    for item in values:
        try:
            number = float(item)
        except (TypeError, ValueError):
            return []
        if not math.isfinite(number):
            return []
        numbers.append(number)
    return numbers


def _windows(attributes: dict) -> list[dict]:
    """The DICOM's own VOI windows (WindowCenter/WindowWidth, with their explanations), in modality units."""
    centres = _numbers(attributes.get("WindowCenter"))
    widths = _numbers(attributes.get("WindowWidth"))
    explanations = attributes.get("WindowCenterWidthExplanation") or []
    if not isinstance(explanations, list):
        explanations = [explanations]
    windows = []
    for index, (centre, width) in enumerate(zip(centres, widths, strict=False)):
        if width < 1:
            continue  # not a window (PS3.3 C.11.2.1.2: width >= 1)
        name = str(explanations[index]).strip().title() if index < len(explanations) and explanations[index] else ""
        windows.append({"label": f"DICOM {name.lower() or f'window {index + 1}'}", "center": centre, "width": width})
    return windows


def _spacing(value) -> list[float] | None:
    numbers = _numbers(value) if isinstance(value, list) else []
    return numbers if len(numbers) == 2 and all(n > 0 for n in numbers) else None


def viewer_image(image: Image, *, with_ai: bool, with_heatmap: bool | None = None) -> dict:
    """with_ai: the user may see this image's AI result now; with_heatmap: and it has a heatmap to overlay (a model
    whose runtime gives none has a score only). Default: as with_ai."""
    with_heatmap = with_ai if with_heatmap is None else with_ai and with_heatmap
    attributes = image.dicom_attributes or {}
    slope = _numbers(attributes.get("RescaleSlope", 1)) or [1.0]
    intercept = _numbers(attributes.get("RescaleIntercept", 0)) or [0.0]
    return {
        "id": image.pk,
        "laterality": image.laterality,
        "view": image.view,
        "rows": image.rows,
        "columns": image.columns,
        "photometric": image.photometric_interpretation or "MONOCHROME2",
        "slope": slope[0] or 1.0,
        "intercept": intercept[0],
        "patientOrientation": attributes.get("PatientOrientation"),
        "voi": _windows(attributes),
        # (row, column) mm per pixel when the file says (PixelSpacing or ImagerPixelSpacing): the ruler's unit.
        "pixelSpacing": _spacing(image.pixel_spacing_mm),
        "pixelsUrl": reverse("cases:image_file", args=[image.pk, "pixels"]),
        "overlayUrl": reverse("cases:image_file", args=[image.pk, "overlay"]) if with_heatmap else None,
        "aiResult": with_ai,
    }


def viewer_study(study: Study, *, role: str, user, show_ai: bool) -> dict:
    images = []
    for image in study.images.all():
        prediction = selectors.image_current_prediction(image, user=user) if show_ai and role == "current" else None
        # A model without a heatmap: its result is shown, with nothing to overlay.
        images.append(
            viewer_image(
                image, with_ai=prediction is not None, with_heatmap=bool(prediction and prediction.has_heatmap)
            )
        )
    return {
        "id": study.pk,
        "role": role,
        "date": study.study_date.isoformat() if study.study_date else study.created_at.date().isoformat(),
        "images": images,
    }


def viewer_marks(reads: list[Read]) -> list[dict]:
    """Marks of reads the user may see (already filtered by reads_visible_to), in original pixels."""
    marks = []
    for read in reads:
        for assessment in read.assessments.all():
            if assessment.mark_image_id is None or assessment.mark_row is None:
                continue
            marks.append(
                {
                    "image": assessment.mark_image_id,
                    "row": assessment.mark_row,
                    "column": assessment.mark_column,
                    "label": READ_MARK_LABELS[read.kind],
                    "title": f"{read.get_kind_display()} ({read.reader}): BI-RADS {assessment.birads}",
                }
            )
    return marks


def viewer_config(
    *,
    user,
    study: Study,
    reads: list[Read],
    markable: bool,
    show_ai: bool,
    ai_locked: bool = False,
    ai_open: bool = False,
    navigation: dict | None = None,
    ai_reveal_url: str = "",
    csrf_token: str = "",
) -> dict:
    """show_ai: the user may see this study's AI now; ai_locked: the AI exists for this read but waits for the
    reader's first impression (the page then holds no AI result at all); ai_open: on when the page opens;
    ai_reveal_url: where the AI switch posts (with csrf_token) when it puts the AI on screen in a read in progress."""
    prior = selectors.study_prior(user=user, study=study)
    current = viewer_study(study, role="current", user=user, show_ai=show_ai and not ai_locked)
    studies = [current]
    if prior is not None:
        studies.append(viewer_study(prior, role="prior", user=user, show_ai=False))
    has_ai = any(image["aiResult"] for image in current["images"])
    return {
        "studies": studies,
        "layout": "four",
        "markable": markable,
        "marks": viewer_marks(reads),
        "ai": {
            "available": ai_locked or (show_ai and has_ai),
            "on": bool(ai_open and show_ai and has_ai and not ai_locked),
            "locked": ai_locked,
            "lockedMessage": "The AI is shown once you have recorded your first impression." if ai_locked else "",
            "opacity": 0.5,
            "revealUrl": ai_reveal_url if show_ai and has_ai and not ai_locked else "",
        },
        "csrfToken": csrf_token,
        "navigation": navigation or {},
        "rendering": settings.VIEWER_RENDERING,
    }


def image_viewer_config(*, image: Image, show_ai: bool, with_heatmap: bool = True) -> dict:
    """The image page: this one image fitted to the window (it was a preview stretched to the page's width, of which
    a laptop showed only the top), with its heatmap on when the user may see it."""
    study = image.study
    entry = {
        "id": study.pk,
        "role": "current",
        "date": study.study_date.isoformat() if study.study_date else study.created_at.date().isoformat(),
        "images": [viewer_image(image, with_ai=show_ai, with_heatmap=with_heatmap)],
    }
    return {
        "studies": [entry],
        "layout": "all",
        "markable": False,
        "marks": [],
        "ai": {"available": show_ai, "on": show_ai, "locked": False, "lockedMessage": "", "opacity": 0.5},
        "navigation": {},
        "rendering": settings.VIEWER_RENDERING,
    }


def read_navigation(*, user, read: Read) -> dict:
    """Previous and next study for a reader: their reads in the order they took them; after the last one, the
    worklist (to take the next study)."""
    own = list(
        Read.objects.filter(reader=user, kind__in=Read.DOUBLE).order_by("claimed_at", "pk").values_list("pk", flat=True)
    )
    index = own.index(read.pk) if read.pk in own else -1
    previous = reverse("reading:read", args=[own[index - 1]]) if index > 0 else None
    following = own[index + 1] if 0 <= index < len(own) - 1 else None
    return {
        "previous": previous,
        "next": reverse("reading:read", args=[following]) if following else reverse("reading:worklist"),
    }


def arbitration_navigation(*, study: Study) -> dict:
    """Previous and next study awaiting arbitration (by study number)."""
    waiting = list(Study.objects.filter(status=Study.Status.ARBITRATION).order_by("pk").values_list("pk", flat=True))
    index = waiting.index(study.pk) if study.pk in waiting else -1
    previous = waiting[index - 1] if index > 0 else None
    following = waiting[index + 1] if 0 <= index < len(waiting) - 1 else None
    return {
        "previous": reverse("reading:arbitrate", args=[previous]) if previous else None,
        "next": reverse("reading:arbitrate", args=[following]) if following else None,
    }
