"""One way of writing times on the whole site: the site's time zone, a 24-hour clock, the zone named once in every
page's footer; the same for times the server writes into messages and for the draft time the read page's script
shows (tests/test_reading_page_browser.py checks that one in chromium, in a browser set to another zone and locale)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.utils import timezone

from cases.models import Read
from cases.reading import claims
from cases.studies.ingestion import study_images_addable
from core.errors import ApplicationError
from core.times import local_datetime_text, local_time_text
from tests.test_reading import make_study

SUMMER_EVENING_UTC = datetime(2026, 6, 1, 17, 10, 4, tzinfo=UTC)  # 18:10:04 in London (BST)


def test_dates_and_times_printed_without_a_format_are_iso_and_24_hour(settings):
    settings.TIME_ZONE = "Europe/London"
    with timezone.override("Europe/London"):
        text = Template("{{ when }} | {{ when|date }} | {{ when|time }} | {{ when.date }}").render(
            Context({"when": SUMMER_EVENING_UTC})
        )
        assert text == "2026-06-01 18:10 | 2026-06-01 | 18:10 | 2026-06-01"
        assert local_datetime_text(SUMMER_EVENING_UTC) == "2026-06-01 18:10"
        assert local_time_text(SUMMER_EVENING_UTC, seconds=True) == "18:10:04"


@pytest.mark.django_db
def test_every_page_names_the_time_zone_once(client, settings, radiologist):
    settings.TIME_ZONE = "Europe/London"
    client.force_login(radiologist)
    for url in ("/reading/", "/studies/", "/accounts/login/"):
        html = client.get(url, follow=True).content.decode()
        assert html.count("Times are Europe/London, 24-hour clock.") == 1, url


@pytest.mark.django_db
def test_the_draft_time_and_the_refusal_message_are_in_the_sites_zone_and_clock(
    client, settings, technologist, radiologist, monkeypatch
):
    settings.TIME_ZONE = "Europe/London"
    study = make_study(technologist)
    monkeypatch.setattr("django.utils.timezone.now", lambda: SUMMER_EVENING_UTC)
    read = claims.read_claim(study_id=study.pk, user=radiologist)
    assert Read.objects.get(pk=read.pk).claimed_at == SUMMER_EVENING_UTC
    client.force_login(radiologist)
    answer = client.post(f"/reading/reads/{read.pk}/draft/", {"comments": "a first look"}).json()
    assert answer["saved_at_text"] == "18:10:04"
    with pytest.raises(ApplicationError) as refused:
        study_images_addable(study)
    assert "first read claimed 2026-06-01 18:10)" in refused.value.message
