"""The NYU histogram density model's port (inference.density): the published sample exam, the weights' provenance,
the restricted reading of the torch copy, missing views and 16-bit DICOM input. Real weights, real network.

    bash test.sh tests/test_density_nyu.py -q

The sample exam and the published weights are read from MAMMO_DATA_DIR/nyu-density (settings; test.sh sets it);
tests needing them skip with the reason when they are absent.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from inference.density import DensityInputError, density_model_get, density_predict
from inference.density.histogram import _pairwise_sum, view_histogram
from inference.density.nyu_weights import read_checkpoint_weights, read_legacy_torch_state, torch_state_to_weights
from inference.density.views import NYU_VIEW_ORDER
from tests.dicom_factory import make_dicom

PUBLISHED = {"a": 0.0819444, "b": 0.78304, "c": 0.133503, "d": 0.00151265}


def _nyu_source() -> Path:
    source = Path(settings.MAMMO_DATA_DIR) / "nyu-density"
    if not (source / "images" / "L-CC.png").is_file():
        pytest.skip(f"The NYU sample exam is not at {source} (set MAMMO_DATA_DIR to the shared data folder).")
    return source


def _sample_views() -> dict[str, np.ndarray]:
    from inference.training.density.sample_exam import sample_exam_views

    return sample_exam_views(_nyu_source() / "images")


def test_it_reproduces_the_published_sample_exam_output_to_3_decimals():
    result = density_predict(_sample_views())

    for category, published in PUBLISHED.items():
        assert round(result.probabilities[category], 3) == round(published, 3)
        assert abs(result.probabilities[category] - published) < 5e-6  # in fact to the published digits
    assert result.category == "b" and not result.dense
    assert result.scale == "birads" and result.substitutions == {}
    assert set(result.per_breast) == {"L", "R"}
    assert result.model_sha256 == density_model_get("nyu-histogram").card["weights_sha256"]


def test_the_exact_arithmetic_histogram_would_miss_the_published_digits():
    """Why histogram.py follows the reference's float32 arithmetic: exact arithmetic moves b by about 0.0015."""
    model = density_model_get("nyu-histogram").network
    views = _sample_views()
    exact = model.predict_histograms(
        np.concatenate([view_histogram(views[v], exact=True) for v in NYU_VIEW_ORDER])[None]
    )
    assert abs(exact[0][1] - PUBLISHED["b"]) > 1e-3


def test_the_shipped_weights_are_the_published_checkpoint_and_torch_copy():
    source = _nyu_source() / "histogram-model"
    checkpoint = read_checkpoint_weights(source / "model.ckpt")
    torch_copy = torch_state_to_weights(read_legacy_torch_state(source / "model.p"))
    with np.load(Path(settings.BASE_DIR) / "default_model" / "density-nyu-histogram" / "weights.npz") as shipped:
        for key, value in checkpoint.items():
            assert np.array_equal(shipped[key], value)
            assert np.array_equal(torch_copy[key], value)
    licence = Path(settings.BASE_DIR) / "default_model" / "density-nyu-histogram" / "LICENSE"
    assert licence.read_bytes() == (source.parent / "LICENSE").read_bytes()


def test_the_restricted_unpickler_refuses_anything_but_arrays(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "model.p"
    stream = io.BytesIO()
    for part in (0x1950A86A20F9469CFC6C, 1001, {}, Payload()):
        pickle.dump(part, stream, protocol=2)
    evil.write_bytes(stream.getvalue())

    with pytest.raises(pickle.UnpicklingError, match="print is not allowed"):
        read_legacy_torch_state(evil)
    assert "must never run" not in capsys.readouterr().out


def test_numpy_pairwise_summation_is_emulated_exactly():
    """The reference's mean and standard deviation depend on numpy's summation order: within a buffer the
    emulation must agree with numpy's own float32 sum to the bit."""
    rng = np.random.default_rng(0)
    for n in (5, 64, 127, 128, 129, 1000, 4099, 8192):
        values = (rng.random(n) * 255).astype(np.float32)
        assert _pairwise_sum(values) == np.sum(values)


def test_it_refuses_an_exam_without_all_four_views_unless_asked_to_substitute():
    views = _synthetic_views()
    del views["L-CC"]

    with pytest.raises(DensityInputError) as refused:
        density_predict(views)
    assert refused.value.code == "missing_views" and "L-CC" in refused.value.reason

    result = density_predict(views, substitute_missing=True)
    assert result.substitutions == {"L-CC": "L-MLO"}
    assert any("L-CC by L-MLO" in note for note in result.notes)
    assert abs(sum(result.probabilities.values()) - 1) < 1e-5

    with pytest.raises(DensityInputError) as no_breast:
        density_predict({"R-CC": views["R-CC"], "R-MLO": views["R-MLO"]}, substitute_missing=True)
    assert no_breast.value.code == "missing_breast"


def test_16_bit_dicom_rescale_and_monochrome1_do_not_change_the_result():
    """The histogram ignores a Modality LUT rescale, and MONOCHROME1 is inverted by decoding, so the same breast
    stored three ways gives one density."""
    from inference.serving.preprocessing import decode_for_model

    def decoded(**kwargs) -> np.ndarray:
        data = make_dicom(rows=320, columns=240, bits_stored=16, **kwargs)
        return decode_for_model(filename="view.dcm", data=data).pixels

    plain = decoded()
    rescaled = decoded(rescale=(2.0, -1000.0))
    inverted = decoded(photometric="MONOCHROME1")
    for other in (rescaled, inverted):
        assert np.abs(view_histogram(plain) - view_histogram(other)).max() < 1e-3

    results = [density_predict({name: pixels for name in NYU_VIEW_ORDER}) for pixels in (plain, rescaled, inverted)]
    for result in results[1:]:
        for category in "abcd":
            assert abs(result.probabilities[category] - results[0].probabilities[category]) < 1e-3


def test_it_refuses_stored_16_bit_values_and_unknown_views():
    with pytest.raises(ValueError, match="decoded pixels"):
        density_predict({name: np.zeros((64, 64), dtype=np.uint16) + 7 for name in NYU_VIEW_ORDER})
    with pytest.raises(DensityInputError) as unknown:
        density_predict({"L-XCCL": np.zeros((64, 64), dtype=np.float32)})
    assert unknown.value.code == "unknown_view"


def _synthetic_views() -> dict[str, np.ndarray]:
    from tests.dicom_factory import breast_phantom

    return {
        name: breast_phantom(260, 200, chest_wall="left", seed=i).astype(np.float32) / 65535.0
        for i, name in enumerate(NYU_VIEW_ORDER)
    }


def test_the_working_image_resolution_moves_the_sample_exam_little():
    """The platform hands models its working image (longer side <= 2048, whole-factor area reduction): the card's
    note says the sample exam moves by under 0.01 and keeps its category."""
    from imaging.decoded import reduce_to_max_side

    views = _sample_views()
    full = density_predict(views)
    working = density_predict(
        {name: reduce_to_max_side(pixels.astype(np.float32) / 255.0, 2048) for name, pixels in views.items()}
    )
    assert max(abs(full.probabilities[c] - working.probabilities[c]) for c in "abcd") < 0.01
    assert working.category == full.category
