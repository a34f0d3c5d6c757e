"""Supports: the initial one from the autocorrelation, shrink-wrap updates, border-only updates.

Public functions take and return *centred* arrays (the project's convention); the ``*_native`` functions
are the engine's versions on FFT-native (corner-origin) backend arrays, where everything is periodic.

Shrink-wrap (PyNX ``SupportUpdate``): the modulus of the object is smoothed by a Gaussian of width σ, and the
new support is where it exceeds ``threshold × reference``, the reference being the root-mean-square
(``method="rms"``, PyNX's default), the mean (``"average"``) or the maximum (``"max"``) of the smoothed
modulus inside the current support. σ decays exponentially from σ₀ to σ₁ over the run
(:func:`sigma_at`). A support whose fraction of the array leaves ``[min_fraction, max_fraction]`` raises
:class:`SupportFractionError` (the runner retries the run, see ``runs.py``).

Border-only updates (constrained refinement): only the voxels of the reference support's one-voxel inner
shell may leave it and only its outer neighbours (6-connected) may join it, by the same threshold test; the
eroded core always stays. The reference is the support when border-only updates began, so the shape is
kept within one voxel however many updates follow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BCDIError
from .backend import Backend, get_backend

METHODS = ("rms", "average", "max")


class SupportFractionError(BCDIError):
    """The support left its allowed fraction of the array (``kind`` is ``"small"`` or ``"large"``)."""

    def __init__(self, kind: str, fraction: float, limit: float) -> None:
        self.kind = kind
        self.fraction = fraction
        self.limit = limit
        word = "below the minimum" if kind == "small" else "above the maximum"
        super().__init__(
            f"support fraction {fraction:.4%} {word} {limit:.4%}: "
            f"{'lower' if kind == 'small' else 'raise'} the support threshold or check the data"
        )


def sigma_at(iteration: int, total: int, sigma: Any) -> float:
    """Smoothing width at ``iteration`` of a run of ``total``: ``sigma`` is σ, (σ₀, σ₁) or (σ₀, σ₁, n).

    With two or three values σ decays exponentially, ``σ₀ · (σ₁/σ₀)^(i/n)``, reaching σ₁ after ``n``
    iterations (default: the run length) and staying there (PyNX's ``smooth_width=(a, b, nb)``).
    """
    if np.isscalar(sigma):
        return float(sigma)
    vals = [float(v) for v in sigma]
    s0, s1 = vals[0], vals[1]
    n = vals[2] if len(vals) > 2 else float(total)
    if n <= 0 or s0 <= 0 or s1 <= 0:
        return s1
    f = min(max(iteration / n, 0.0), 1.0)
    return float(s0 * (s1 / s0) ** f)


def _dilate6(xp: Any, s: Any) -> Any:
    """6-connected periodic dilation of a boolean array (works for numpy and CuPy)."""
    out = s.copy()
    for axis in range(s.ndim):
        out |= xp.roll(s, 1, axis=axis)
        out |= xp.roll(s, -1, axis=axis)
    return out


def _erode6(xp: Any, s: Any) -> Any:
    return ~_dilate6(xp, ~s)


def autocorrelation_support_native(be: Backend, intensity_native: Any, threshold: float) -> Any:
    """Boolean support where |autocorrelation| > threshold × its maximum (FFT-native in and out).

    ``intensity_native`` must hold zeros on masked and free voxels. The autocorrelation of the object is
    the inverse FFT of the intensity; its extent is twice the object's, which shrink-wrap then reduces.
    """
    xp = be.xp
    ac = be.xp.array(intensity_native, dtype=np.complex64)  # a new complex array
    ac = be.ifftn_(ac)
    mod = xp.abs(ac)
    del ac
    return mod > (float(threshold) * be.scalar(mod.max()))


def autocorrelation_support(
    intensity: np.ndarray, mask: np.ndarray | None = None, threshold: float = 0.1
) -> np.ndarray:
    """Initial support (uint8, centred) from the autocorrelation of a centred intensity.

    Parameters
    ----------
    intensity : centred diffraction intensity (z, y, x).
    mask : 1 on voxels to ignore (set to zero before the transform).
    threshold : relative to the autocorrelation maximum (PyNX uses 0.09–0.11 at ID01, 0.2 by default).
    """
    i = np.array(intensity, dtype=np.float32)
    if mask is not None:
        i[np.asarray(mask, dtype=bool)] = 0
    be = get_backend("numpy")
    s = autocorrelation_support_native(be, np.fft.ifftshift(i), threshold)
    return np.fft.fftshift(s).astype(np.uint8)


def smoothed_modulus_native(
    be: Backend, obj: Any, sigma: float, out: Any | None = None, work: Any | None = None
) -> Any:
    """Gaussian-smoothed |obj| (float32, periodic) into ``out``; ``work`` is a float32 buffer for |obj|."""
    mod = be.xp.abs(obj, out=work) if work is not None else be.xp.abs(obj)
    return be.gaussian_filter(mod, sigma, output=out)


def update_support_native(
    be: Backend,
    obj: Any,
    support: Any,
    *,
    sigma: float,
    threshold: float,
    method: str = "rms",
    border_only: bool = False,
    min_fraction: float = 0.0,
    max_fraction: float = 1.0,
    scratch: Any | None = None,
    work: Any | None = None,
    reference: Any | None = None,
) -> Any:
    """New boolean support (FFT-native) from the object's smoothed modulus; see the module notes.

    With ``border_only`` only the one-voxel shell of ``reference`` (default: the current support) may
    change, so repeated updates never drift more than one voxel from the reference shape.

    Raises :class:`SupportFractionError` when the new support's fraction leaves the allowed range.
    """
    xp = be.xp
    if method not in METHODS:
        raise BCDIError(f"unknown support threshold method {method!r}: use one of {', '.join(METHODS)}")
    sm = smoothed_modulus_native(be, obj, sigma, out=scratch, work=work)
    n_sup = int(be.scalar(support.sum()))
    if n_sup == 0:
        raise SupportFractionError("small", 0.0, min_fraction)
    inside = sm[support]
    if method == "max":
        ref = be.scalar(inside.max())
    elif method == "average":
        ref = be.scalar(inside.sum(dtype=np.float64)) / n_sup
    else:
        ref = float(np.sqrt(be.scalar((inside.astype(np.float64) ** 2).sum()) / n_sup))
    del inside
    above = sm > (float(threshold) * ref)
    if border_only:
        ref = support if reference is None else reference
        core = _erode6(xp, ref)
        ring = _dilate6(xp, ref) & ~core  # inner shell + outer neighbours of the reference support
        new = core | (ring & above)
    else:
        new = above
    frac = be.scalar(new.sum()) / new.size
    if frac <= min_fraction:
        raise SupportFractionError("small", frac, min_fraction)
    if frac >= max_fraction:
        raise SupportFractionError("large", frac, max_fraction)
    return new


def update_support(
    obj: np.ndarray,
    support: np.ndarray,
    *,
    sigma: float = 1.0,
    threshold: float = 0.25,
    method: str = "rms",
    border_only: bool = False,
) -> np.ndarray:
    """One shrink-wrap (or border-only) update of a centred support (uint8 in, uint8 out).

    Parameters
    ----------
    obj : centred complex object.
    support : centred support (1 inside).
    sigma : Gaussian smoothing width in voxels.
    threshold : relative threshold (see ``method``).
    method : ``"rms"``, ``"average"`` or ``"max"`` of the smoothed modulus inside the current support.
    border_only : only the support's border may change.
    """
    be = get_backend("numpy")
    o = np.asarray(obj)
    s = np.asarray(support, dtype=bool)
    if o.shape != s.shape:
        raise BCDIError(f"support shape {s.shape} differs from object shape {o.shape}")
    new = update_support_native(
        be, o, s, sigma=sigma, threshold=threshold, method=method, border_only=border_only
    )
    return new.astype(np.uint8)
