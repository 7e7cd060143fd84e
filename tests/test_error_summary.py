"""A refused form: HTTP 400, the page again with an error summary (role=alert, focusable) that links each error to
its field, and each field described by its own error (templates/_error_summary.html, templates/_field.html)."""

from __future__ import annotations

import re

import pytest
from django import forms

from core.templatetags.form_errors import error_items
from tests.test_model_inventory import inventory  # noqa: F401 (a fixture)
from tests.test_reading_pages import form_data

SUMMARY = '<div class="error-summary" role="alert" tabindex="-1"'


def summary_links(html: str) -> list[str]:
    block = html[html.index(SUMMARY) :]
    block = block[: block.index("</div>")]
    return re.findall(r'<a href="#([^"]+)">', block)


class Example(forms.Form):
    name = forms.CharField(help_text="As on the request form.")
    side = forms.ChoiceField(choices=[("R", "Right"), ("L", "Left")], widget=forms.RadioSelect)
    token = forms.CharField(widget=forms.HiddenInput)

    def clean(self):
        raise forms.ValidationError("Nothing matches.")


def test_each_error_is_listed_once_linked_to_its_input():
    form = Example({})
    items = error_items(form, message="Refused by the service.")
    assert items[0] == ("", "Refused by the service.")
    assert ("", "Nothing matches.") in items
    assert ("#id_name", "This field is required.") in items
    assert ("#id_side_0", "This field is required.") in items  # a radio group: its first choice
    assert ("", "This field is required.") in items  # a hidden field: nowhere to move focus to
    assert error_items(Example(), [Example()], "", message="") == []  # unbound forms, and what is not a form


@pytest.mark.django_db
def test_a_refused_sign_in_is_a_400_with_the_summary_linked_to_the_fields(client, radiologist):
    response = client.post("/accounts/login/", {"username": "", "password": ""})
    html = response.content.decode()
    assert response.status_code == 400 and SUMMARY in html
    assert summary_links(html) == ["id_username", "id_password"]
    username = re.search(r"<input[^>]*name=\"username\"[^>]*>", html).group(0)
    assert 'aria-invalid="true"' in username and 'aria-describedby="id_username_error"' in username
    assert 'id="id_username_error"' in html
    wrong = client.post("/accounts/login/", {"username": "rad", "password": "nope"})
    assert wrong.status_code == 400 and SUMMARY in wrong.content.decode()
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and SUMMARY not in page.content.decode()


@pytest.mark.django_db
def test_a_refused_upload_is_a_400_with_the_summary(client, technologist):
    client.force_login(technologist)
    response = client.post("/studies/new/", {"patient_id": "W1"})  # no files
    html = response.content.decode()
    assert response.status_code == 400 and SUMMARY in html
    assert "id_files" in summary_links(html)
    assert 'src="/static/error_summary.js"' in html


@pytest.mark.django_db
def test_a_refused_booking_is_a_400_with_the_summary(client, technologist):
    client.force_login(technologist)
    response = client.post("/clinic/appointments/new/", {"patient_id": ""})
    html = response.content.decode()
    assert response.status_code == 400 and SUMMARY in html
    assert "id_patient_id" in summary_links(html)


@pytest.mark.django_db
def test_a_refused_read_is_a_400_with_the_summary_linked_to_the_breast_fields(client, technologist):
    from accounts.roles import Role
    from cases.reading import claims
    from tests.conftest import make_user
    from tests.test_reading import make_study

    study = make_study(technologist)
    ann = make_user(Role.RADIOLOGIST, "ann")
    read = claims.read_claim(study_id=study.pk, user=ann)
    client.force_login(ann)
    missing = form_data()
    del missing["L-birads"]
    del missing["density"]
    response = client.post(f"/reading/reads/{read.pk}/", missing)
    html = response.content.decode()
    assert response.status_code == 400 and SUMMARY in html
    assert "Please correct the fields marked below." in html
    links = summary_links(html)
    assert "id_L-birads" in links and "id_density_0" in links, links
    assert 'id="id_L-birads_error"' in html and 'id="id_density_0"' in html


@pytest.mark.django_db
def test_a_refused_model_status_change_is_a_400_with_the_summary(client, admin_user, inventory):  # noqa: F811
    version = inventory["malignancy"]
    client.force_login(admin_user)
    response = client.post(f"/models/{version.pk}/status/", {"to_status": "", "reason": ""})
    html = response.content.decode()
    assert response.status_code == 400 and SUMMARY in html
    assert {"id_to_status", "id_reason"} <= set(summary_links(html))
    version.refresh_from_db()
    assert not version.status_changes.filter(reason="").exists()


@pytest.mark.django_db
def test_a_refused_outcome_is_the_study_page_again_with_the_summary(client, technologist, lead):
    from tests.test_reading import make_study

    study = make_study(technologist)
    client.force_login(lead)
    response = client.post(f"/reading/studies/{study.pk}/outcomes/", {"laterality": "", "truth": ""})
    html = response.content.decode()
    assert response.status_code == 400 and SUMMARY in html
    assert summary_links(html) == ["id_laterality", "id_truth"]  # two lists: each error links its list
