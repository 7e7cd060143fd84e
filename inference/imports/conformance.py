"""The conformance check an imported model must pass before it is recorded: on synthetic mammograms the platform
makes itself (imaging.synthetic), through the platform's own preprocessing and the network's runtime, exactly as
the worker would run it.

Checks, in order; the first that fails is the refusal, with its reason:
1. it loads safely (inference.serving.networks: Keras safe mode, a SavedModel's serving signature only and no
   refused ops, ONNX checker and standard operators only, weights inside the file);
2. it takes the declared input (size, channels, layout) and gives at most MAX_VALUES_PER_IMAGE values per image,
   with the declared output index among them;
3. every score is finite and, for a probability output, in [0, 1];
4. the same image gives the same score twice (within SAME_TWICE_TOLERANCE);
5. it is fast enough: the median milliseconds per image (after a warm-up) at most MODEL_IMPORT_MAX_MS_PER_IMAGE.
It also records whether the model gives a heatmap (Keras: Grad-CAM; other runtimes: none) and why not.

This module runs in a child process (manage.py model_conformance, started by inference.imports.services), so a
model file that crashes its runtime or eats memory takes down that child, never the web server.
"""

from __future__ import annotations

import statistics
import time
import traceback

import numpy as np

from inference.serving.preprocessing import preprocess
from inference.serving.spec import ServingSpec

IMAGES = 8
MAX_VALUES_PER_IMAGE = 100
SAME_TWICE_TOLERANCE = 1e-6


class _Refused(Exception):
    pass


def conformance_check(spec: ServingSpec, *, max_ms_per_image: float) -> dict:
    """The check's report: {"passed", "refusal", "checks": [{"check", "passed", "detail"}], "ms_per_image", ...}."""
    from imaging.synthetic import synthetic_screening_set
    from inference.serving.runtime import serving_model_load

    report: dict = {
        "passed": False,
        "refusal": "",
        "runtime": spec.runtime,
        "images": IMAGES,
        "image_source": "imaging.synthetic.synthetic_screening_set (platform-made synthetic mammograms)",
        "checks": [],
    }

    def passed(check: str, detail: str) -> None:
        report["checks"].append({"check": check, "passed": True, "detail": detail})

    def refuse(check: str, detail: str) -> None:
        report["checks"].append({"check": check, "passed": False, "detail": detail})
        raise _Refused(f"{check}: {detail}")

    try:
        started = time.perf_counter()
        try:
            loaded = serving_model_load(spec, file_sha256="conformance", warm_up=False)
        except Exception as exc:  # noqa: BLE001  (any load failure is the refusal, with its reason)
            refuse("Loads safely", _first_line(exc))
        network = loaded.network
        report["load_ms"] = round((time.perf_counter() - started) * 1000, 1)
        passed("Loads safely", f"{spec.runtime} runtime, loaded in {report['load_ms']:.0f} ms")
        report["input_shape"] = list(spec.input_spec.shape(1))
        tensors = [
            preprocess(image.pixels, input_size=spec.input_size).tensor for image in synthetic_screening_set(IMAGES)
        ]
        first, second, timings = [], [], []
        try:
            out = network.run(tensors[0][None])  # warm-up, and the shape check
        except Exception as exc:  # noqa: BLE001
            refuse("Takes the declared input", f"input {report['input_shape']} refused: {_first_line(exc)}")
        values = getattr(network, "last_values_per_image", None)
        if values is not None and values > MAX_VALUES_PER_IMAGE:
            refuse("One score per image", f"the output has {values} values per image: not a classifier's output")
        passed("Takes the declared input", f"input {report['input_shape']}")
        passed("One score per image", _output_detail(spec, values))
        for tensor in tensors:
            mark = time.perf_counter()
            out = network.run(tensor[None])
            timings.append((time.perf_counter() - mark) * 1000)
            first.append(float(out.raw_probability[0]))
            second.append(float(network.run(tensor[None]).raw_probability[0]))
        scores = np.array(first)
        report["scores"] = [round(v, 6) for v in first]
        activation = spec.output.activation if spec.output else "probability"
        if not np.all(np.isfinite(scores)):
            refuse("Scores in range", "some scores are not finite numbers (NaN or infinite)")
        if activation == "probability" and (scores.min() < 0.0 or scores.max() > 1.0):
            refuse(
                "Scores in range",
                f"the declared probability output ranges {scores.min():.4g} to {scores.max():.4g}, outside [0, 1] "
                "(declare activation 'logit' if it is a logit)",
            )
        passed("Scores in range", f"{scores.min():.4f} to {scores.max():.4f} ({activation})")
        difference = float(np.max(np.abs(scores - np.array(second))))
        report["max_difference_between_runs"] = difference
        if difference > SAME_TWICE_TOLERANCE:
            refuse("Same output twice", f"the same image gave scores {difference:.3g} apart on two runs")
        passed("Same output twice", f"largest difference {difference:.3g}")
        report["ms_per_image"] = round(statistics.median(timings), 3)
        if report["ms_per_image"] > max_ms_per_image:
            refuse(
                "Fast enough",
                f"{report['ms_per_image']:.0f} ms per image, over the site's limit of {max_ms_per_image:.0f} ms "
                "(MODEL_IMPORT_MAX_MS_PER_IMAGE)",
            )
        passed("Fast enough", f"{report['ms_per_image']:.2f} ms per image (median of {IMAGES}, this machine)")
        report["heatmap"] = out.cams is not None
        report["heatmap_method"] = network.heatmap_method
        report["no_heatmap_reason"] = "" if out.cams is not None else getattr(network, "no_heatmap_reason", "")
        report["passed"] = True
    except _Refused as exc:
        report["refusal"] = str(exc)
    except Exception as exc:  # noqa: BLE001  (an unexpected failure is a refusal too, never an import)
        report["refusal"] = f"The check failed: {_first_line(exc)}"
        report["detail"] = traceback.format_exc()[-2000:]
    return report


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text[:500]


def _output_detail(spec: ServingSpec, values: int | None) -> str:
    index = spec.output.index if spec.output else 0
    shape = f"{values} value(s) per image" if values is not None else "one value per image"
    return f"{shape}; the score is value {index}"
