"""Ending a screening episode: a person confirms the result the reads decided, the woman's letter is made from the
site's wording, letters are downloaded and printed (many at once), and the site edits its wording. Each is audited.

The result itself is never typed here: it is the one cases.reading.technical_recall.screening_result() derives from
the final reads, shown to the person who confirms it; the form carries the result they saw, and a result that changed
since (an addendum, an arbitration) is refused rather than confirmed unseen.
"""

from __future__ import annotations

import hashlib
import io
from datetime import date

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from pypdf import PdfWriter

from audit.services import audit_record
from cases.letters.pdf import LetterContent, letter_pdf
from cases.letters.wording import DEFAULT_WORDING, wording_check, wording_render
from cases.models import Study
from cases.models.letters import Letter, LetterTemplate, ScreeningResultConfirmation, ScreeningResultKind
from core import storage
from core.errors import ApplicationError

SIDE_WORDS = {"R": "right", "L": "left"}
DENSITY_HEADING = "Your breast density"


def letter_pdf_name(sha256: str) -> str:
    return f"letters/{sha256[:2]}/{sha256}.pdf"


# ------------------------------------------------------------------------------------------------ templates


def letter_template_current(result: str) -> LetterTemplate:
    """The site's current wording for a result; the platform's first wording (version 1) until the site edits it."""
    template = LetterTemplate.objects.filter(result=result).order_by("-version").first()
    if template is not None:
        return template
    subject, body = DEFAULT_WORDING[ScreeningResultKind(result)]
    try:
        with transaction.atomic():
            return LetterTemplate.objects.create(result=result, version=1, subject=subject, body=body)
    except IntegrityError:  # another request wrote version 1 first
        return LetterTemplate.objects.get(result=result, version=1)


def letter_template_save(*, result: str, subject: str, body: str, user) -> LetterTemplate:
    """A new version of the site's wording for a result (checked first: ApplicationError says what is wrong)."""
    if result not in ScreeningResultKind.values:
        raise ApplicationError(f"There is no result {result!r}.")
    subject, body = subject.strip(), body.replace("\r\n", "\n").strip()
    wording_check(subject=subject, body=body)
    with transaction.atomic():
        current = letter_template_current(result)
        current = LetterTemplate.objects.select_for_update().get(pk=current.pk)
        if current.subject == subject and current.body == body:
            raise ApplicationError("Nothing changed: this is the current wording.")
        template = LetterTemplate.objects.create(
            result=result, version=current.version + 1, subject=subject, body=body, created_by=user
        )
        audit_record(
            action="letter.template_changed",
            actor=user,
            obj=template,
            details={"result": result, "version": template.version, "previous_version": current.version},
        )
    return template


# ------------------------------------------------------------------------------------------------ the result


def result_confirm(*, study: Study, seen_result: str, user) -> ScreeningResultConfirmation:
    """Confirm a final study's result as the person saw it, and make the woman's letter (one transaction)."""
    from cases.reading.density import final_reader_density
    from cases.reading.technical_recall import ScreeningResult, screening_result, views_to_repeat

    with transaction.atomic():
        study = Study.objects.select_for_update(of=("self",)).select_related("patient", "episode").get(pk=study.pk)
        if ScreeningResultConfirmation.objects.filter(study=study).exists():
            raise ApplicationError("This study's result was already confirmed.")
        if study.status != Study.Status.FINAL:
            raise ApplicationError(
                f"This study is not final ({study.get_status_display().lower()}): its result is not decided yet."
            )
        reads = list(study.reads.prefetch_related("technical_recalls"))
        result = screening_result(study, reads=reads)
        if result is None:
            raise ApplicationError("This study has no screening result to confirm.")
        if seen_result != result:
            raise ApplicationError(
                f"The result changed since the page was shown: it is now '{ScreeningResult.LABELS[result]}'. "
                "Read it again before confirming."
            )
        density = final_reader_density(study, reads=reads)
        confirmation = ScreeningResultConfirmation.objects.create(
            study=study,
            episode=study.episode,
            result=result,
            views_to_repeat=[
                {"laterality": t.laterality, "view": t.view, "reason": t.reason, "detail": t.detail}
                for t in views_to_repeat(study, reads=reads)
            ],
            density_category=density.category if density else "",
            density_statement=density.statement if density else "",
            confirmed_by=user,
        )
        audit_record(
            action="result.confirmed",
            actor=user,
            obj=confirmation,
            study_id=study.pk,
            details={
                "result": result,
                "episode_id": study.episode_id,
                "views_to_repeat": [f"{v['laterality']}{v['view']}" for v in confirmation.views_to_repeat],
                "density": confirmation.density_category,
            },
        )
        letter_make(confirmation=confirmation, user=user)
    return confirmation


# ------------------------------------------------------------------------------------------------ letters


