"""Loss of the inpainting model: masked L1 + gradient term + SSIM-like structural term (``keras.ops`` only).

The target tensor packs what the loss needs, channels last:

* ``y_true[..., 0]`` — the target patch in the model's normalised log scale;
* ``y_true[..., 1]`` — the loss weight: 1 on the gap voxels to score (the gap), 0 elsewhere;
* ``y_true[..., 2]`` (optional) — a per-sample weight, constant over the patch, that multiplies the
  sample's loss (training with ``linear_weight``, see
  :func:`napari_bcdi_dl.models.inpaint_training.linear_relative_weights`); without it every sample counts 1.

The prediction is used only inside the gap, so every term is computed on the *composite*
``c = w·pred + (1 − w)·target`` (what inference produces): L1 is then an L1 inside the gap, the gradient
term also sees the seams at the gap border, and the structural term compares local statistics of windows
that straddle the gap. Each term is normalised per sample by the number of gap voxels it touches.

``L = l1 + grad_weight · grad + ssim_weight · (1 − ssim) [+ bright_weight · bright]
[+ amplitude_weight · amplitude]``

The optional *bright* term (:func:`bright_l1`) is the same L1 weighted by the target's brightness. Plain L1
in log scale counts every gap voxel alike, so the few voxels beside the Bragg peak, which carry most of the
gap's photons and so most of what a reconstruction sees, hardly count: models trained without it fill a
gap beside the peak with ~2× its true photons (``docs/models.md``, photon table).

The optional *amplitude* term (:func:`amplitude_l2`) scores the gap where a reconstruction sees it: the
squared error of the amplitude ``√I`` (Parseval: the object's error with the true phase), relative to the
window's total. A fill 4× too bright beside the peak costs it as much as one with no photons there; in
log scale the first costs far less.

Works for 2D or 3D patches (``(batch, *spatial, 2)``) on every Keras backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._keras import keras

EPS = 1e-6
#: Default sharpness of the brightness weights of :func:`bright_l1`.
BRIGHT_SHARPNESS = 7.0


def _spatial_axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(1, ndim - 1))


def _split(y_true: Any, y_pred: Any) -> tuple[Any, Any, Any]:
    ops = keras().ops
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    target = y_true[..., :1]
    weight = y_true[..., 1:2]
    comp = weight * y_pred[..., :1] + (1.0 - weight) * target
    return target, weight, comp


def sample_weight(y_true: Any) -> Any:
    """Per-sample weight of the optional third target channel (its patch mean), shape (batch,); 1 without it.

    When the channel count is not known at trace time (Keras retraces a step with a relaxed shape once it
    has seen targets with and without the weight channel), ones are appended and channel 2 is read: the
    weight when there is one, 1 otherwise.
    """
    ops = keras().ops
    channels = y_true.shape[-1]
    if channels is not None and channels < 3:
        return 1.0
    w = ops.cast(y_true, "float32")
    if channels is None:
        ones = ops.ones_like(w[..., :1])
        w = ops.concatenate([w, ones], axis=-1)
    w = w[..., 2:3]
    return ops.mean(w, axis=tuple(range(1, len(w.shape))))


def masked_l1(y_true: Any, y_pred: Any) -> Any:
    """Per-sample mean absolute error inside the gap, shape (batch,)."""
    target, weight, comp = _split(y_true, y_pred)
    return _weighted_mean_error(target, comp, weight)


def _weighted_mean_error(target: Any, comp: Any, w: Any) -> Any:
    """``Σ w·|comp − target| / Σ w`` per sample, shape (batch,)."""
    ops = keras().ops
    axes = _spatial_axes(len(target.shape)) + (len(target.shape) - 1,)
    return ops.sum(w * ops.abs(comp - target), axis=axes) / (ops.sum(w, axis=axes) + EPS)


def gradient_l1(y_true: Any, y_pred: Any) -> Any:
    """Per-sample L1 of the finite-difference gradient error on pairs that touch the gap, shape (batch,)."""
    ops = keras().ops
    target, weight, comp = _split(y_true, y_pred)
    nd = len(target.shape)
    axes = tuple(range(1, nd))
    err = comp - target
    total = 0.0
    count = 0.0
    for ax in _spatial_axes(nd):
        n = target.shape[ax]
        lo = [slice(None)] * nd
        hi = [slice(None)] * nd
        lo[ax] = slice(0, n - 1)
        hi[ax] = slice(1, n)
        lo, hi = tuple(lo), tuple(hi)
        d = err[hi] - err[lo]
        touch = ops.maximum(weight[hi], weight[lo])
        total = total + ops.sum(ops.abs(d) * touch, axis=axes)
        count = count + ops.sum(touch, axis=axes)
    return total / (count + EPS)


def bright_l1(y_true: Any, y_pred: Any, *, sharpness: float = BRIGHT_SHARPNESS) -> Any:
    """Per-sample L1 inside the gap, each voxel weighted by ``exp(sharpness · (t − 1))``, shape (batch,).

    ``t`` is the target in the normalised log scale (1 = the window's brightest valid voxel), so the weight
    is about ``(I / I_max)^(sharpness / range)`` with ``range`` the window's ``log(1 + I)`` span (~14 near a
    peak of 10⁶ counts): with the default 7, roughly ``√I``. Normalised by the weights' sum, so it is a
    weighted mean error per window, bounded like :func:`masked_l1`.
    """
    target, weight, comp = _split(y_true, y_pred)
    return _weighted_mean_error(target, comp, weight * _brightness(target, sharpness))


def _brightness(t: Any, sharpness: float) -> Any:
    """``exp(sharpness · (t − 1))`` of a normalised log intensity, ``t`` clipped at 1.5."""
    ops = keras().ops
    return ops.exp(float(sharpness) * (ops.minimum(t, 1.5) - 1.0))


def amplitude_l2(y_true: Any, y_pred: Any, *, sharpness: float = BRIGHT_SHARPNESS) -> Any:
    """Per-sample ``Σ_gap (a(comp) − a(t))² / Σ_window a(t)²``, ``a(t) = exp(sharpness · (t − 1))``, (batch,).

    ``t`` is the normalised log scale (1 = the window's brightest valid voxel, ``log(1 + I)`` spanning
    ``range`` ≈ 14 near a peak of 10⁶ counts), so with the default 7 ``a`` is about ``√(I / I_max)``, the
    amplitude. The denominator is the window's total (valid and gap voxels of the target), so a faint gap
    far from the peak weighs little, as it does in real space, and the term is bounded for any window.
    The prediction is clipped at 1.5 (a fill 1.5 × ``range`` above the window's maximum) before the
    exponential.
    """
    ops = keras().ops
    target, weight, comp = _split(y_true, y_pred)
    a_t, a_c = _brightness(target, sharpness), _brightness(comp, sharpness)
    axes = _spatial_axes(len(target.shape)) + (len(target.shape) - 1,)
    err = ops.sum(weight * ops.square(a_c - a_t), axis=axes)
    return err / (ops.sum(ops.square(a_t), axis=axes) + EPS)


def _box(x: Any, size: int) -> Any:
    """Mean over a ``size``-box around each voxel (zero padding), separable, by cumulative sums.

    ``average_pool`` with stride 1 does the same but its gradient is ~100× slower on the CPU.
    """
    ops = keras().ops
    r = size // 2
    nd = len(x.shape)
    for ax in range(1, nd - 1):
        n = x.shape[ax]
        pad = [[0, 0]] * nd
        pad[ax] = [r + 1, r]
        c = ops.cumsum(ops.pad(x, pad), axis=ax)
        hi = [slice(None)] * nd
        lo = [slice(None)] * nd
        hi[ax] = slice(2 * r + 1, 2 * r + 1 + n)
        lo[ax] = slice(0, n)
        x = c[tuple(hi)] - c[tuple(lo)]
    return x / float(size ** (nd - 2))


def ssim_term(y_true: Any, y_pred: Any, *, size: int = 5, c1: float = 1e-4, c2: float = 9e-4) -> Any:
    """Per-sample mean local SSIM over the voxels whose ``size``-box touches the gap, shape (batch,).

    Local means, variances and covariance come from a ``size``-box filter (:func:`_box`). The
    constants are the usual ``(0.01·L)²`` and ``(0.03·L)²`` for a dynamic range L = 1.
    """
    ops = keras().ops
    target, weight, comp = _split(y_true, y_pred)
    mu_t = _box(target, size)
    mu_c = _box(comp, size)
    var_t = _box(target * target, size) - mu_t * mu_t
    var_c = _box(comp * comp, size) - mu_c * mu_c
    cov = _box(target * comp, size) - mu_t * mu_c
    ssim = ((2.0 * mu_t * mu_c + c1) * (2.0 * cov + c2)) / (
        (mu_t * mu_t + mu_c * mu_c + c1) * (ops.maximum(var_t, 0.0) + ops.maximum(var_c, 0.0) + c2))
    near = ops.cast(_box(weight, size) > 0.0, "float32")
    axes = tuple(range(1, len(target.shape)))
    return ops.sum(ssim * near, axis=axes) / (ops.sum(near, axis=axes) + EPS)


def make_inpaint_loss(l1_weight: float = 1.0, grad_weight: float = 0.5, ssim_weight: float = 0.1,
                      ssim_size: int = 5, bright_weight: float = 0.0,
                      bright_sharpness: float = BRIGHT_SHARPNESS,
                      amplitude_weight: float = 0.0,
                      amplitude_sharpness: float = BRIGHT_SHARPNESS) -> Callable[[Any, Any], Any]:
    """Return ``loss(y_true, y_pred) -> (batch,)`` combining the terms (see the module docstring)."""

    def inpaint_loss(y_true: Any, y_pred: Any) -> Any:
        loss = l1_weight * masked_l1(y_true, y_pred)
        if grad_weight:
            loss = loss + grad_weight * gradient_l1(y_true, y_pred)
        if ssim_weight:
            loss = loss + ssim_weight * (1.0 - ssim_term(y_true, y_pred, size=ssim_size))
        if bright_weight:
            loss = loss + bright_weight * bright_l1(y_true, y_pred, sharpness=bright_sharpness)
        if amplitude_weight:
            loss = loss + amplitude_weight * amplitude_l2(y_true, y_pred, sharpness=amplitude_sharpness)
        return loss * sample_weight(y_true)

    return inpaint_loss


#: The loss the shipped model was trained with.
inpaint_loss = make_inpaint_loss()
