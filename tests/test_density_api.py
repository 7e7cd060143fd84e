"""The density API the platform calls (inference.density): both shipped models, real weights, real networks.

    bash test.sh tests/test_density_api.py -q

Tests on real mini-MIAS images read MAMMO_DATA_DIR (settings; test.sh sets it) and use train-split images only;
they skip with the reason when the data is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from inference.density import (
    DensityInputError,
    density_model_get,
    density_model_load,
    density_predict,
    density_validation,
)
from inference.density.api import SHIPPED_MODELS
from inference.density.views import NYU_VIEW_ORDER
from tests.dicom_factory import breast_phantom


def _phantom(seed: int, *, chest_wall: str = "left") -> np.ndarray:
    return breast_phantom(300, 240, chest_wall=chest_wall, seed=seed).astype(np.float32) / 65535.0


def _mias_pair() -> dict[str, np.ndarray]:
    """mdb011 (right) and mdb012 (left): one train-split woman, tissue F."""
    from inference.serving.preprocessing import decode_for_model

    root = Path(settings.MAMMO_DATA_DIR) / "mini-mias"
    if not (root / "mdb011.png").is_file():
        pytest.skip(f"mini-MIAS not found at {root} (set MAMMO_DATA_DIR).")
    return {
        view: decode_for_model(filename=f"{name}.png", data=(root / f"{name}.png").read_bytes()).pixels
        for view, name in (("R-MLO", "mdb011"), ("L-MLO", "mdb012"))
    }


@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_each_shipped_model_matches_its_card(name):
    model = density_model_get(name)
    card = json.loads((SHIPPED_MODELS[name] / "model_card.json").read_text())

    assert model.sha256 == card["weights_sha256"]
    assert card["kind"] == "density" and card["acceptance"]["kappa_ci95_low_at_least"] == 0.40
    assert card["status"] == ("validated" if model.validation.validated else "research estimate")
    assert density_model_get(name) is model  # loaded once per process


def test_the_shipped_cards_carry_their_sealed_test_status():
    assert not density_model_get("nyu-histogram").validation.validated
    mias = density_model_get("mini-mias").validation
    assert mias.validated and mias.kappa_low >= 0.40 and mias.accuracy_low >= 0.50
    assert mias.statement.startswith("Validated density model")


def test_the_mini_mias_model_reads_mlo_views_and_answers_per_breast():
    result = density_predict(_mias_pair(), model="mini-mias")

    assert result.scale == "mini-mias" and set(result.probabilities) == {"F", "G", "D"}
    assert abs(sum(result.probabilities.values()) - 1) < 1e-5
    assert set(result.per_breast) == {"L", "R"}
    assert result.category == "F" and not result.dense  # mdb011/012 are labelled fatty
    exam = np.mean([list(b.probabilities.values()) for b in result.per_breast.values()], axis=0)
    assert np.allclose(exam, list(result.probabilities.values()))
    json.dumps(result.as_dict())  # plain JSON for the API and the job row


def test_the_mini_mias_model_leaves_cc_views_out_and_refuses_without_mlo():
    views = {"L-CC": _phantom(1), "L-MLO": _phantom(2), "R-CC": _phantom(3, chest_wall="right")}

    result = density_predict(views, model="mini-mias")
    assert result.views_left_out == ("L-CC", "R-CC")
    assert set(result.per_breast) == {"L"}
    assert any("MLO views only" in note for note in result.notes)

    with pytest.raises(DensityInputError) as refused:
        density_predict({"L-CC": _phantom(1)}, model="mini-mias")
    assert refused.value.code == "missing_views"


def test_the_nyu_model_answers_per_exam_and_per_breast_in_birads():
    result = density_predict({name: _phantom(i) for i, name in enumerate(NYU_VIEW_ORDER)})

    assert result.scale == "birads" and list(result.probabilities) == ["a", "b", "c", "d"]
    assert result.dense == (result.category in ("c", "d"))
    assert abs(result.dense_probability - result.probabilities["c"] - result.probabilities["d"]) < 1e-9
    assert set(result.per_breast) == {"L", "R"}
    assert not result.validation.validated and "Research estimate" in result.validation.statement


def test_a_model_folder_loads_by_path(tmp_path):
    import shutil

    folder = tmp_path / "density-nyu-histogram"
    shutil.copytree(SHIPPED_MODELS["nyu-histogram"], folder)
    model = density_model_load(folder)

    assert model.sha256 == density_model_get("nyu-histogram").sha256
    assert density_predict({n: _phantom(0) for n in NYU_VIEW_ORDER}, model=folder).model_name == model.name


def test_validation_follows_the_cards_criterion():
    card = {
        "acceptance": {"criterion": "...", "kappa_ci95_low_at_least": 0.4, "accuracy_ci95_low_at_least": 0.5},
        "metrics": {"test": None},
    }
    assert not density_validation(card).validated
    assert "no sealed-test figures" in density_validation(card).statement

    woman = {"kappa_linear": 0.6, "kappa_linear_ci95": [0.45, 0.75], "accuracy": 0.7, "accuracy_ci95": [0.55, 0.8]}
    card["metrics"]["test"] = {"dataset": "mini-MIAS", "split": "test", "women": 49, "woman_level": woman}
    assert density_validation(card).validated

    woman["kappa_linear_ci95"] = [0.39, 0.75]
    assert not density_validation(card).validated
    assert "kappa >= 0.4" in density_validation(card).statement


@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_a_registered_copy_loads_from_its_file_and_card_and_passes_the_self_check(tmp_path, name):
    """What the registry will do: the weights copied under their SHA-256, the card kept apart."""
    import shutil

    from inference.density import density_model_from_file

    shipped = density_model_get(name)
    copy = tmp_path / f"{shipped.sha256}{shipped.weights_file.suffix}"
    shutil.copyfile(shipped.weights_file, copy)
    model = density_model_from_file(copy, shipped.card)

    assert model.sha256 == shipped.sha256 and model.name == shipped.name
    result = model.self_check()
    assert tuple(result.probabilities) == model.classes
