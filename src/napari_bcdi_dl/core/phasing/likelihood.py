"""Poisson log-likelihood normalised as PyNX does, and the free voxels behind the free log-likelihood.

Per voxel (PyNX's ``LLKPoisson``): ``calc`` when the observed count is ≤ 0.1, else
``calc - obs + obs * log(obs / calc)`` with ``calc`` floored at 1e-12. This is the negative Poisson
log-likelihood minus its value for a perfect model, so 0 is a perfect fit and ~0.5 per voxel is what pure
Poisson noise gives.

Normalisation (PyNX ``CDI.get_llk(normalized=True)``): the sum over observed, non-free voxels is divided by
their number minus the number of voxels in the support (the unknowns); the free log-likelihood is the sum
over the free voxels divided by their number. Masked (gap) voxels count nowhere.

Free voxels (PyNX ``init_free_pixels``): ~5 % of the observed voxels, drawn as spherical islands of radius
3 voxels (so that their neighbours, correlated by the object's finite size, are free too), away from the
centre of the pattern. They are never used in the modulus projection, the object scaling or the initial
support: their log-likelihood is an unbiased measure of how well a reconstruction predicts data it has not
been fitted to.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BCDIError

#: Observed counts at or below this are "zero photons" (PyNX).
ZERO_COUNT = 0.1
#: Floor of the calculated intensity inside the logarithm (PyNX).
CALC_FLOOR = 1e-12


def _llk_terms(i_obs: np.ndarray, i_calc: np.ndarray) -> np.ndarray:
    obs = np.asarray(i_obs, dtype=np.float64)
    calc = np.maximum(np.asarray(i_calc, dtype=np.float64), CALC_FLOOR)
    out = calc.copy()
    pos = obs > ZERO_COUNT
    o = obs[pos]
    out[pos] = calc[pos] - o + o * np.log(o / calc[pos])
    return out


def llk_poisson(
    i_obs: np.ndarray, i_calc: np.ndarray, mask: np.ndarray | None = None, *, n_support: int = 0
) -> float:
    """Poisson log-likelihood of ``i_calc`` given the counts ``i_obs``, normalised as PyNX does.

    Parameters
    ----------
    i_obs, i_calc : observed and calculated intensities, same shape.
    mask : voxels to leave out (1 = masked, e.g. gaps and free voxels), or None.
    n_support : number of voxels in the support (unknowns), subtracted from the number of observations.

    Returns
    -------
    float : sum over unmasked voxels / max(number of unmasked voxels - n_support, 1).
    """
    i_obs = np.asarray(i_obs)
    i_calc = np.asarray(i_calc)
    if i_obs.shape != i_calc.shape:
        raise BCDIError(f"llk: observed shape {i_obs.shape} differs from calculated shape {i_calc.shape}")
    if mask is not None:
        keep = ~np.asarray(mask, dtype=bool)
        i_obs, i_calc = i_obs[keep], i_calc[keep]
    n = i_obs.size - int(n_support)
    return float(_llk_terms(i_obs, i_calc).sum() / max(n, 1))


def llk_free(
    i_obs: np.ndarray, i_calc: np.ndarray, free: np.ndarray, mask: np.ndarray | None = None
) -> float | None:
    """Free Poisson log-likelihood: the mean of the per-voxel terms over the free voxels (None if none).

    Parameters
    ----------
    i_obs, i_calc : observed and calculated intensities.
    free : 1 on the free voxels.
    mask : masked voxels (1), excluded even if flagged free.
    """
    sel = np.asarray(free, dtype=bool)
    if mask is not None:
        sel = sel & ~np.asarray(mask, dtype=bool)
    n = int(sel.sum())
    if n == 0:
        return None
    return float(_llk_terms(np.asarray(i_obs)[sel], np.asarray(i_calc)[sel]).sum() / n)


def free_mask(
    shape: tuple,
    mask: np.ndarray | None = None,
    *,
    ratio: float = 0.05,
    island_radius: int = 3,
    exclude_centre: float = 0.05,
    seed: int = 0,
) -> np.ndarray:
    """Draw the free voxels of a centred pattern (uint8, 1 = free), as PyNX's ``init_free_pixels``.

    Parameters
    ----------
    shape : (z, y, x) of the pattern.
    mask : masked voxels (1), never free.
    ratio : approximate fraction of the voxels to make free (0 disables: an all-zero array).
    island_radius : radius of the spherical islands in voxels (shrunk on small grids so islands fit).
    exclude_centre : relative radius of the central zone kept out (the strong, information-rich centre).
    seed : random seed; the same seed, shape and mask give the same voxels.
    """
    shape = tuple(int(s) for s in shape)
    out = np.zeros(shape, dtype=np.uint8)
    if ratio <= 0:
        return out
    radius = int(max(0, min(island_radius, min(shape) // 10)))
    rng = np.random.default_rng([int(seed), 0xF1EE])
    offs = np.array(
        [
            (dz, dy, dx)
            for dz in range(-radius, radius + 1)
            for dy in range(-radius, radius + 1)
            for dx in range(-radius, radius + 1)
            if dz * dz + dy * dy + dx * dx <= radius * radius
        ],
        dtype=np.int64,
    )
    nb = max(1, round(np.prod(shape) * ratio / len(offs)))
    centre = np.array([s // 2 for s in shape])
    lo = np.array([radius] * 3)
    hi = np.array(shape) - radius
    pts = rng.integers(lo, hi, size=(nb, 3))
    rel = (pts - centre) / (np.array(shape) * exclude_centre)
    pts = pts[(rel**2).sum(axis=1) > 1]
    if len(pts):
        idx = (pts[:, None, :] + offs[None, :, :]).reshape(-1, 3)
        out[idx[:, 0], idx[:, 1], idx[:, 2]] = 1
    if mask is not None:
        out[np.asarray(mask, dtype=bool)] = 0
    return out


class LLKEvaluator:
    """Fast LLK and free LLK inside the engine, from the calculated modulus ``|FFT(obj)|``.

    Works in FFT-native order on backend arrays. ``amp`` is sqrt(observed) with 0 on masked and free
    voxels; ``masked_idx`` and ``free_idx`` are flat indices; ``free_obs`` the observed counts on the free
    voxels. Uses one float32 scratch buffer of the array's size.
    """

    def __init__(self, be: Any, amp: Any, masked_idx: Any, free_idx: Any, free_obs: Any, low_idx: Any):
        self.be = be
        xp = be.xp
        self.amp = amp
        self.masked_idx = masked_idx
        self.free_idx = free_idx
        self.free_obs = free_obs  # float32 counts on the free voxels
        self.low_idx = low_idx  # observed, non-free voxels with 0 < count <= ZERO_COUNT
        self.n_obs = int(amp.size - masked_idx.size - free_idx.size)
        # sum over observed non-free voxels with count > 0.1 of obs * (log(obs) - 1): a constant.
        # (float32 temporaries, float64 accumulation; amp is 0 on masked and free voxels)
        i = amp * amp
        t = xp.log(xp.maximum(i, CALC_FLOOR))
        t -= 1
        t *= i
        t[i <= ZERO_COUNT] = 0
        self._const = float(be.scalar(t.sum(dtype=np.float64)))
        del i, t
        self._scratch = None

    def _buf(self) -> Any:
        if self._scratch is None:
            self._scratch = self.be.xp.empty(self.amp.shape, dtype=np.float32)
        return self._scratch

    def release(self) -> None:
        """Free the scratch buffer."""
        self._scratch = None

    def evaluate(self, modulus: Any, n_support: int) -> tuple[float, float | None]:
        """(llk, llk_free) for the calculated modulus ``|FFT(obj)|`` (float32, FFT-native, unmodified)."""
        xp = self.be.xp
        be = self.be
        t = self._buf()
        xp.multiply(modulus, modulus, out=t)  # calc
        flat = t.ravel()
        sum_calc = float(be.scalar(t.sum(dtype=np.float64)))
        if self.masked_idx.size:
            sum_calc -= float(be.scalar(flat[self.masked_idx].sum(dtype=np.float64)))
        calc_free = flat[self.free_idx].astype(np.float64) if self.free_idx.size else None
        if calc_free is not None:
            sum_calc -= float(be.scalar(calc_free.sum()))
        # sum of obs * log(calc) over observed voxels (amp is 0 on masked / free voxels)
        xp.maximum(t, CALC_FLOOR, out=t)
        xp.log(t, out=t)
        if self.low_idx.size:
            flat[self.low_idx] = 0  # counts <= 0.1 are zero photons
        xp.multiply(t, self.amp, out=t)
        xp.multiply(t, self.amp, out=t)
        sum_olog = float(be.scalar(t.sum(dtype=np.float64)))
        llk = (sum_calc - sum_olog + self._const) / max(self.n_obs - int(n_support), 1)
        llk_f = None
        if calc_free is not None:
            obs = self.free_obs.astype(np.float64)
            calc = xp.maximum(calc_free, CALC_FLOOR)
            term = calc.copy()
            pos = obs > ZERO_COUNT
            term[pos] = calc[pos] - obs[pos] + obs[pos] * xp.log(obs[pos] / calc[pos])
            llk_f = float(be.scalar(term.sum())) / self.free_idx.size
        return float(llk), llk_f
