"""How good is a reconstruction: fit to the data (LLK, χ², PRTF), sharpness, and comparison of two
reconstructions up to the BCDI ambiguities.

Fit to the data (``i_calc = |fftshift(fftn(ifftshift(obj)))|²``, scaled to the data):

* ``llk`` — Poisson log-likelihood as PyNX computes it: per voxel ``I_c − I_o + I_o log(I_o / I_c)``
  (``I_c`` when ``I_o ≤ 0.1``), i.e. the Poisson negative log-likelihood minus that of the ideal model
  ``I_c = I_o``; summed over observed, non-free voxels and divided by their number minus the number of
  support voxels (PyNX's ``CDI.get_llk``). ``llk_free`` is the same on the free voxels divided by their
  number. For a statistically ideal fit both tend to ~0.5 at high counts (E[(I_o − I_c)²/2I_c] = 1/2)
  and are lower where counts are below one photon.
* ``chi2`` — PyNX's Gaussian LLK: ``(I_o − I_c)² / (I_o + 1)`` averaged over observed voxels (~1 for an
  ideal fit to Poisson data with many counts).
* ``prtf`` — phase retrieval transfer function: shell sums of ``|<F_calc>|`` over shell sums of
  ``sqrt(I_obs)`` (PyNX's default "before" averaging), the runs registered to the first one before their
  complex amplitudes are averaged; the resolution is where it falls below 1/e.

Comparison (``compare``, ``register``) removes, in order: the twin (``conj(ρ(−r))``, inversion about the FFT
centre), the translation (integer + sub-voxel, by cross-correlation), then the global phase and scale
(least squares ``γ = <b, a> / <b, b>``). It then reports the complex normalised error
``||a − γ b|| / ||a||``, the phase RMSE inside the *eroded* common support (the smoothed edges, where the
phase is ill-defined, do not count) and the IoU of the supports. A success threshold is the caller's
choice; it must make "right shape, half the strain" and "right shape, flat phase" fail on strained
crystals (see ``../shared/notes/measuring-model-quality.md``); ``is_match`` holds the project defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import BCDIError
from .phasing import likelihood as _likelihood
from .postprocess import invert, twin

# project defaults for "the same reconstruction" (see is_match and tests/core/test_metrics.py)
MATCH_MAX_ERROR = 0.25
MATCH_MAX_PHASE_RMSE = 0.35  # rad, inside the eroded common support


# ------------------------------------------------------------------------------------------ intensities
def calc_intensity(obj: np.ndarray) -> np.ndarray:
    """Diffracted intensity of a centred object, ``|fftshift(fftn(ifftshift(obj)))|²`` (float64)."""
    o = np.asarray(obj)
    if o.ndim != 3:
        raise BCDIError(f"object has shape {o.shape}: a 3D array is needed")
    f = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(o)))
    return f.real**2 + f.imag**2


def _check_intensities(i_obs, i_calc, mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obs = np.asarray(i_obs, dtype=np.float64)
    calc = np.asarray(i_calc, dtype=np.float64)
    if obs.shape != calc.shape:
        raise BCDIError(f"observed intensity {obs.shape} and calculated {calc.shape} differ in shape")
    if not np.all(np.isfinite(obs)) or not np.all(np.isfinite(calc)):
        raise BCDIError("intensity holds NaN or infinite values: mask or remove them first")
    valid = np.ones(obs.shape, dtype=bool)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != obs.shape:
            raise BCDIError(f"mask {m.shape} and intensity {obs.shape} differ in shape")
        valid = m == 0
    if np.any(obs[valid] < 0):
        raise BCDIError("observed intensity has negative values: mask them (mask = 1) or clip the data")
    if not valid.any():
        raise BCDIError("the mask covers every voxel: nothing is observed")
    return obs, np.maximum(calc, 0.0), valid


def llk(
    i_obs: np.ndarray,
    i_calc: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    free: np.ndarray | None = None,
    n_support: int = 0,
) -> float:
    """Poisson LLK normalised as PyNX: Σ over observed non-free voxels / (their number − ``n_support``).

    ``mask``: 1 = not observed (gap); ``free``: 1 = free voxel (left out of the sum, see :func:`llk_free`).
    The per-voxel terms are the phasing engine's (:func:`.phasing.likelihood.llk_poisson`); this adds the
    input checks.
    """
    obs, calc, valid = _check_intensities(i_obs, i_calc, mask)
    if free is not None:
        f = np.asarray(free)
        if f.shape != obs.shape:
            raise BCDIError(f"free-voxel mask {f.shape} and intensity {obs.shape} differ in shape")
        valid = valid & (f == 0)
    n = int(valid.sum()) - int(n_support)
    if n <= 0:
        raise BCDIError(
            f"{int(valid.sum())} observed voxels for {n_support} support voxels: too few to normalise the LLK"
        )
    return float(_likelihood.llk_poisson(obs, calc, ~valid, n_support=int(n_support)))


def llk_free(i_obs: np.ndarray, i_calc: np.ndarray, free: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Poisson LLK on the free voxels (``free`` = 1), divided by their number (PyNX's free LLK)."""
    obs, calc, valid = _check_intensities(i_obs, i_calc, mask)
    f = np.asarray(free)
    if f.shape != obs.shape:
        raise BCDIError(f"free-voxel mask {f.shape} and intensity {obs.shape} differ in shape")
    value = _likelihood.llk_free(obs, calc, f != 0, ~valid)
    if value is None:
        raise BCDIError("no free voxel: the free LLK needs free voxels (e.g. 5 % of the observed ones)")
    return float(value)


