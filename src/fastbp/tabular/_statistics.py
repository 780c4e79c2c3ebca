"""The per-column statistics of the tabular preprocessing and the functions
that apply them: robust scaling (RealMLP's rule), smooth clipping, the
levels a categorical column keeps, and quantiles of a sparse column.

Robust scaling (RealMLP-TD, ``pytabkit/models/nn_models/pipeline.py``):
centre = the median; scale = 1 / (q75 - q25), or 1 / (½ (max - min)) when
the interquartile range is 0, or 0 when that is 0 too (a constant column).
Quantiles are numpy's default (linear interpolation) over the finite values.
Smooth clipping ``z / sqrt(1 + (z / 3)²)`` maps the scaled value into
(-3, 3); ±inf becomes ±3 (its limit).
"""

import numpy as np

__all__ = ["robust_scaling", "sparse_robust_scaling", "scale_and_clip", "smooth_clip",
           "choose_levels", "CLIP", "standardise_target", "unstandardise_target"]

CLIP = 3.0  # smooth clipping's bound
_COUNTED_PER_STEP = 1 << 20  # codes counted per bincount call (choose_levels)


def _scale_from(q25, q75, low, high):
    spread = q75 - q25
    if spread == 0:
        spread = 0.5 * (high - low)
    scale = 1.0 / spread if spread > 0 else 0.0
    return scale if np.isfinite(scale) else 0.0


def robust_scaling(values, reorder=False):
    """``(centre, scale)`` of a float64 column (NaN: missing; ±inf are left
    out of the statistics). ``reorder``: ``values`` is the caller's own copy,
    which may be reordered (no copy of it is made)."""
    is_finite = np.isfinite(values)
    # one float64 copy at most (a column of a big table is large): the finite values
    # are copied only when some are not, and then partitioned in place
    copied = not is_finite.all()
    finite = values[is_finite] if copied else values
    del is_finite
    if finite.size == 0:
        return 0.0, 0.0
    q25, median, q75 = np.quantile(finite, [0.25, 0.5, 0.75],
                                   overwrite_input=copied or reorder)
    return float(median), float(_scale_from(q25, q75, finite.min(), finite.max()))


def _sorted_with_zeros(sorted_values, n_zeros, rank):
    """The value of ``rank`` in the sorted column made of ``sorted_values``
    and ``n_zeros`` more zeros (never built)."""
    n_negative = np.searchsorted(sorted_values, 0.0, side="left")
    if rank < n_negative:
        return sorted_values[rank]
    if rank < n_negative + n_zeros:
        return 0.0
    return sorted_values[rank - n_zeros]


def _quantile_with_zeros(sorted_values, n_zeros, q):
    # numpy's linear method: virtual index q (n - 1), interpolated
    n = sorted_values.size + n_zeros
    position = q * (n - 1)
    below = int(np.floor(position))
    above = min(below + 1, n - 1)
    low = _sorted_with_zeros(sorted_values, n_zeros, below)
    high = _sorted_with_zeros(sorted_values, n_zeros, above)
    return low + (high - low) * (position - below)


def sparse_robust_scaling(stored, n_rows):
    """``scale`` of a sparse column from its stored values (NaN: missing)
    and ``n_rows - stored.size`` implicit zeros, as ``robust_scaling``
    computes it on the dense column; the column is not densified."""
    finite = np.sort(stored[np.isfinite(stored)])
    n_zeros = n_rows - stored.size
    if finite.size + n_zeros == 0:
        return 0.0
    q25 = _quantile_with_zeros(finite, n_zeros, 0.25)
    q75 = _quantile_with_zeros(finite, n_zeros, 0.75)
    low = finite[0] if finite.size else 0.0
    high = finite[-1] if finite.size else 0.0
    if n_zeros:
        low, high = min(low, 0.0), max(high, 0.0)
    return float(_scale_from(q25, q75, low, high))


def smooth_clip(z):
    """``z / sqrt(1 + (z / 3)²)`` (hypot: no overflow for huge z)."""
    return z / np.hypot(1.0, z / CLIP)


def scale_and_clip(values, centre, scale):
    """float64 values scaled, centred and smoothly clipped; missing (NaN) -> 0
    (the centre), ±inf -> ±3 (0 for a constant column). ``centre`` and
    ``scale`` are numbers or arrays broadcasting against ``values``."""
    with np.errstate(invalid="ignore", over="ignore"):
        out = smooth_clip((values - centre) * scale)
    bad = ~np.isfinite(out)
    if bad.any():
        limit = np.isinf(values) & bad & np.broadcast_to(np.asarray(scale) > 0, values.shape)
        out[bad] = 0.0
        out[limit] = np.sign(values[limit]) * CLIP
    return out


def choose_levels(codes, n_texts, max_categories, min_frequency):
    """Which of a categorical column's distinct values keep a level: those
    seen at least ``min_frequency`` times, at most ``max_categories`` of
    them, the most frequent first (ties: the first in text order). Returns
    ``(kept, has_other)``: the indices of the kept texts in text order, and
    whether some value was left out (it then shares the "other" slot)."""
    counts = np.zeros(n_texts, dtype=np.intp)
    for start in range(0, codes.size, _COUNTED_PER_STEP):  # a few MB of copies at a time
        chunk = codes[start:start + _COUNTED_PER_STEP]
        counts += np.bincount(chunk[chunk >= 0], minlength=n_texts)
    present = np.flatnonzero(counts)
    eligible = present[counts[present] >= min_frequency]
    if eligible.size > max_categories:
        by_frequency = np.lexsort((eligible, -counts[eligible]))
        eligible = np.sort(eligible[by_frequency[:max_categories]])
    return eligible, eligible.size < present.size


def standardise_target(values):
    """A regression target (float64, one column per output) standardised per
    output: ``(standardised, {'target_mean_': mean, 'target_scale_': std})``,
    the scale 1 for a constant output."""
    columns = values.reshape(values.shape[0], -1)
    mean = columns.mean(axis=0)
    scale = columns.std(axis=0)
    scale[~(scale > 0)] = 1.0
    standardised = ((columns - mean) / scale).reshape(values.shape)
    return standardised, {"target_mean_": mean, "target_scale_": scale}


def unstandardise_target(predicted, mean, scale):
    """Predictions of a standardised target back on the target's scale."""
    if predicted.ndim == 1:
        return predicted * scale[0] + mean[0]
    return predicted * scale + mean
