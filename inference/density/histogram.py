"""The intensity histogram of one mammographic view: the input of the NYU histogram density model (Wu et al.,
ICASSP 2018) and of the histogram features of the density model trained here.

The reference (nyukat/breast_density_classifier, utils.py) reads an 8-bit PNG as float32, normalises it in place
to zero mean and unit standard deviation, and takes `np.histogram(image, bins=50)` divided by the pixel count. Two
facts decide how this module computes the same thing:

1. A 50-bin histogram over the image's own minimum..maximum is unchanged by any increasing affine map of the
   intensities, so the normalisation changes nothing in exact arithmetic: neither does a DICOM Modality LUT
   (rescale slope and intercept), nor the platform's scaling to [0, 1]. What does change it: a VOI window or LUT
   (it clips), MONOCHROME1 (it must be inverted: dense tissue bright, as imaging.decoding already does), and the
   number of grey levels. The model was trained on 8-bit images, where 256 levels fall into 50 bins of 5 or 6
   levels each (a fixed comb the weights learnt), so every input is first quantised to 256 levels.
2. Four grey levels (51, 102, 153, 204) fall *exactly* on bin edges (255 * k / 50 for k = 10, 20, 30, 40), and
   which bin each lands in depends on the last bit of the float32 mean and standard deviation. That moves the
   published sample output by up to 0.0015 (scattered fibroglandular 0.7845 instead of 0.78304). To reproduce the
   reference to its published digits, the mean and standard deviation are computed with the float32 arithmetic
   of the numpy it ran on (1.14: pairwise summation inside buffers of 8,192 elements, buffers added in turn) and
   the histogram is taken against float64 bin edges, as numpy 1.14 did for float32 input. This is the reference's
   preprocessing, not a tuning: the same code runs on every image. `exact=True` gives the exact-arithmetic
   histogram (levels on an edge go to the upper bin) for comparison.
"""

from __future__ import annotations

import numpy as np

NYU_BINS = 50
GREY_LEVELS = 256
_NUMPY_BUFFER = 8192  # NPY_BUFSIZE of numpy 1.x: a reduction's inner loop saw at most this many elements
_PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE
_F32 = np.float32


def grey_levels(pixels: np.ndarray) -> np.ndarray:
    """Pixels -> integer grey levels 0..255 (uint8).

    uint8 input is taken as it is (the reference's PNGs). Float input must be the platform's decoded pixels
    (imaging.decoding: float32 in [0, 1], 1 = brightest as displayed, after rescale, VOI window and MONOCHROME1
    inversion) and is rounded to 256 levels. 16-bit integer input (stored values) is refused: it has not been
    through the Modality/VOI LUT and its bright end is not known."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2:
        raise ValueError(f"A view is a 2-D greyscale image, not an array of shape {pixels.shape}.")
    if pixels.dtype == np.uint8:
        return pixels
    if not np.issubdtype(pixels.dtype, np.floating):
        raise ValueError(
            f"Pass decoded pixels (float in [0, 1], imaging.decoding) or 8-bit levels, not {pixels.dtype} values."
        )
    if pixels.size == 0 or not np.isfinite(pixels).all():
        raise ValueError("The view is empty or has non-finite pixels.")
    return np.rint(np.clip(pixels, 0.0, 1.0) * (GREY_LEVELS - 1)).astype(np.uint8)


def _pairwise_sum(values: np.ndarray) -> np.float32:
    """numpy's pairwise float32 summation (umath loops, pairwise_sum), emulated step by step for any length."""
    n = len(values)
    if n < 8:
        total = _F32(0.0)
        for value in values:
            total = _F32(total + value)
        return total
    if n <= _PAIRWISE_BLOCK:
        whole = n - n % 8
        r = np.cumsum(values[:whole].reshape(-1, 8), axis=0, dtype=_F32)[-1]  # eight running sums, in order
        total = _F32(_F32(_F32(r[0] + r[1]) + _F32(r[2] + r[3])) + _F32(_F32(r[4] + r[5]) + _F32(r[6] + r[7])))
        for value in values[whole:]:
            total = _F32(total + value)
        return total
    half = n // 2
    half -= half % 8
    return _F32(_pairwise_sum(values[:half]) + _pairwise_sum(values[half:]))


def _buffered_sum(values: np.ndarray) -> np.float32:
    """Sum of a float32 vector as numpy 1.x reduced it: pairwise within each buffer of 8,192, buffers in turn.

    Full buffers are summed all at once (a buffer of 8,192 halves evenly down to 64 blocks of 128, so its pairwise
    tree is a fixed reshape); the short last buffer goes through _pairwise_sum."""
    values = np.ascontiguousarray(values, dtype=_F32).ravel()
    full = len(values) // _NUMPY_BUFFER
    sums = []
    if full:
        blocks = values[: full * _NUMPY_BUFFER].reshape(full, _NUMPY_BUFFER // _PAIRWISE_BLOCK, -1, 8)
        r = np.cumsum(blocks, axis=2, dtype=_F32)[:, :, -1, :]  # (buffers, 64 blocks, 8 running sums)
        level = ((r[..., 0] + r[..., 1]) + (r[..., 2] + r[..., 3])) + (
            (r[..., 4] + r[..., 5]) + (r[..., 6] + r[..., 7])
        )
        while level.shape[1] > 1:
            level = level[:, 0::2] + level[:, 1::2]
        sums.extend(level[:, 0])
    if len(values) % _NUMPY_BUFFER:
        sums.append(_pairwise_sum(values[full * _NUMPY_BUFFER :]))
    total = _F32(0.0)
    for value in sums:
        total = _F32(total + value)
    return total


def reference_mean_std(image: np.ndarray) -> tuple[np.float32, np.float32]:
    """float32 mean and (population) standard deviation of an image, as `np.mean` and `np.std` gave them in numpy
    1.14 (the reference subtracts the mean in place, then takes the standard deviation of the centred image)."""
    image = np.ascontiguousarray(image, dtype=_F32).ravel()
    count = _F32(image.size)
    mean = _F32(_buffered_sum(image) / count)
    centred = image - mean
    centred_mean = _F32(_buffered_sum(centred) / count)
    deviations = centred - centred_mean
    std = _F32(np.sqrt(_F32(_buffered_sum(deviations * deviations) / count)))
    return mean, std


def view_histogram(pixels: np.ndarray, *, bins: int = NYU_BINS, exact: bool = False) -> np.ndarray:
    """The reference's histogram feature of one view: `bins` equal bins over the normalised image's minimum..maximum,
    as fractions of the pixel count (float64, summing to 1). See the module docstring for `exact`."""
    levels = grey_levels(pixels)
    counts = np.bincount(levels.ravel(), minlength=GREY_LEVELS).astype(np.float64)
    present = np.flatnonzero(counts)
    if len(present) < 2:
        raise ValueError("The view has a single grey level: there is no image to measure.")
    grey = np.arange(GREY_LEVELS, dtype=np.float64)
    if exact:
        values = grey
    else:
        # Every pixel of one level normalises to the same float32 value, so binning the 256 levels (weighted by
        # their counts) is the reference's histogram of the whole image, without a copy of it.
        mean, std = reference_mean_std(levels)
        values = ((grey.astype(_F32) - mean) / std).astype(_F32).astype(np.float64)
    low, high = values[present[0]], values[present[-1]]
    edges = np.linspace(low, high, bins + 1)
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)  # [edge_k, edge_k+1), last closed
    histogram = np.bincount(index[present], weights=counts[present], minlength=bins)
    return histogram / histogram.sum()
