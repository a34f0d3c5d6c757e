"""Fine-tuning the inpainting model on the user's own pattern (the thesis's §4.9).

The simulated training set never matches a measured pattern exactly (detector response, background,
fringe shapes of a real particle). The pattern itself knows better: 32³ crops of it, taken where there
is signal, get *artificial* gaps (the same random geometries as in training); the model learns to fill
them from the measured values around, for a few hundred steps from the shipped weights, at a low
learning rate. Voxels of the crops that are in the *real* gap are part of the input mask (as they will be
at inference) but never scored (their truth is unknown).

Noise: the input is a binomial thinning of the measured counts (a thinned Poisson variable is Poisson
with the thinned mean) and the target is the thinned *mean* ``p · counts``: a less noisy target than the
counts themselves at ``p < 1``.

Usage::

    result = finetune(data, mask, steps=200)             # a fresh copy of the shipped model
    filled = inpaint(data, mask, model=result.model)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import BCDIError
from ..core.progress import CancelToken, ProgressFn, report
from ._keras import keras
from .inpaint import encode_context, encode_target, encode_windows, has_context, window_size


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    Attributes
    ----------
    model : the fine-tuned Keras model (a private copy; the cached shipped model is untouched).
    loss_before, loss_after : loss on a fixed set of crops of the pattern with artificial gaps (never
        trained on: other crops positions or other gaps than the training draws), before and after.
    steps : optimizer steps done.
    n_positions : crop positions with signal that were available.
    """

    model: Any
    loss_before: float
    loss_after: float
    steps: int
    n_positions: int


