"""Centro-symmetry about a Bragg peak: mirror intensities, the asymmetry and the Friedel contrast.

A crystal's Bragg peak is (nearly) centro-symmetric about its centre ``c``: ``I(c + q) ≈ I(c − q)``. These
functions measure how far a region of the pattern departs from that, for the parasitic-signal masking of
:mod:`.aliens` (Bellec et al., J. Synchrotron Rad. 33, 2026): the mirror ``2c − q`` of voxels
(:func:`mirror_intensity`, :func:`mirror_max`), the voxel asymmetry ``2|I(q) − I(−q)| / (I(q) + I(−q))``
(:func:`asymmetry`) and the jump of the log Friedel ratio at a region's edge (:func:`friedel_contrast`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

#: Default width (voxels) of the shell around a cluster's core that :func:`friedel_contrast` compares with.
CONTRAST_SHELL = 2


def _twice(centre: Sequence[float]) -> np.ndarray:
    """``2 c`` rounded to integers: the mirror of voxel ``q`` about the centre ``c`` is ``2c - q``."""
    return np.rint(2 * np.asarray(centre, dtype=np.float64)).astype(np.int64)


def mirror_intensity(intensity: np.ndarray, coords: np.ndarray, peak: Sequence[int],
                     mask: np.ndarray | None = None) -> np.ndarray:
    """``I(2p − q)`` for voxel coordinates ``coords`` (n, 3) about the centre ``peak`` (a voxel, or a
    sub-voxel position: ``2p`` is rounded); NaN where the mirror is outside or masked."""
    a = np.asarray(intensity)
    mir = _twice(peak) - coords
    inside = np.all((mir >= 0) & (mir < np.asarray(a.shape)), axis=1)
    out = np.full(len(coords), np.nan)
    idx = tuple(mir[inside].T)
    vals = a[idx].astype(np.float64)
    if mask is not None:
        vals[np.asarray(mask)[idx]] = np.nan
    out[inside] = vals
    return out


def mirror_max(intensity: np.ndarray, coords: np.ndarray, peak: Sequence[int],
               mask: np.ndarray | None = None, tolerance: int = 2) -> float:
    """Brightest valid voxel of the mirror ``2p − q`` of a cluster, its footprint grown by ``tolerance``
    voxels (the peak's centre is known to a voxel and strain distorts the pattern); NaN when the mirror is
    entirely outside the array or masked."""
    a = np.asarray(intensity)
    shape = np.asarray(a.shape)
    mir = _twice(peak) - np.asarray(coords, dtype=np.int64)
    lo = np.maximum(mir.min(axis=0) - tolerance, 0)
    hi = np.minimum(mir.max(axis=0) + tolerance + 1, shape)
    if np.any(hi <= lo):
        return float("nan")
    inside = np.all((mir >= lo) & (mir < hi), axis=1)
    box = np.zeros(tuple(hi - lo), bool)
    local = mir[inside] - lo
    # a mirror point just outside the array still marks its in-array neighbours within the tolerance
    edge = np.all((mir >= lo - tolerance) & (mir < hi + tolerance), axis=1) & ~inside
    local = np.concatenate([local, np.clip(mir[edge] - lo, 0, hi - lo - 1)]) if edge.any() else local
    if not len(local):
        return float("nan")
    box[tuple(local.T)] = True
    if tolerance > 0:
        box = ndimage.binary_dilation(box, structure=np.ones((3, 3, 3), bool), iterations=int(tolerance))
    sl = tuple(slice(int(x), int(y)) for x, y in zip(lo, hi))
    if mask is not None:
        box &= ~(np.asarray(mask)[sl] != 0)
    if not box.any():
        return float("nan")
    return float(a[sl][box].max())


def asymmetry(i_q: np.ndarray, i_mq: np.ndarray) -> np.ndarray:
    """``2|I(q) − I(−q)| / (I(q) + I(−q))`` (0 where both are 0; NaN stays NaN)."""
    a = np.asarray(i_q, dtype=np.float64)
    b = np.asarray(i_mq, dtype=np.float64)
    s = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, 2 * np.abs(a - b) / np.where(s > 0, s, 1), 0.0)


def friedel_contrast(intensity: np.ndarray, core: np.ndarray, centre: Sequence[float],
                     mask: np.ndarray | None = None, shell: int = CONTRAST_SHELL) -> float:
    """Friedel contrast of a cluster's core (voxel coordinates ``core``, (n, 3)), in decades.

    With ``E(q) = log10(1 + I(q)) − log10(1 + I(2c − q))`` (``c`` the centre; masked or outside mirrors
    left out): the median of ``E`` over the core (in ``core.aliens.find_aliens`` the cluster's voxels above
    ``grow_fraction`` of its maximum: what would be masked) minus its median over the valid voxels within
    ``shell`` voxels of the core (0 when there are none). An additive, localised source (an alien) makes
    ``E`` jump at its edge; a crystal's asymmetry extends beyond its bright part. NaN when no core voxel
    has a valid mirror.
    """
    a = np.asarray(intensity)
    core = np.asarray(core, dtype=np.int64)
    m = None if mask is None else np.asarray(mask) != 0

    def e(coords: np.ndarray) -> np.ndarray:
        v = a[tuple(coords.T)].astype(np.float64)
        if m is not None:
            v[m[tuple(coords.T)]] = np.nan
        mir = mirror_intensity(a, coords, centre, m)
        return np.log10(1.0 + np.maximum(v, 0)) - np.log10(1.0 + np.maximum(mir, 0))

    e_core = e(core)
    if not np.isfinite(e_core).any():
        return float("nan")
    e_ring = np.zeros(0)
    if int(shell) > 0:
        lo = np.maximum(core.min(axis=0) - int(shell), 0)
        hi = np.minimum(core.max(axis=0) + int(shell) + 1, np.asarray(a.shape))
        box = np.zeros(tuple(hi - lo), bool)
        box[tuple((core - lo).T)] = True
        ring = ndimage.binary_dilation(box, structure=np.ones((3, 3, 3), bool), iterations=int(shell)) & ~box
        e_ring = e(np.argwhere(ring) + lo)
    outside = float(np.nanmedian(e_ring)) if np.isfinite(e_ring).any() else 0.0
    return float(np.nanmedian(e_core)) - outside
