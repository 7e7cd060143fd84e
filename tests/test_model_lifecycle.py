"""The model registry's lifecycle (inference.lifecycle): allowed transitions only, one active model per kind, an
immutable status-change row and an audit row per change, the shipped models installed and activated as research
models (accepted for research use by the installer), existing rows migrated to a status."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from audit.models import AuditEvent
from core.errors import ApplicationError
from inference.lifecycle import (
    TRANSITIONS,
    model_version_accept_for_research,
    model_version_activate,
    model_version_status_change,
)
from inference.models import ModelStatus, ModelStatusChange, ModelVersion

S = ModelStatus


def row(name: str, *, kind: str = "malignancy") -> ModelVersion:
    """A registry row: the lifecycle never opens the file (the import and worker tests use real ones)."""
    return ModelVersion.objects.create(
        name=name, kind=kind, backbone="custom", input_size=64, file=f"{name}.keras", file_sha256=name.ljust(64, "0"),
        preprocessing_version="1",
    )  # fmt: skip


def change(version, to, **kwargs):
    if to == "accepted":  # these tests walk the transitions: accepted "for research use", the one path without a report
        kwargs.setdefault("for_research", True)
    return model_version_status_change(model_version=version, to_status=to, reason=f"test: {to}", **kwargs)


@pytest.mark.django_db
def test_it_allows_exactly_the_listed_transitions(admin_user, lead):
    expected = {
        "imported": {"shadow", "accepted", "retired"},
        "shadow": {"accepted", "retired", "imported"},
        "accepted": {"active", "shadow", "retired"},
        "active": {"suspended", "retired", "accepted"},
        "suspended": {"active", "retired"},
        "retired": set(),
    }
    assert {k: set(v) for k, v in TRANSITIONS.items()} == expected
    # Walk to every status, then try every target from there.
    paths = {
        "imported": [], "shadow": ["shadow"], "accepted": ["accepted"], "active": ["accepted", "active"],
        "suspended": ["accepted", "active", "suspended"], "retired": ["retired"],
    }  # fmt: skip
    for start, path in paths.items():
        for target in S.values:
            version = row(f"m-{start}-{target}")
            for step in path:
                change(version, step, actor=admin_user, confirm_unvalidated=True)
            if target in expected[start]:
                # Resuming a suspended model is a lead radiologist's decision (model.resume).
                actor = lead if (start, target) == ("suspended", "active") else admin_user
                change(version, target, actor=actor, confirm_unvalidated=True)
                version.refresh_from_db()
                assert version.status == target and version.is_active == (target == "active")
            else:
                with pytest.raises(ApplicationError):
                    change(version, target, actor=admin_user, confirm_unvalidated=True)
            ModelVersion.objects.filter(is_active=True).update(is_active=False, status="retired")


@pytest.mark.django_db
def test_a_change_needs_a_reason_and_an_unvalidated_model_a_confirmation(admin_user):
    version = row("m1")
    with pytest.raises(ApplicationError, match="reason"):
        model_version_status_change(model_version=version, to_status="accepted", reason="  ", actor=admin_user)
    with pytest.raises(ApplicationError, match="only an accepted model"):
        model_version_activate(model_version=version, confirm_unvalidated=True, actor=admin_user)
    change(version, "accepted", actor=admin_user)
    with pytest.raises(ApplicationError, match="not validated"):
        change(version, "active", actor=admin_user)
    change(version, "active", actor=admin_user, confirm_unvalidated=True)
    version.refresh_from_db()
    assert version.is_active and version.activated_at is not None


@pytest.mark.django_db
def test_each_change_writes_one_immutable_row_and_one_audit_row(admin_user):
    version = row("m1")
    change(version, "shadow", actor=admin_user)
    record = ModelStatusChange.objects.get(model_version=version)
    assert (record.from_status, record.to_status, record.changed_by, record.changed_by_name) == (
        "imported", "shadow", admin_user, admin_user.username,
    )  # fmt: skip
    event = AuditEvent.objects.filter(action="model.status_changed").get()
    assert event.actor_id == admin_user.pk and event.object_id == str(version.pk)
    assert event.details["from"] == "imported" and event.details["to"] == "shadow"
    assert event.details["reason"] == "test: shadow"
    with pytest.raises(ValueError):
        record.reason = "rewritten"
        record.save()
    with pytest.raises(ValueError):
        record.delete()
    # The database refuses it too, whatever the code does.
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE inference_modelstatuschange SET reason = 'x' WHERE id = %s", [record.pk])
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM inference_modelstatuschange WHERE id = %s", [record.pk])


@pytest.mark.django_db
def test_one_active_model_per_kind_and_density_never_displaces_malignancy(admin_user):
    first, second, density = row("mal-1"), row("mal-2"), row("den-1", kind="density")
    for version in (first, second, density):
        change(version, "accepted", actor=admin_user)
    change(first, "active", actor=admin_user, confirm_unvalidated=True)
    change(density, "active", actor=admin_user, confirm_unvalidated=True)
    active = dict(ModelVersion.objects.active().values_list("kind", "name"))
    assert active == {"malignancy": "mal-1", "density": "den-1"}
    assert ModelVersion.objects.density().active().get() == density  # how issue 22 finds it
    change(second, "active", actor=admin_user, confirm_unvalidated=True)
    first.refresh_from_db()
    assert first.status == "accepted" and not first.is_active
    replaced = ModelStatusChange.objects.filter(model_version=first).last()
    assert replaced.to_status == "accepted" and "Replaced by mal-2" in replaced.reason
    assert dict(ModelVersion.objects.active().values_list("kind", "name")) == {
        "malignancy": "mal-2",
        "density": "den-1",
    }
    # The database keeps both rules even for code that goes around the service.
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=first.pk).update(is_active=True, status="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=first.pk).update(is_active=True)


@pytest.mark.django_db
def test_install_default_model_registers_the_shipped_models_and_activates_them_for_research(settings):
    call_command("install_default_model")
    models = {v.name: v for v in ModelVersion.objects.all()}
    malignancy = ModelVersion.objects.malignancy().get()
    nyu = ModelVersion.objects.density().get(name="nyu-histogram-density-v1")
    mias = ModelVersion.objects.density().get(name="mini-mias-density-lite0-block4-v1")
    assert len(models) == 3
    assert malignancy.is_active and nyu.is_active and not mias.is_active and mias.status == "imported"
    assert (nyu.runtime, mias.runtime, malignancy.runtime) == ("weights", "keras", "keras")
    assert nyu.conformance["passed"] and nyu.conformance["classes"] == ["a", "b", "c", "d"]
    assert nyu.validation.validated is False and "Research estimate" in nyu.validation.statement
    for version in (malignancy, nyu):
        history = list(version.status_changes.values_list("from_status", "to_status", "changed_by_name"))
        assert history == [
            ("", "imported", "install_default_model"),
            ("imported", "accepted", "install_default_model"),
            ("accepted", "active", "install_default_model"),
        ]
        accepted = version.status_changes.get(to_status="accepted")
        assert accepted.reason.startswith("Accepted for research use by install_default_model")
    # Again, on the next start: nothing new, nothing changed.
    call_command("install_default_model")
    assert ModelVersion.objects.count() == 3 and ModelStatusChange.objects.count() == 7
    # A suspended model is never resumed, nor replaced, by a restart.
    model_version_status_change(model_version=malignancy, to_status="suspended", reason="drift", actor_name="test")
    call_command("install_default_model")
    malignancy.refresh_from_db()
    assert malignancy.status == "suspended" and not ModelVersion.objects.malignancy().active().exists()


@pytest.mark.django_db
def test_accept_for_research_says_so_and_registration_can_activate(tiny_model_file, lead):
    from inference.serving.registry import model_version_register

    version = model_version_register(path=tiny_model_file, name="tiny-r", backbone="b0", input_size=64)
    assert version.status == "imported" and version.imported_via == "register_model"
    model_version_accept_for_research(model_version=version, accepted_by="a developer")
    version.refresh_from_db()
    assert version.status == "accepted"
    assert "without a local acceptance test" in version.status_changes.last().reason


@pytest.mark.django_db(transaction=True)
def test_existing_models_migrate_to_a_status_with_a_first_history_row():
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("inference", "0004_worker_to_core_jobs_through_outbox")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("inference", "ModelVersion")
    common = {"backbone": "b0", "input_size": 64, "file": "f.keras", "preprocessing_version": "1"}
    old.objects.create(name="was-active", file_sha256="a" * 64, is_active=True, **common)
    old.objects.create(name="was-registered", file_sha256="b" * 64, is_active=False, **common)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    statuses = dict(ModelVersion.objects.values_list("name", "status"))
    assert statuses == {"was-active": "active", "was-registered": "imported"}
    assert ModelVersion.objects.get(name="was-active").kind == "malignancy"
    first = ModelStatusChange.objects.get(model_version__name="was-active")
    assert first.from_status == "" and first.to_status == "active" and "migration" in first.changed_by_name
