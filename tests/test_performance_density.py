"""Breast density and technical recall on the performance page (cases/performance/density.py), with figures worked
out by hand on a small seeded site."""

from __future__ import annotations

import pytest

from cases.performance.density import density_report
from cases.reading import claims
from cases.reading import services as reading
from cases.reading.technical_recall import TechnicalRecallInput
from tests.conftest import make_user
from tests.test_reading import both, make_study

# (first reader's density, second reader's density, second reader asks RCC again, cancer in the right breast)
SITE = [("a", "a", False, False), ("b", "c", True, False), ("c", "c", False, True), ("d", "b", False, False)]


@pytest.fixture
def site(db, technologist, lead):
    ann, ben = make_user("radiologist", "ann"), make_user("radiologist", "ben")
    for n, (first, second, repeat, cancer) in enumerate(SITE):
        study = make_study(technologist, tag=f"6{n}")
        for reader, density, repeats in ((ann, first, []), (ben, second, [TechnicalRecallInput("R", "CC", "motion")]
                                                           if repeat else [])):  # fmt: skip
            read = claims.read_claim(study_id=study.pk, user=reader)
            reading.read_submit(read_id=read.pk, user=reader, assessments=both(recall_right=cancer), density=density,
                                technical_recalls=repeats)  # fmt: skip
        reading.outcome_record(study_id=study.pk, laterality="R", truth="malignant" if cancer else "normal", user=lead)
    return ann, ben


def test_density_agreement_and_the_programme_by_density_worked_out_by_hand(site):
    report = density_report(minimum=1, n_bootstrap=50)
    # Pairs (0,0), (1,2), (2,2), (3,1): observed weighted disagreement 0.75, expected 1.125: kappa 1 - 2/3.
    assert report.readers.pairs == 4 and report.readers.kappa == pytest.approx(1 / 3, abs=1e-3)
    assert report.readers.low <= report.readers.kappa <= report.readers.high
    # Final densities: a (agreed), c (denser of b and c), c (agreed), d (denser of d and b).
    dense, not_dense = report.by_density
    assert (dense.studies, dense.cancers, not_dense.studies, not_dense.cancers) == (3, 1, 1, 0)
    assert dense.sensitivity.successes == 1 and dense.recall_rate.successes == 1  # the cancer was recalled
    assert report.reader_ai.pairs == 0 and not report.reader_ai.enough  # no density model estimated these
    # One of four finalised studies is a technical recall (ben asked RCC again; nobody recalled it for assessment).
    assert (report.technical_recall.successes, report.technical_recall.total) == (1, 4)
    by_reader = {reader_id: (p.successes, p.total) for reader_id, p in report.reader_technical_recall}
    ann, ben = site
    assert by_reader == {ann.pk: (0, 4), ben.pk: (1, 4)}


def test_the_performance_page_shows_the_density_section(site, client, lead):
    client.force_login(lead)
    page = client.get("/performance/").content.decode()
    assert 'id="density"' in page and "First reader vs second reader" in page
    assert 'id="technical-recall"' in page
