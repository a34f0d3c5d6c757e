"""Weighted Coherent Average (WCA) loss for reciprocal-space phase prediction.

Masto, Bellec et al. (npj Comput. Mater. 2026) train the phase network with

    L = min over s in {+1, -1} of  1 - | sum_q w_q exp(i (s * phi_true(q) - phi_pred(q))) |

with ``w`` the log-scaled intensity normalised so that ``sum_q w_q = 1`` in every sample. The modulus of
a weighted mean of unit phasors is 1 exactly when the phase difference is constant where the weights are,
so the loss costs nothing for

* a global phase offset (the object's phase is defined up to a constant),
* 2π wraps (the network output is unbounded, the truth is wrapped),
* the sign of the truth (the twin image ``conj(obj(-r))`` has the same intensity and phase ``-phi``),

and it weighs the strong, informative voxels of the pattern more than the noise floor.

:func:`wca_loss` is the Keras loss (``keras.ops`` only, any backend); :func:`wca_numpy` the same quantity
in numpy for held-out metrics and tests, and :func:`wca_weights` the weights both use.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def wca_weights(log_intensity: np.ndarray) -> np.ndarray:
    """Per-sample weights ``w = x / sum(x)`` from a log-scaled, non-negative intensity.

    Parameters
    ----------
    log_intensity : array (..., z, y, x) or (n, z, y, x[, 1]); the first axis is the sample axis when
        ``ndim`` is 4 or 5, otherwise a single sample.
    """
    x = np.clip(np.asarray(log_intensity, dtype=np.float64), 0.0, None)
    if x.ndim <= 3:
        return x / max(float(x.sum()), _EPS)
    axes = tuple(range(1, x.ndim))
    return x / np.maximum(x.sum(axis=axes, keepdims=True), _EPS)


def wca_numpy(phi_true: np.ndarray, phi_pred: np.ndarray, log_intensity: np.ndarray,
              *, per_sample: bool = False) -> np.ndarray | float:
    """The WCA loss in numpy (0 = perfect up to offset, wraps and sign; 1 = no coherence at all).

    Parameters
    ----------
    phi_true, phi_pred : reciprocal-space phases (radians), same shape as ``log_intensity``.
    log_intensity : log-scaled intensity (``log1p(I)``, any scale); sets the weights.
    per_sample : with a batch (4D or 5D arrays), return one value per sample instead of the mean.
    """
    phi_true = np.asarray(phi_true, dtype=np.float64)
    phi_pred = np.asarray(phi_pred, dtype=np.float64)
    if phi_true.shape != phi_pred.shape or phi_true.shape != np.shape(log_intensity):
        raise ValueError(f"wca_numpy: shapes differ: true {phi_true.shape}, predicted {phi_pred.shape}, "
                         f"intensity {np.shape(log_intensity)}")
    w = wca_weights(log_intensity)
    axes = None if phi_true.ndim <= 3 else tuple(range(1, phi_true.ndim))
    out = []
    for sign in (1.0, -1.0):
        z = np.sum(w * np.exp(1j * (sign * phi_true - phi_pred)), axis=axes)
        out.append(1.0 - np.abs(z))
    loss = np.minimum(out[0], out[1])
    if axes is None:
        return float(loss)
    return loss if per_sample else float(np.mean(loss))


def wca_loss(y_true, y_pred, weights=None):
    """Keras WCA loss, one value per sample (Keras averages over the batch).

    Parameters
    ----------
    y_true : tensor (n, z, y, x, 2) — channel 0 the true phase, channel 1 the network input
        (normalised log-intensity), which gives the weights — or (n, z, y, x, 1) with ``weights`` given.
    y_pred : tensor (n, z, y, x, 1), the predicted (unbounded) phase.
    weights : optional tensor (n, z, y, x, 1) of non-negative weights (normalised here).

    Packing the intensity into ``y_true`` lets the plain ``model.compile(loss=wca_loss)`` /
    ``model.fit`` path work without custom training code.
    """
    from ._keras import ops

    o = ops()
    y_true = o.cast(y_true, "float32")
    y_pred = o.cast(y_pred, "float32")
    phi_true = y_true[..., 0:1]
    w = y_true[..., 1:2] if weights is None else o.cast(weights, "float32")
    w = o.maximum(w, 0.0)
    axes = tuple(range(1, len(y_pred.shape)))
    w = w / (o.sum(w, axis=axes, keepdims=True) + _EPS)
    losses = []
    for sign in (1.0, -1.0):
        d = sign * phi_true - y_pred
        re = o.sum(w * o.cos(d), axis=axes)
        im = o.sum(w * o.sin(d), axis=axes)
        losses.append(1.0 - o.sqrt(re * re + im * im + _EPS))
    return o.minimum(losses[0], losses[1])


def pack_targets(phase: np.ndarray, log_intensity: np.ndarray) -> np.ndarray:
    """Stack true phase and weights into the ``y_true`` layout of :func:`wca_loss` ((n, z, y, x, 2))."""
    return np.stack([np.asarray(phase, np.float32), np.asarray(log_intensity, np.float32)], axis=-1)