def chi2(i_obs: np.ndarray, i_calc: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean of ``(I_o − I_c)² / (I_o + 1)`` over observed voxels (PyNX's normalised Gaussian LLK)."""
    obs, calc, valid = _check_intensities(i_obs, i_calc, mask)
    return float(np.mean((obs[valid] - calc[valid]) ** 2 / (obs[valid] + 1.0)))


def scale_factor(i_obs: np.ndarray, i_calc: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Factor ``s`` making ``Σ s I_c = Σ I_o`` over the observed voxels."""
    obs, calc, valid = _check_intensities(i_obs, i_calc, mask)
    total = calc[valid].sum()
    if total <= 0:
        raise BCDIError("calculated intensity is zero on every observed voxel: the object is empty")
    return float(obs[valid].sum() / total)


def sharpness(obj: np.ndarray, support: np.ndarray | None = None) -> float:
    """``Σ|ρ|⁴ / (Σ|ρ|²)²`` over the support (the whole array when None): scale-free, ``1/N`` for a uniform
    object of N voxels, larger for a modulus concentrated in fewer voxels (its inverse is the effective
    number of voxels)."""
    m2 = np.abs(np.asarray(obj, dtype=np.complex128)) ** 2
    if support is not None:
        s = np.asarray(support)
        if s.shape != m2.shape:
            raise BCDIError(f"support {s.shape} and object {m2.shape} differ in shape")
        m2 = m2[s != 0]
    total = m2.sum()
    if total <= 0:
        raise BCDIError("object is zero on its support: sharpness undefined")
    return float(np.sum(m2**2) / total**2)


# -------------------------------------------------------------------------------------------- alignment
def _as_complex(a, where: str) -> np.ndarray:
    x = np.asarray(a)
    if x.ndim != 3:
        raise BCDIError(f"{where} has shape {x.shape}: a 3D array is needed")
    if not np.all(np.isfinite(x)):
        raise BCDIError(f"{where} holds NaN or infinite values")
    x = x.astype(np.complex128)
    if not np.any(x):
        raise BCDIError(f"{where} is zero everywhere")
    return x


def _default_support(obj: np.ndarray, threshold: float) -> np.ndarray:
    m = np.abs(obj)
    return m >= threshold * m.max()


def _shift(array: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Circular shift by a possibly fractional vector (exact roll for integers, Fourier shift otherwise)."""
    if np.allclose(shift, np.round(shift), atol=1e-9):
        return np.roll(array, tuple(round(s) for s in shift), axis=(0, 1, 2))
    return np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(array), shift))


def _shift_support(support: np.ndarray, shift: np.ndarray) -> np.ndarray:
    if np.allclose(shift, np.round(shift), atol=1e-9):
        return np.roll(support, tuple(round(s) for s in shift), axis=(0, 1, 2))
    return ndimage.shift(support.astype(np.float32), shift, order=1, mode="grid-wrap") >= 0.5


@dataclass
class _Alignment:
    aligned: np.ndarray
    support: np.ndarray | None
    twin: bool
    shift: np.ndarray
    gamma: complex
    error: float


def _peak_shift(x: np.ndarray) -> np.ndarray:
    """Integer shift (wrapped to [−N/2, N/2)) of the maximum of |x|."""
    p = np.array(np.unravel_index(int(np.argmax(np.abs(x))), x.shape), dtype=np.float64)
    n = np.asarray(x.shape, dtype=np.float64)
    return np.where(p >= n / 2, p - n, p)


def _fit(a: np.ndarray, moved: np.ndarray, norm_a: float) -> tuple[complex, float]:
    denom = np.vdot(moved, moved).real
    gamma = complex(np.vdot(moved, a) / denom) if denom > 0 else 0j
    return gamma, float(np.linalg.norm(a - gamma * moved) / norm_a)


def _align(a: np.ndarray, b: np.ndarray, support_b: np.ndarray | None, allow_twin: bool, upsample: int) -> _Alignment:
    """Minimise ``||a − γ T b||`` over the twin, translations T and the complex scalar γ.

    Integer translations come from the peaks of the complex and of the modulus cross-correlations (the
    modulus one is robust when phases differ a lot); the best is refined to 1/``upsample`` voxel.
    """
    from skimage.registration import phase_cross_correlation

    norm_a = np.linalg.norm(a)
    fa, fma = np.fft.fftn(a), np.fft.fftn(np.abs(a))
    best = None
    candidates = [(b, support_b, False)]
    if allow_twin:
        candidates.append((twin(b), None if support_b is None else invert(support_b), True))
    for cand, sup, is_twin in candidates:
        shifts = [
            _peak_shift(np.fft.ifftn(fa * np.conj(np.fft.fftn(cand)))),
            _peak_shift(np.fft.ifftn(fma * np.conj(np.fft.fftn(np.abs(cand))))),
        ]
        for shift in shifts:
            moved = _shift(cand, shift)
            gamma, error = _fit(a, moved, norm_a)
            if best is None or error < best[0]:
                best = (error, gamma, shift, moved, cand, sup, is_twin)
    error, gamma, shift, moved, cand, sup, is_twin = best
    if upsample > 1:
        residual, _, _ = phase_cross_correlation(a, moved, upsample_factor=int(upsample), normalization=None)
        residual = np.asarray(residual, dtype=np.float64)
        if np.any(residual != 0) and np.all(np.abs(residual) <= 1.0):
            fine = _shift(cand, shift + residual)
            g2, e2 = _fit(a, fine, norm_a)
            if e2 < error:
                error, gamma, shift, moved = e2, g2, shift + residual, fine
    moved_sup = None if sup is None else _shift_support(sup, shift)
    return _Alignment(moved, moved_sup, is_twin, shift, gamma, error)


def _best_support_iou(sa: np.ndarray, sb: np.ndarray, allow_twin: bool) -> float:
    """max over integer circular shifts (and the inverted support) of |sa ∩ T sb| / |sa ∪ T sb|."""
    fa = np.fft.rfftn(sa.astype(np.float64))
    na, nb = float(sa.sum()), float(sb.sum())
    best = 0.0
    for cand in ([sb, invert(sb)] if allow_twin else [sb]):
        overlap = np.fft.irfftn(fa * np.conj(np.fft.rfftn(cand.astype(np.float64))), s=sa.shape,
                                  axes=tuple(range(sa.ndim))).max()
        overlap = float(np.rint(overlap))
        best = max(best, overlap / (na + nb - overlap))
    return best


def register(
    a: np.ndarray,
    b: np.ndarray,
    *,
    allow_twin: bool = True,
    upsample: int = 20,
    scale: bool = True,
) -> np.ndarray:
    """``b`` aligned onto ``a``: twin if it fits better, translated (sub-voxel, 1/``upsample``), multiplied by
    the best global phase (and scale when ``scale``). Returns a new complex64 array."""
    a_ = _as_complex(a, "reference")
    b_ = _as_complex(b, "object")
    if a_.shape != b_.shape:
        raise BCDIError(f"objects differ in shape ({a_.shape} vs {b_.shape}): crop or pad to a common shape")
    al = _align(a_, b_, None, allow_twin, upsample)
    g = al.gamma if scale else np.exp(1j * np.angle(al.gamma))
    return (g * al.aligned).astype(np.complex64)


def compare(
    a: np.ndarray,
    b: np.ndarray,
    support_a: np.ndarray | None = None,
    support_b: np.ndarray | None = None,
    *,
    allow_twin: bool = True,
    erode: int = 2,
    upsample: int = 20,
    support_threshold: float = 0.3,
    remove_ramp: bool = False,
) -> dict:
    """Compare two reconstructions of one crystal up to twin, translation, global phase and scale.

    Parameters
    ----------
    a, b : complex objects of the same shape (``a`` is the reference, e.g. the truth).
    support_a, support_b : their supports (1 = inside); None: ``|ρ| ≥ support_threshold · max``.
    allow_twin : also try the twin of ``b``.
    erode : voxels peeled off the common support before the phase RMSE (the crystal's core).
    upsample : sub-voxel precision of the translation (1/upsample voxel; 1 = integer shifts).
    remove_ramp : also remove a linear phase difference over the core before the phase RMSE (when the two
        were not phased from identically centred data).

    Returns
    -------
    dict with ``error`` (complex normalised error, 0 = identical), ``phase_rmse`` (rad, core),
    ``iou`` (supports after the alignment above), ``shape_iou`` (best IoU of the supports alone over
    integer shifts and the twin: "is the shape right", whatever the phase), ``twin`` (True if ``b``'s twin
    was used), ``shift`` (z, y, x voxels applied to ``b``, or to its twin when ``twin``), ``phase_offset``
    (rad, arg γ), ``scale`` (|γ|), ``n_core`` (voxels in the core).
    """
    return _compare(a, b, support_a, support_b, allow_twin=allow_twin, erode=erode, upsample=upsample,
                    support_threshold=support_threshold, remove_ramp=remove_ramp)[0]


def _compare(a, b, support_a, support_b, *, allow_twin: bool, erode: int, upsample: int,
             support_threshold: float, remove_ramp: bool) -> tuple[dict, _Alignment, np.ndarray]:
    """:func:`compare`'s numbers, the alignment of ``b`` and the reference's support."""
    a_ = _as_complex(a, "first object")
    b_ = _as_complex(b, "second object")
    if a_.shape != b_.shape:
        raise BCDIError(f"objects differ in shape ({a_.shape} vs {b_.shape}): crop or pad to a common shape")
    sa = _default_support(a_, support_threshold) if support_a is None else np.asarray(support_a) != 0
    sb = _default_support(b_, support_threshold) if support_b is None else np.asarray(support_b) != 0
    for s, name in ((sa, "support_a"), (sb, "support_b")):
        if s.shape != a_.shape:
            raise BCDIError(f"{name} has shape {s.shape}, the objects {a_.shape}")
        if not s.any():
            raise BCDIError(f"{name} is empty")
    al = _align(a_, b_, sb, allow_twin, upsample)
    sb_al = al.support
    inter = sa & sb_al
    union = sa | sb_al
    iou = float(inter.sum() / union.sum())
    shape_iou = _best_support_iou(sa, sb, allow_twin)
    core = ndimage.binary_erosion(inter, iterations=int(erode)) if erode > 0 else inter
    if not core.any():
        core = inter
    if core.any():
        d = np.angle(a_[core] * np.conj(al.aligned[core]))
        if remove_ramp and core.sum() >= 4:
            idx = np.argwhere(core).astype(np.float64)
            design = np.column_stack([np.ones(len(idx)), idx])
            # fit on the unwrapped-about-the-mean differences (they are small when the objects agree)
            d = np.angle(np.exp(1j * (d - np.angle(np.sum(np.exp(1j * d))))))
            coef, *_ = np.linalg.lstsq(design, d, rcond=None)
            d = d - design @ coef
        d = np.angle(np.exp(1j * (d - np.angle(np.sum(np.exp(1j * d))))))
        phase_rmse = float(np.sqrt(np.mean(d**2)))
    else:
        phase_rmse = float("nan")
    return {
        "error": al.error,
        "phase_rmse": phase_rmse,
        "iou": iou,
        "shape_iou": shape_iou,
        "twin": bool(al.twin),
        "shift": tuple(float(x) for x in al.shift),
        "phase_offset": float(np.angle(al.gamma)),
        "scale": float(abs(al.gamma)),
        "n_core": int(core.sum()),
    }, al, sa


def register_to(
    reference: np.ndarray,
    obj: np.ndarray,
    support_ref: np.ndarray | None = None,
    support: np.ndarray | None = None,
    *,
    allow_twin: bool = True,
    upsample: int = 20,
    support_threshold: float = 0.3,
) -> dict:
    """Register ``obj`` (and its support) onto ``reference`` and measure the pair, in one alignment.

    The twin, the translation (sub-voxel) and the global phase of ``obj`` are removed (not its scale), as
    :func:`compare` finds them.

    Returns
    -------
    dict with :func:`compare`'s numbers plus ``aligned`` (complex64 object on the reference's grid),
    ``support`` (uint8 aligned support), ``common`` (bool, reference ∩ aligned support) and ``difference``
    (float32 phase of ``reference · conj(aligned)`` inside ``common``, its circular mean removed, NaN outside).
    """
    out, al, sa = _compare(reference, obj, support_ref, support, allow_twin=allow_twin, erode=2, upsample=upsample,
                           support_threshold=support_threshold, remove_ramp=False)
    aligned = (np.exp(1j * np.angle(al.gamma)) * al.aligned).astype(np.complex64)
    common = sa & al.support
    d = np.angle(np.asarray(reference) * np.conj(aligned))
    if common.any():  # the global phase is arbitrary: remove the mean difference
        d = np.angle(np.exp(1j * (d - np.angle(np.sum(np.exp(1j * d[common]))))))
    out.update(aligned=aligned, support=np.asarray(al.support, np.uint8), common=common,
               difference=np.where(common, d, np.nan).astype(np.float32))
    return out


def support_or_threshold(obj: np.ndarray, support: np.ndarray | None = None, threshold: float = 0.3) -> np.ndarray:
    """The support as bool, or ``|ρ| ≥ threshold · max|ρ|`` when it is None."""
    if support is not None:
        return np.asarray(support) != 0
    return _default_support(np.asarray(obj), threshold)


def fit_metrics(obj: np.ndarray, support: np.ndarray, i_obs: np.ndarray | None = None, mask: np.ndarray | None = None,
                *, voxel_size: Sequence[float] | None = None, known_llk: float | None = None,
                known_llk_free: float | None = None) -> dict:
    """How well ``obj`` fits the measured intensity: LLK, χ², PRTF resolution (None where not known).

    ``known_llk``/``known_llk_free``: the values the phasing reported (kept; the LLK is computed only when
    missing).
    Without ``i_obs`` (or with another shape) only those two are returned, the rest None.

    Returns
    -------
    dict with ``llk``, ``llk_free``, ``chi2``, ``prtf_nm`` (mean over the axes), ``prtf_voxels`` and
    ``prtf`` (the :class:`PRTF`, or None).
    """
    def finite(v):
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return f if np.isfinite(f) else None

    out = {"llk": finite(known_llk), "llk_free": finite(known_llk_free), "chi2": None, "prtf_nm": None, "prtf_voxels": None,
           "prtf": None}
    if i_obs is None or np.shape(i_obs) != np.shape(obj):
        return out
    calc = calc_intensity(obj)
    calc = calc * scale_factor(i_obs, calc, mask)
    out["chi2"] = chi2(i_obs, calc, mask)
    if out["llk"] is None:
        out["llk"] = llk(i_obs, calc, mask, n_support=int(np.count_nonzero(support)))
    p = prtf(i_obs, obj, mask, voxel_size=voxel_size)
    out["prtf"] = p
    out["prtf_voxels"] = p.resolution_voxels
    out["prtf_nm"] = None if p.resolution_nm is None else float(np.mean(p.resolution_nm))
    return out


def is_match(
    result: dict, max_error: float = MATCH_MAX_ERROR, max_phase_rmse: float = MATCH_MAX_PHASE_RMSE
) -> bool:
    """True when a :func:`compare` result says "same reconstruction" under the project thresholds."""
    return bool(result["error"] <= max_error and result["phase_rmse"] <= max_phase_rmse)


# ------------------------------------------------------------------------------------------------- PRTF
@dataclass
class PRTF:
    """Phase retrieval transfer function per frequency shell.

    Attributes
    ----------
    frequency : shell centres as a fraction of the Nyquist frequency (0 … 1).
    values : PRTF per shell (NaN where the shell has no observed signal).
    counts : observed voxels per shell.
    resolution_frequency : where the PRTF first falls below ``threshold`` (fraction of Nyquist, linearly
        interpolated; 1.0 when it never does).
    resolution_voxels : half-period resolution in voxels, ``1 / resolution_frequency``.
    resolution_nm : the same per axis (z, y, x) in nm when a voxel size was given, else None.
    threshold : 1/e.
    """

    frequency: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    resolution_frequency: float
    resolution_voxels: float
    resolution_nm: tuple | None
    threshold: float = float(np.exp(-1))


def _shell_index(shape: Sequence[int]) -> tuple[np.ndarray, int]:
    n_shells = max(shape) // 2
    r2 = np.zeros(tuple(shape))
    for axis, n in enumerate(shape):
        k = (np.arange(n) - n // 2) / max(n / 2, 1)
        sh = [1, 1, 1]
        sh[axis] = n
        r2 = r2 + k.reshape(sh) ** 2
    return np.rint(np.sqrt(r2) * n_shells).astype(np.int64), n_shells


def prtf(
    i_obs: np.ndarray,
    objs: np.ndarray | Sequence[np.ndarray],
    mask: np.ndarray | None = None,
    *,
    voxel_size: Sequence[float] | None = None,
    align: bool = True,
    scale: bool = True,
) -> PRTF:
    """PRTF of one reconstruction or of several runs of the same data.

    Each run's amplitude ``F_k = FT(obj_k)`` is scaled so that ``Σ|F_k|² = Σ I_obs`` over observed voxels
    (``scale``); the runs after the first are registered onto it (twin, sub-voxel shift, global phase —
    ``align``) and ``<F> = mean_k F_k``. Per shell (radius in units of each axis' Nyquist frequency, as
    PyNX's ``ring_thickness``): ``PRTF = Σ |<F>| / Σ sqrt(I_obs)`` over observed voxels.
    """
    obs = np.asarray(i_obs, dtype=np.float64)
    runs = [objs] if isinstance(objs, np.ndarray) and objs.ndim == 3 else list(objs)
    if not runs:
        raise BCDIError("no reconstruction given for the PRTF")
    runs = [_as_complex(r, f"run {i}") for i, r in enumerate(runs)]
    for r in runs:
        if r.shape != obs.shape:
            raise BCDIError(f"reconstruction {r.shape} and data {obs.shape} differ in shape")
    obs, _, valid = _check_intensities(obs, np.zeros_like(obs), mask)
    if obs[valid].sum() <= 0:
        raise BCDIError("observed intensity is zero everywhere: no PRTF")
    if align and len(runs) > 1:
        runs = [runs[0]] + [register(runs[0], r, scale=False).astype(np.complex128) for r in runs[1:]]
    mean_f = np.zeros(obs.shape, dtype=np.complex128)
    for r in runs:
        f = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(r)))
        if scale:
            f *= np.sqrt(scale_factor(obs, np.abs(f) ** 2, None if mask is None else ~valid))
        mean_f += f
    mean_f /= len(runs)
    shell, n_shells = _shell_index(obs.shape)
    keep = valid & (shell <= n_shells)
    calc_sum = np.bincount(shell[keep], weights=np.abs(mean_f[keep]), minlength=n_shells + 1)
    obs_sum = np.bincount(shell[keep], weights=np.sqrt(obs[keep]), minlength=n_shells + 1)
    counts = np.bincount(shell[keep], minlength=n_shells + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(obs_sum > 0, calc_sum / obs_sum, np.nan)
    freq = np.arange(n_shells + 1) / max(n_shells, 1)
    threshold = float(np.exp(-1))
    res_f = 1.0
    prev = None
    for j in range(1, n_shells + 1):
        v = values[j]
        if not np.isfinite(v):
            continue
        if v < threshold:
            if prev is None:
                res_f = freq[j]
            else:
                fp, vp = prev
                res_f = fp + (vp - threshold) / (vp - v) * (freq[j] - fp) if vp != v else freq[j]
            break
        prev = (freq[j], v)
    res_f = float(max(res_f, 1.0 / max(n_shells, 1)))
    res_nm = None
    if voxel_size is not None:
        vs = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
        res_nm = tuple(float(v / res_f) for v in vs)
    return PRTF(
        frequency=freq,
        values=values,
        counts=counts,
        resolution_frequency=res_f,
        resolution_voxels=float(1.0 / res_f),
        resolution_nm=res_nm,
        threshold=threshold,
    )