def crop_positions(data: np.ndarray, mask: np.ndarray, size: int = 32, *, min_counts: float = 20.0,
                   max_gap_fraction: float = 0.5, stride: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Crops with signal that are mostly measured: origins ``(n, 3)`` and their peak counts ``(n,)``.

    Candidates lie on a grid of ``stride`` (plus the last position flush with the border); a crop
    qualifies when its largest measured value is at least ``min_counts`` and the real gap covers at most
    ``max_gap_fraction`` of it.
    """
    from scipy import ndimage

    d = np.asarray(data, dtype=np.float32)
    m = np.asarray(mask).astype(bool)
    if min(d.shape) < size:
        raise BCDIError(f"fine-tune: the data {d.shape} are smaller than one {size}³ crop")
    axes = [np.unique(np.r_[np.arange(0, n - size + 1, stride), n - size]) for n in d.shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    # a filter of even size with origin -size/2 covers [i, i + size): crop statistics at each origin i
    frac = ndimage.uniform_filter(m.astype(np.float32), size=size, mode="constant", origin=-(size // 2))
    peak = ndimage.maximum_filter(np.where(m, 0, d), size=size, mode="constant", origin=-(size // 2))
    f, pk = frac[tuple(grid.T)], peak[tuple(grid.T)]
    ok = (f <= max_gap_fraction) & (pk >= min_counts)
    return grid[ok].astype(np.int64), pk[ok].astype(np.float64)


def _thin(counts: np.ndarray, rng: np.random.Generator, p_range=(0.3, 1.0)) -> tuple[np.ndarray, float]:
    p = float(rng.uniform(*p_range)) if rng.random() < 0.7 else 1.0
    c = np.maximum(np.rint(counts), 0).astype(np.int64)
    return (rng.binomial(c, p).astype(np.float32) if p < 1 else c.astype(np.float32)), p


def _sample(data, mask, positions, weights, size, rng, thin=True, context=False):
    """One training crop: ``(noisy, target, input mask, scored voxels[, context])``.

    With ``context``, ``data`` and ``mask`` are padded by ``size // 2`` (NaN and 1) and the crop is the
    centre of its ``2 · size`` region, which is thinned and gapped with it and returned as the context
    model's block means (NaN where invalid), as ``core.gaps.extract_context`` gives them at inference.
    """
    from .inpaint_training import _apply_symmetry, _symmetry, random_gap_mask

    o = positions[rng.choice(len(positions), p=weights)]
    n = 2 * size if context else size
    box = tuple(slice(int(a), int(a) + n) for a in o)
    crop, real = data[box], mask[box].astype(bool)
    perm, flips = _symmetry(rng)
    crop, real = _apply_symmetry(crop, perm, flips), _apply_symmetry(real, perm, flips)
    region = n if context else None

    def gap():
        g = random_gap_mask(rng, size, region=region)
        return g if context else (g, g)

    centre = (slice(size // 2, size // 2 + size),) * 3 if context else (slice(None),) * 3
    art, big = gap()
    score = art.astype(bool) & ~real[centre]
    for _ in range(10):
        if score.sum() >= 8:
            break
        art, big = gap()
        score = art.astype(bool) & ~real[centre]
    outside = ~np.isfinite(crop)
    noisy, p = _thin(np.where(outside, 0, crop), rng) if thin else (np.where(outside, 0, crop), 1.0)
    noisy = noisy.astype(np.float32)
    out = (noisy[centre], (np.where(outside, 0, crop) * p)[centre].astype(np.float32),
           art.astype(bool) | real[centre], score)
    if not context:
        return out
    bad = big.astype(bool) | real | outside
    blocks = np.where(bad, np.nan, noisy).reshape(size, 2, size, 2, size, 2).mean(axis=(1, 3, 5))
    return out + (blocks.astype(np.float32),)


def _batch(samples):
    arrays = [np.stack(s) for s in zip(*samples)]
    noisy, truth, inmask, score = arrays[:4]
    x, lo, scale = encode_windows(noisy, inmask)
    t = encode_target(truth, lo, scale)
    y = np.stack([t, score.astype(np.float32)], axis=-1).astype(np.float32)
    if len(arrays) > 4:
        return [x, encode_context(arrays[4], lo, scale)], y
    return x, y


def finetune(
    data: np.ndarray,
    mask: np.ndarray,
    model: Any = None,
    *,
    steps: int = 200,
    batch: int = 4,
    learning_rate: float = 1e-4,
    n_eval: int = 16,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> FinetuneResult:
    """Fine-tune the inpainting model on crops of ``data`` with artificial gaps.

    Parameters
    ----------
    data : the user's 3D intensity (counts); never modified.
    mask : its real gap mask (1 = gap).
    model : the model to start from; default a fresh copy of the shipped ``"inpaint"`` model. A model
        passed in is trained in place.
    steps, batch, learning_rate : optimisation (Adam). ~1 s per crop per step on 2 CPU cores.
    n_eval : crops of the fixed evaluation set (``loss_before`` / ``loss_after``).
    seed : random seed (crops, gaps, thinning).
    progress, cancel : steps done / ``steps``; cancel raises ``Cancelled`` (the model is then partly tuned).

    Raises
    ------
    BCDIError
        Data not 3D or smaller than a window, mask of another shape, or no crop with signal.
    """
    from .inpaint import _check_inputs
    from .inpaint_loss import inpaint_loss

    k = keras()
    d, m = _check_inputs(data, mask)
    d = np.asarray(d, dtype=np.float32)
    if model is None:
        from .registry import load_model

        model = load_model("inpaint", fresh=True)
    size = window_size(model)
    pos, peak = crop_positions(d, m, size)
    if len(pos) == 0:
        raise BCDIError(f"fine-tune: no {size}³ crop of the data has both signal (≥ 20 counts) and at most "
                        "half of its voxels in the gap; fine-tuning needs measured regions near the gap")
    w = np.log1p(peak)  # favour bright crops: that is where the gap hurts
    w = w / w.sum()
    ctx = has_context(model)
    if ctx:  # crops are taken as the centres of their 2·size regions: pad so every region is inside
        h = size // 2
        d = np.pad(d, h, constant_values=np.nan)
        m = np.pad(np.asarray(m, np.uint8), h, constant_values=1)
    eval_rng = np.random.default_rng([seed, 1])
    eval_batches = [_batch([_sample(d, m, pos, w, size, eval_rng, thin=False, context=ctx)
                            for _ in range(batch)]) for _ in range(max(1, n_eval // batch))]
    rng = np.random.default_rng([seed, 2])
    model.compile(optimizer=k.optimizers.Adam(learning_rate), loss=inpaint_loss, jit_compile=False)

    def evaluate() -> float:
        return float(np.mean([model.test_on_batch(x, y) for x, y in eval_batches]))

    before = evaluate()
    done = 0
    for done in range(steps):
        report(progress, cancel, done, steps)
        model.train_on_batch(*_batch([_sample(d, m, pos, w, size, rng, context=ctx) for _ in range(batch)]))
    done = steps
    report(progress, cancel, steps, steps)
    after = evaluate()
    return FinetuneResult(model=model, loss_before=before, loss_after=after, steps=done, n_positions=len(pos))