def _woman_name(pn: str) -> str:
    """'SMITH^JANE' -> 'Jane Smith' (DICOM PN: family^given^middle^prefix^suffix)."""
    parts = [p.strip() for p in (pn or "").split("^")]
    family, given = (parts + ["", ""])[:2]
    name = " ".join(p for p in (given, family) if p)
    return name.title() if name.isupper() else name


def _views_words(views: list[dict]) -> str:
    words = [f"{SIDE_WORDS.get(v['laterality'], v['laterality'])} {v['view']}" for v in views]
    if len(words) <= 1:
        return "".join(words) + (" view" if words else "")
    return ", ".join(words[:-1]) + " and " + words[-1] + " views"


def _day_words(day: date | None) -> str:
    return f"{day.day} {day:%B %Y}" if day else "your appointment"


def letter_make(*, confirmation: ScreeningResultConfirmation, user) -> Letter:
    """The woman's letter from the current wording for her result, stored as PDF (a new Letter each time)."""
    study = confirmation.study
    patient = study.patient
    template = letter_template_current(confirmation.result)
    name = _woman_name(patient.name) or "Madam"
    screened = study.study_date or (timezone.localdate(study.appointment.starts_at) if study.appointment_id else None)
    values = {
        "name": name,
        "screening_date": _day_words(screened),
        "views_to_repeat": _views_words(confirmation.views_to_repeat),
        "service_name": settings.SCREENING_SERVICE_NAME,
        "service_phone": settings.SCREENING_SERVICE_PHONE or "the number on your appointment letter",
    }
    subject = wording_render(template.subject, values).strip()
    text = wording_render(template.body, values).strip()
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    density_paragraphs = [confirmation.density_statement] if confirmation.density_statement else []
    recipient = [name, f"Patient ID {patient.patient_id}"]
    if patient.birth_date:
        recipient.append(f"Date of birth {_day_words(patient.birth_date)}")
    with transaction.atomic():
        letter = Letter.objects.create(
            confirmation=confirmation, template=template, recipient=name, subject=subject, text=text,
            pdf_name="", pdf_sha256="", made_by=user,
        )  # fmt: skip
        made_on = timezone.localdate()
        pdf = letter_pdf(
            LetterContent(
                reference=letter.reference,
                date_text=_day_words(made_on),
                service_name=settings.SCREENING_SERVICE_NAME,
                service_address=[
                    line.strip() for line in settings.SCREENING_SERVICE_ADDRESS.split("|") if line.strip()
                ],
                service_phone=settings.SCREENING_SERVICE_PHONE,
                recipient=recipient,
                subject=subject,
                paragraphs=paragraphs,
                density_heading=DENSITY_HEADING if density_paragraphs else "",
                density_paragraphs=density_paragraphs,
            )
        )
        sha = hashlib.sha256(pdf).hexdigest()
        storage.put(letter_pdf_name(sha), pdf)
        letter.pdf_name, letter.pdf_sha256 = letter_pdf_name(sha), sha
        letter.save(update_fields=["pdf_name", "pdf_sha256"])
        audit_record(
            action="letter.made",
            actor=user,
            obj=letter,
            study_id=study.pk,
            details={
                "reference": letter.reference,
                "result": confirmation.result,
                "template_version": template.version,
                "pdf_sha256": sha,
                "density_statement": bool(density_paragraphs),
            },
        )
    return letter


def letter_pdf_bytes(letter: Letter) -> bytes:
    """The stored PDF, checked against the hash recorded when it was made."""
    data = storage.read(letter.pdf_name)
    if hashlib.sha256(data).hexdigest() != letter.pdf_sha256:
        raise ApplicationError(f"Letter {letter.reference}: the stored PDF is not the one made (its hash differs).")
    return data


def letter_downloaded(*, letter: Letter, user) -> bytes:
    data = letter_pdf_bytes(letter)
    audit_record(
        action="letter.downloaded", actor=user, obj=letter, study_id=letter.confirmation.study_id,
        details={"reference": letter.reference},
    )  # fmt: skip
    return data


def letters_print(*, letters: list[Letter], user) -> bytes:
    """One PDF of the letters, in the order given, for printing; each is marked printed (first time) and audited."""
    if not letters:
        raise ApplicationError("Choose at least one letter to print.")
    writer = PdfWriter()
    for letter in letters:
        writer.append(io.BytesIO(letter_pdf_bytes(letter)))
    out = io.BytesIO()
    writer.write(out)
    now = timezone.now()
    with transaction.atomic():
        Letter.objects.filter(pk__in=[letter.pk for letter in letters], printed_at__isnull=True).update(
            printed_at=now, printed_by=user
        )
        audit_record(
            action="letters.printed",
            actor=user,
            object_type="letter",
            details={"references": [letter.reference for letter in letters], "count": len(letters)},
        )
    return out.getvalue()
