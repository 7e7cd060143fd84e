"""The end of the screening episode (issue 23, item 6): a person confirms the result the reads decided, the woman's
letter is made as PDF from the site's wording with the density statement, letters are listed, downloaded, printed
many at once, made again after the wording changed, and every step is audited."""

from __future__ import annotations

import io

import pytest
from django.db import DatabaseError, transaction
from pypdf import PdfReader

from audit.models import AuditEvent
from cases.letters.services import letter_template_current
from cases.letters.wording import wording_check
from cases.models import Letter, LetterTemplate, ScreeningResultConfirmation, Study
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.density import DENSE_STATEMENT, NOT_DENSE_STATEMENT
from cases.reading.technical_recall import TechnicalRecallInput
from core import storage
from core.errors import ApplicationError
from tests.conftest import make_user
from tests.test_reading import both, make_study


@pytest.fixture
def readers(db):
    return make_user("radiologist", "ann"), make_user("radiologist", "ben")


def _final(technologist, readers, *, tag, density=("b", "b"), repeats=(), recall=False) -> Study:
    study = make_study(technologist, tag=tag)
    for reader, dens, rep in zip(readers, density, (list(repeats), []), strict=True):
        read = claims.read_claim(study_id=study.pk, user=reader)
        reading.read_submit(read_id=read.pk, user=reader, assessments=both(recall), density=dens,
                            technical_recalls=rep)  # fmt: skip
    study.refresh_from_db()
    assert study.status == Study.Status.FINAL
    return study


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.django_db
def test_a_lead_confirms_the_result_and_the_letter_says_it_with_the_density_statement(
    technologist, readers, lead, client
):
    study = _final(technologist, readers, tag="71")
    client.force_login(lead)
    page = client.get(f"/studies/{study.pk}/")
    assert "Confirm this result and make the letter" in page.content.decode()
    done = client.post(f"/letters/studies/{study.pk}/confirm/", {"seen_result": "routine_recall"}, follow=True)
    assert "Result confirmed: Routine recall" in done.content.decode()
    confirmation = ScreeningResultConfirmation.objects.get(study=study)
    assert (confirmation.result, confirmation.density_category, confirmation.confirmed_by) == (
        "routine_recall", "b", lead)  # fmt: skip
    letter = confirmation.letters.get()
    pdf = client.get(f"/letters/{letter.pk}/letter.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert f'filename="{letter.reference}.pdf"' in pdf["Content-Disposition"]
    text = _flat(_text(pdf.content))
    assert "Dear Patient Test" in text and "15 January 2024" in text and "no sign of cancer" in text
    assert "Your breast density" in text and _flat(NOT_DENSE_STATEMENT) in text
    assert letter.reference in text and "Breast Screening Service" in text
    assert storage.read(letter.pdf_name) == pdf.content
    actions = list(AuditEvent.objects.filter(study_id=study.pk).values_list("action", flat=True))
    assert {"result.confirmed", "letter.made", "letter.downloaded"} <= set(actions)
    made = AuditEvent.objects.get(action="letter.made")
    assert made.details["pdf_sha256"] == letter.pdf_sha256 and made.details["template_version"] == 1
    again = client.post(f"/letters/studies/{study.pk}/confirm/", {"seen_result": "routine_recall"}, follow=True)
    assert "already confirmed" in again.content.decode()
    assert ScreeningResultConfirmation.objects.count() == 1 and Letter.objects.count() == 1


@pytest.mark.django_db
def test_technical_recall_letter_names_the_views_and_dense_breasts_get_the_dense_statement(
    technologist, readers, lead, settings
):
    settings.SCREENING_SERVICE_PHONE = "0113 496 0000"
    repeat = [TechnicalRecallInput("R", "CC", "motion")]
    study = _final(technologist, readers, tag="72", density=("c", "b"), repeats=repeat)
    from cases.letters.services import result_confirm

    confirmation = result_confirm(study=study, seen_result="technical_recall", user=lead)
    assert confirmation.views_to_repeat == [{"laterality": "R", "view": "CC", "reason": "motion", "detail": ""}]
    letter = confirmation.letters.get()
    text = _flat(_text(storage.read(letter.pdf_name)))
    assert "need to take them again: right CC view" in text and "0113 496 0000" in text
    assert _flat(DENSE_STATEMENT) in text
    assert letter.subject == "Some of your breast X-rays need to be taken again"


@pytest.mark.django_db
def test_a_result_not_seen_or_not_decided_is_never_confirmed(technologist, readers, lead):
    from cases.letters.services import result_confirm

    study = _final(technologist, readers, tag="73")
    with pytest.raises(ApplicationError, match="result changed since the page was shown: it is now 'Routine"):
        result_confirm(study=study, seen_result="recall_for_assessment", user=lead)
    undecided = make_study(technologist, tag="74")
    with pytest.raises(ApplicationError, match="not final"):
        result_confirm(study=undecided, seen_result="routine_recall", user=lead)
    assert not ScreeningResultConfirmation.objects.exists() and not Letter.objects.exists()


@pytest.mark.django_db
def test_who_may_confirm_see_and_print_letters(technologist, readers, lead, auditor, radiologist, client):
    study = _final(technologist, readers, tag="75")
    client.force_login(radiologist)
    assert client.post(f"/letters/studies/{study.pk}/confirm/", {"seen_result": "routine_recall"}).status_code == 403
    assert client.get("/letters/").status_code == 403
    assert "Confirm this result" not in client.get(f"/studies/{study.pk}/").content.decode()
    client.force_login(lead)
    client.post(f"/letters/studies/{study.pk}/confirm/", {"seen_result": "routine_recall"})
    letter = Letter.objects.get()
    client.force_login(technologist)  # the clinic prints; it does not confirm
    assert client.get("/letters/").status_code == 200
    assert client.get(f"/letters/{letter.pk}/letter.pdf").status_code == 200
    assert client.get("/letters/templates/").status_code == 403
    client.force_login(auditor)
    assert client.get(f"/letters/{letter.pk}/letter.pdf").status_code == 403
    client.logout()
    anonymous = client.get(f"/letters/{letter.pk}/letter.pdf")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert client.post("/letters/print/", {"letter": [letter.pk]}).status_code == 302
    assert Letter.objects.get().printed_at is None


@pytest.mark.django_db
def test_printing_many_letters_makes_one_pdf_and_marks_them_printed(technologist, readers, lead, client):
    from cases.letters.services import result_confirm

    letters = []
    for tag in ("81", "82", "83"):
        confirmation = result_confirm(study=_final(technologist, readers, tag=tag), seen_result="routine_recall",
                                      user=lead)  # fmt: skip
        letters.append(confirmation.letters.get())
    client.force_login(technologist)
    listed = client.get("/letters/").content.decode()
    assert all(letter.reference in listed for letter in letters) and "Print every letter still to print (3)" in listed
    chosen = client.post("/letters/print/", {"letter": [letters[2].pk, letters[0].pk]})
    assert chosen.status_code == 200 and chosen["Content-Type"] == "application/pdf"
    pages = PdfReader(io.BytesIO(chosen.content)).pages
    assert len(pages) == 2
    assert letters[2].reference in pages[0].extract_text() and letters[0].reference in pages[1].extract_text()
    assert {letter.pk for letter in Letter.objects.filter(printed_at__isnull=False)} == {letters[0].pk, letters[2].pk}
    assert Letter.objects.get(pk=letters[0].pk).printed_by == technologist
    remaining = client.get("/letters/").content.decode()
    assert letters[1].reference in remaining and letters[0].reference not in remaining
    rest = client.post("/letters/print/", {"all_to_print": "1"})
    assert len(PdfReader(io.BytesIO(rest.content)).pages) == 1
    assert not Letter.objects.filter(printed_at__isnull=True).exists()
    printed = AuditEvent.objects.filter(action="letters.printed").order_by("pk")
    assert [e.details["references"] for e in printed] == [[letters[2].reference, letters[0].reference],
                                                          [letters[1].reference]]  # fmt: skip
    nothing = client.post("/letters/print/", {}, follow=True)
    assert "Choose at least one letter to print" in nothing.content.decode()


@pytest.mark.django_db
def test_the_site_edits_its_wording_in_versions_and_a_letter_is_made_again(technologist, readers, lead, client):
    from cases.letters.services import result_confirm

    study = _final(technologist, readers, tag="76")
    first = result_confirm(study=study, seen_result="routine_recall", user=lead).letters.get()
    first_pdf = storage.read(first.pdf_name)
    client.force_login(lead)
    url = "/letters/templates/routine_recall/"
    assert "version 1" in client.get(url).content.decode()
    typo = client.post(url, {"subject": "Your result", "body": "Dear {{ nmae }},\n\nAll clear."})
    assert (
        typo.status_code == 400 and "{{ nmae }}" in typo.content.decode() and "error-summary" in typo.content.decode()
    )
    broken = client.post(url, {"subject": "Your result", "body": "{% if name %}Dear {{ name }}"})
    assert broken.status_code == 400 and "cannot be used" in broken.content.decode()
    assert client.post(url, {"subject": "", "body": "x"}).status_code == 400
    saved = client.post(
        url,
        {
            "subject": "Your mammogram result from {{ service_name }}",
            "body": "Dear {{ name }},\n\nYour mammogram of {{ screening_date }} was normal.",
        },
    )
    assert saved.status_code == 302
    current = letter_template_current("routine_recall")
    assert current.version == 2 and current.created_by == lead
    assert AuditEvent.objects.get(action="letter.template_changed").details == {
        "result": "routine_recall", "version": 2, "previous_version": 1}  # fmt: skip
    assert client.post(f"/letters/studies/{study.pk}/remake/").status_code == 302
    second = Letter.objects.exclude(pk=first.pk).get()
    assert second.template == current and second.subject == "Your mammogram result from Breast Screening Service"
    assert "Your mammogram of 15 January 2024 was normal." in _flat(_text(storage.read(second.pdf_name)))
    assert storage.read(first.pdf_name) == first_pdf and Letter.objects.get(pk=first.pk).template.version == 1
    to_print = client.get("/letters/").content.decode()
    assert second.reference in to_print and first.reference not in to_print  # the earlier one is replaced
    assert "made again since" in client.get("/letters/?show=all").content.decode()


@pytest.mark.django_db
def test_confirmed_results_and_wording_versions_are_append_only_and_a_changed_pdf_is_refused(
    technologist, readers, lead, client
):
    from cases.letters.services import result_confirm

    confirmation = result_confirm(study=_final(technologist, readers, tag="77"), seen_result="routine_recall",
                                  user=lead)  # fmt: skip
    for rows in (ScreeningResultConfirmation.objects.all(), LetterTemplate.objects.all()):
        with pytest.raises(DatabaseError), transaction.atomic():
            rows.update(created_at=None) if rows.model is LetterTemplate else rows.update(result="technical_recall")
        with pytest.raises(DatabaseError), transaction.atomic():
            rows.all()._raw_delete(rows.db)
    letter = confirmation.letters.get()
    storage.put(letter.pdf_name, b"%PDF-1.4 not the letter", overwrite=True)
    client.force_login(lead)
    refused = client.get(f"/letters/{letter.pk}/letter.pdf")
    assert refused.status_code == 409 and "not the one made" in refused.content.decode()


def test_the_wording_check_names_what_is_wrong():
    wording_check(subject="Your result", body="Dear {{ name }},\n\n{% if views_to_repeat %}x{% endif %}")
    with pytest.raises(ApplicationError, match="subject is empty"):
        wording_check(subject=" ", body="x")
    with pytest.raises(ApplicationError, match=r"uses \{\{ dob \}\}.*Placeholders: name"):
        wording_check(subject="x", body="Born {{ dob }}")
    with pytest.raises(ApplicationError, match="cannot be used"):
        wording_check(subject="x", body="{% include 'base.html' %}")
    with pytest.raises(ApplicationError, match="cannot be used"):
        wording_check(subject="x", body="{% load static %}")


@pytest.mark.django_db
def test_the_api_confirms_lists_downloads_and_prints(technologist, readers, lead, radiologist):
    from tests.conftest import api_client_for

    study = _final(technologist, readers, tag="78", density=("d", "d"))
    assert (
        api_client_for(radiologist)
        .post(f"/api/studies/{study.pk}/result/confirm/", {"seen_result": "routine_recall"}, format="json")
        .status_code
        == 403
    )
    api = api_client_for(lead)
    stale = api.post(f"/api/studies/{study.pk}/result/confirm/", {"seen_result": "technical_recall"}, format="json")
    assert stale.status_code == 400 and "result changed" in stale.json()["detail"]
    made = api.post(f"/api/studies/{study.pk}/result/confirm/", {"seen_result": "routine_recall"}, format="json")
    assert made.status_code == 201
    letter = made.json()
    assert (letter["result"], letter["study"], letter["template_version"], letter["current"]) == (
        "routine_recall", study.pk, 1, True)  # fmt: skip
    outcome = api.get(f"/api/studies/{study.pk}/").json()["screening_outcome"]
    assert outcome["confirmation"]["letters"][0]["reference"] == letter["reference"]
    listed = api_client_for(technologist).get("/api/letters/").json()
    assert [row["reference"] for row in listed["results"]] == [letter["reference"]]
    pdf = api_client_for(technologist).get(letter["pdf_url"])
    assert pdf.status_code == 200 and _flat(DENSE_STATEMENT) in _flat(_text(pdf.content))
    printed = api_client_for(technologist).post("/api/letters/print/", {"letters": [letter["id"]]}, format="json")
    assert printed.status_code == 200 and len(PdfReader(io.BytesIO(printed.content)).pages) == 1
    assert api_client_for(technologist).get("/api/letters/").json()["count"] == 0
    assert api_client_for(technologist).get("/api/letters/?show=printed").json()["count"] == 1
    missing = api_client_for(technologist).post("/api/letters/print/", {"letters": [999999]}, format="json")
    assert missing.status_code == 404


@pytest.mark.django_db
def test_the_storage_check_after_a_restore_finds_a_missing_or_changed_letter(technologist, readers, lead):
    from cases.backups import storage_check
    from cases.letters.services import result_confirm

    letter = result_confirm(study=_final(technologist, readers, tag="79"), seen_result="routine_recall",
                            user=lead).letters.get()  # fmt: skip
    assert not [p for p in storage_check().problems if "letter" in p]
    storage.put(letter.pdf_name, b"%PDF-1.4 changed", overwrite=True)
    assert f"letter {letter.reference}: {letter.pdf_name} does not match its SHA-256" in storage_check().problems
    storage.delete(letter.pdf_name)
    assert f"letter {letter.reference}: {letter.pdf_name} is missing" in storage_check().problems
