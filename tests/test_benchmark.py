"""The inference benchmark runs on a throwaway database and media folder of its own, whatever the environment
says: it must never register a model in, activate a model in, or delete predictions from a real database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from inference.models import ModelVersion
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_the_benchmark_never_touches_the_configured_database(transactional_db, active_model, settings):
    from django.db import connection

    db = connection.settings_dict
    env = {
        **os.environ,
        # Pointed at this test's (real, committed) database and media on purpose: the command must ignore them.
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MODEL_DIR": str(settings.MODEL_DIR),
    }
    run = subprocess.run(
        [sys.executable, "manage.py", "benchmark_inference", "--images", "2", "--rows", "640", "--columns", "400",
         "--configs", "b0:64", "--concurrency", "1,2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "throwaway database" in run.stdout
    assert "upload to result, one image" in run.stdout
    assert "1 in flight" in run.stdout and "2 in flight" in run.stdout and "of bare" in run.stdout
    # The real database still has exactly its one active model and nothing else.
    assert list(ModelVersion.objects.values_list("name", "is_active")) == [(active_model.name, True)]
    assert not list(settings.MEDIA_ROOT.rglob("*.npy"))
