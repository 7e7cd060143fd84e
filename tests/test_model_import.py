"""Importing a model (inference.imports): real ONNX, Keras and SavedModel files, the conformance check on the
platform's own synthetic mammograms, each refusal with its reason and audited; then an imported ONNX model runs
in this process's analysis path and everything downstream takes a prediction without a heatmap (API, image page,
DICOM objects: the overlay "not made", the SRs and the CAD SR carry the score without a location)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from cases.dicom.results import dicom_image_results_build, dicom_study_results_build
from cases.models import DicomResultObject
from cases.studies.ingestion import IncomingFile, study_upload
from core import storage
from inference.imports.services import ImportRefused, model_version_import
from inference.lifecycle import model_version_activate, model_version_status_change
from inference.models import InferenceJob, ModelVersion, Prediction
from inference.serving.pipeline import inference_job_run
from tests import model_files
from tests.conftest import api_client_for
from tests.dicom_factory import breast_phantom, make_dicom


def imported(tmp_path, build, suffix: str, manifest: dict, *, actor=None) -> ModelVersion:
    path = build(tmp_path / f"model{suffix}")
    return model_version_import(file_path=path, filename=path.name, manifest=manifest, actor=actor)


@pytest.mark.django_db
def test_it_imports_an_onnx_model_with_its_manifest_and_records_who_and_how_fast(tmp_path, admin_user):
    version = imported(tmp_path, model_files.onnx_scorer, ".onnx", model_files.manifest("acme-1"), actor=admin_user)
    assert (version.kind, version.runtime, version.status) == ("malignancy", "onnx", "imported")
    assert version.imported_by == admin_user and version.imported_via == "import page"
    assert version.manifest["vendor"] == "Test vendor" and version.manifest["input"]["layout"] == "NCHW"
    report = version.conformance
    assert report["passed"] and [c["check"] for c in report["checks"]] == [
        "Loads safely", "Takes the declared input", "One score per image", "Scores in range", "Same output twice",
        "Fast enough",
    ]  # fmt: skip
    assert report["heatmap"] is False and "gradients" in report["no_heatmap_reason"]
    assert version.ms_per_image is not None and version.ms_per_image >= 0
    assert len(version.file_sha256) == 64 and version.file.endswith(".onnx")
    assert not version.validation.validated  # a vendor's figures do not make it validated here
    history = list(version.status_changes.values_list("to_status", "changed_by_name"))
    assert history == [("imported", admin_user.username)]
    event = AuditEvent.objects.get(action="model.imported")
    assert event.actor_id == admin_user.pk and event.details["file_sha256"] == version.file_sha256


@pytest.mark.model  # builds and loads Keras and SavedModel files with TensorFlow
@pytest.mark.django_db
def test_it_imports_keras_and_savedmodel_files_through_the_command(tmp_path):
    keras_file = model_files.keras_scorer(tmp_path / "scorer.keras")
    manifest = model_files.write_manifest(
        tmp_path / "k.json", model_files.manifest("keras-1", channels=3, layout="NHWC")
    )
    out = StringIO()
    call_command("import_model", str(keras_file), "--manifest", str(manifest), stdout=out)
    assert "keras-1 imported" in out.getvalue() and "heatmap: Grad-CAM" in out.getvalue()
    archive = model_files.savedmodel_zip(tmp_path / "sm.zip", tmp_path)
    manifest = model_files.write_manifest(tmp_path / "s.json", model_files.manifest("sm-1", channels=3, layout="NHWC"))
    call_command("import_model", str(archive), "--manifest", str(manifest), stdout=out)
    keras_version, saved = ModelVersion.objects.get(name="keras-1"), ModelVersion.objects.get(name="sm-1")
    assert keras_version.runtime == "keras" and keras_version.gives_heatmap
    assert saved.runtime == "savedmodel" and not saved.gives_heatmap and saved.file.endswith(".savedmodel/scorer")
    assert saved.imported_by is None and saved.imported_via == "import_model"


REFUSALS = [
    ("custom operator", model_files.onnx_with_custom_op, ".onnx", {}, "outside the standard domains"),
    ("external weights", model_files.onnx_with_external_weights, ".onnx", {}, "keeps weights outside itself"),
    ("different every run", model_files.onnx_random, ".onnx", {}, "Same output twice"),
    ("logit declared as probability", lambda p: model_files.onnx_scorer(p, sigmoid=False), ".onnx", {},
     "outside [0, 1]"),
    ("wrong input size", model_files.onnx_scorer, ".onnx", {"size": 128}, "Takes the declared input"),
    ("output index", model_files.onnx_scorer, ".onnx", {"index": 3}, "1 value(s) per image"),
    # These two build and load TensorFlow models (seconds each): the whole suite runs them, not the fast lane.
    pytest.param(("code in a Keras file", model_files.keras_with_lambda, ".keras", {"channels": 3, "layout": "NHWC"},
                  "Lambda"), marks=pytest.mark.model, id="code in a Keras file"),
    pytest.param(("file reads in a SavedModel", None, ".zip", {"channels": 3, "layout": "NHWC"}, "ReadFile"),
                 marks=pytest.mark.model, id="file reads in a SavedModel"),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("case", REFUSALS, ids=[case[0] if isinstance(case, tuple) else case.id for case in REFUSALS])
def test_it_refuses_a_model_that_fails_the_check_with_the_reason_and_audits_it(tmp_path, settings, admin_user, case):
    _, build, suffix, overrides, reason = case
    if build is None:
        build = lambda p: model_files.savedmodel_zip(p, tmp_path, read_file=True)  # noqa: E731
    manifest = model_files.manifest("refused-1", **overrides)
    with pytest.raises(ImportRefused) as refused:
        imported(tmp_path, build, suffix, manifest, actor=admin_user)
    assert reason in refused.value.message
    assert not ModelVersion.objects.exists()
    event = AuditEvent.objects.get(action="model.import_refused")
    assert reason in event.details["reason"] and event.actor_id == admin_user.pk
    assert not [p for p in settings.MODEL_DIR.iterdir() if not p.name.startswith(".")]  # the refused file is gone


@pytest.mark.django_db
def test_it_refuses_a_model_slower_than_the_sites_limit(tmp_path, settings):
    settings.MODEL_IMPORT_MAX_MS_PER_IMAGE = 0.0001
    with pytest.raises(ImportRefused, match="Fast enough: .* over the site's limit"):
        imported(tmp_path, model_files.onnx_scorer, ".onnx", model_files.manifest("slow-1"))


@pytest.mark.django_db
def test_it_refuses_an_incomplete_manifest_with_an_error_per_field_and_other_files(tmp_path):
    manifest = model_files.manifest("bad name!")
    del manifest["vendor"]
    manifest["input"]["size"] = 5
    manifest["output"]["activation"] = "odds"
    manifest["operating_points"] = []
    with pytest.raises(ImportRefused) as refused:
        imported(tmp_path, model_files.onnx_scorer, ".onnx", manifest)
    assert set(refused.value.errors) == {"name", "vendor", "input.size", "output.activation", "operating_points"}
    with pytest.raises(ImportRefused, match="upload a Keras .keras file"):
        model_version_import(file_path=tmp_path / "x.h5", filename="x.h5", manifest=model_files.manifest("h5"))
    with pytest.raises(ImportRefused, match="not a readable zip"):
        (tmp_path / "m.zip").write_bytes(b"not a zip")
        model_version_import(file_path=tmp_path / "m.zip", filename="m.zip", manifest=model_files.manifest("z1"))
    with pytest.raises(CommandError, match="manifest"):
        bad = model_files.onnx_scorer(tmp_path / "ok.onnx")
        (tmp_path / "bad.json").write_text("{not json")
        call_command("import_model", str(bad), "--manifest", str(tmp_path / "bad.json"))


@pytest.mark.django_db
def test_a_zipped_savedmodel_with_an_unsafe_path_is_refused_before_anything_is_unpacked(tmp_path, settings):
    import zipfile

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../outside.txt", "x")
    with pytest.raises(ImportRefused, match="unsafe path"):
        model_version_import(file_path=archive, filename="evil.zip", manifest=model_files.manifest("evil"))
    assert not (tmp_path.parent / "outside.txt").exists()
    assert not list(settings.MODEL_DIR.glob("*.savedmodel"))


@pytest.mark.django_db
def test_an_onnx_prediction_has_no_heatmap_and_everything_downstream_says_so(
    tmp_path, settings, admin_user, technologist, radiologist, client
):
    settings.DICOM_STUDY_STABLE_SECONDS = 0
    version = imported(tmp_path, model_files.onnx_scorer, ".onnx", model_files.manifest("onnx-dicom"))
    model_version_status_change(
        model_version=version, to_status="accepted", reason="test", actor=admin_user, for_research=True
    )
    model_version_activate(model_version=version, confirm_unvalidated=True, actor=admin_user)
    files = [
        IncomingFile.from_bytes(f"{side}CC.dcm", make_dicom(laterality=side, view="CC", study_uid="1.2.3.77",
                                                            patient_id="W-77", sop_uid=f"1.2.3.77.{n}"))
        for n, side in enumerate("LR", start=1)
    ]  # fmt: skip
    study = study_upload(user=technologist, files=files).study
    for job in InferenceJob.objects.filter(image__study=study, status="queued"):
        inference_job_run(job_id=job.pk)
    predictions = list(Prediction.objects.filter(image__study=study))
    assert len(predictions) == 2
    for prediction in predictions:
        assert prediction.model_version == version and 0 <= prediction.probability <= 1
        assert prediction.heatmap == "" and prediction.overlay == "" and prediction.heatmap_peak == {}
        assert "model_ms" in prediction.timings_ms and "heatmap_files_ms" not in prediction.timings_ms
        dicom_image_results_build(prediction_id=prediction.pk)
    dicom_study_results_build(study_id=study.pk)
    made = {(o.kind, o.image_id): o for o in DicomResultObject.objects.filter(study=study)}
    assert {kind for kind, _ in made} == {"image_sr", "study_sr", "cad_sr"}  # no overlay: nothing to overlay
    assert all(o.is_built for o in made.values())
    from pydicom import dcmread

    image_sr = dcmread(storage.open_file(made[("image_sr", predictions[0].image_id)].file))
    texts = [str(e.value) for e in image_sr.iterall() if e.keyword in ("TextValue", "CodeMeaning", "ValueType")]
    assert any("no location" in t for t in texts) and "SCOORD" not in texts  # the score, without a region
    cad = dcmread(storage.open_file(made[("cad_sr", None)].file))
    texts = [str(e.value) for e in cad.iterall() if e.keyword in ("TextValue", "ValueType")]
    assert any("highest image score" in t for t in texts) and "SCOORD" not in texts
    # The API and the pages.
    body = api_client_for(radiologist).get(f"/api/studies/{study.pk}/").json()
    for image in body["images"]:
        assert image["prediction"]["heatmap_url"] is None and image["prediction"]["overlay_url"] is None
        assert image["prediction"]["heatmap_peak"] == {}
    client.force_login(radiologist)
    image = predictions[0].image
    assert client.get(f"/images/{image.pk}/heatmap/").status_code == 404
    page = client.get(f"/images/{image.pk}/").content.decode()
    assert "No heatmap: this model gives a score without a location" in page
    study_page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "Not made: this model gives no heatmap." in study_page
    viewed = client.get(f"/images/{image.pk}/").context["viewer_config"]["studies"][0]["images"][0]
    assert viewed["aiResult"] is True and viewed["overlayUrl"] is None  # the result shown, nothing to overlay


@pytest.mark.worker
def test_imported_onnx_and_keras_models_score_in_the_worker_exactly_as_their_own_runtimes(
    celery_worker, tmp_path, admin_user, technologist
):
    """Known answers: through the import, the lifecycle, an upload and the real Celery worker, each model's score
    is what ONNX Runtime and Keras themselves give on the same preprocessed input."""
    import keras
    import numpy as np
    import onnxruntime

    from inference.serving.networks import InputSpec, network_input
    from inference.serving.pipeline import _model_pixels
    from inference.serving.preprocessing import preprocess
    from inference.serving.spec import model_file_path
    from tests.conftest import wait_for

    onnx_version = imported(tmp_path, model_files.onnx_scorer, ".onnx", model_files.manifest("known-onnx"))
    keras_manifest = model_files.manifest("known-keras", channels=3, layout="NHWC", normalisation="0-1")
    keras_version = imported(tmp_path, model_files.keras_scorer, ".keras", keras_manifest)
    own_runtimes = {
        onnx_version.pk: lambda x: onnxruntime.InferenceSession(
            str(model_file_path(onnx_version)), providers=["CPUExecutionProvider"]
        ).run(None, {"image": x})[0],
        # Keras' own inference call, model.predict (graph mode; an eager model(x) call differs by one float32 ulp).
        keras_version.pk: lambda x: keras.saving.load_model(model_file_path(keras_version)).predict(x, verbose=0),
    }
    for n, version in enumerate((onnx_version, keras_version)):
        model_version_status_change(
            model_version=version, to_status="accepted", reason="known answers", actor=admin_user, for_research=True
        )
        model_version_activate(model_version=version, confirm_unvalidated=True, actor=admin_user)
        files = [
            IncomingFile.from_bytes(f"{side}{view}.dcm", make_dicom(
                laterality=side, view=view, patient_id=f"K{n}", sop_uid=f"1.2.3.88.{n}.{i}",
                pixels=breast_phantom(256, 192, chest_wall="left" if side == "L" else "right", seed=1 + i + 10 * n)))
            for i, (side, view) in enumerate((("L", "CC"), ("R", "MLO")))
        ]  # fmt: skip
        study = study_upload(user=technologist, files=files).study

        def analysed(study=study, version=version):
            return Prediction.objects.filter(image__study=study, model_version=version).count() == 2

        wait_for(analysed, worker=celery_worker)
        for prediction in Prediction.objects.filter(image__study=study).select_related("image"):
            spec = InputSpec.from_manifest(version.manifest, default_size=version.input_size)
            tensor = preprocess(_model_pixels(prediction.image), input_size=version.input_size).tensor
            own = float(np.asarray(own_runtimes[version.pk](network_input(tensor[None], spec))).reshape(-1)[0])
            assert prediction.raw_probability == own, (version.runtime, prediction.raw_probability, own)
            assert prediction.probability == own  # identity calibration: the score is the model's own
        scores = list(Prediction.objects.filter(image__study=study).values_list("probability", flat=True))
        assert scores[0] != scores[1]  # two different images, two different scores
    assert Prediction.objects.filter(model_version=keras_version).exclude(heatmap="").count() == 2  # Grad-CAM
    assert Prediction.objects.filter(model_version=onnx_version, heatmap="").count() == 2  # no heatmap
