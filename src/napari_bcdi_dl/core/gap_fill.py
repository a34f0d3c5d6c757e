"""Classical gap fills: nearest, linear, cubic (PCHIP) and inverse-distance weighting.

The baselines the DL inpainter (``models/inpaint``) is compared against, and its fallback for gap voxels
no window reaches. :func:`fill_baseline` is the entry point; arrays are ``(z, y, x)``, masks 1 = gap.
Nothing here modifies its inputs.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import BCDIError
from .masks import validate_mask
from .progress import CancelToken, ProgressFn, check_cancel, report

METHODS = ("nearest", "linear", "cubic", "idw")


def _prev_next(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For 2D ``(lines, n)``: index of the last valid sample at or before, and the first at or after,
    each sample along the lines (``-1`` / ``n`` where there is none)."""
    n = valid.shape[1]
    idx = np.arange(n, dtype=np.int32)[None, :]
    prev = np.maximum.accumulate(np.where(valid, idx, np.int32(-1)), axis=1)
    nxt = np.where(valid, idx, np.int32(n))[:, ::-1]
    nxt = np.minimum.accumulate(nxt, axis=1)[:, ::-1]
    return prev, nxt


def _pchip_slope(s0: np.ndarray, s1: np.ndarray, h0: np.ndarray, h1: np.ndarray) -> np.ndarray:
    """Slope at a node between secants ``s0`` (interval ``h0``) and ``s1`` (``h1``), as scipy's PCHIP.

    Weighted harmonic mean (Fritsch & Carlson / Fritsch & Butland), 0 where the secants change sign:
    the Hermite cubic then stays monotone between the two samples (no overshoot across a gap).
    """
    w1 = 2 * h1 + h0
    w2 = h1 + 2 * h0
    same = s0 * s1 > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (w1 + w2) / (w1 / np.where(same, s0, 1.0) + w2 / np.where(same, s1, 1.0))
    return np.where(same, d, 0.0)


def _directional_pass(
    v: np.ndarray, valid: np.ndarray, todo: np.ndarray, cubic: bool, one_sided: bool
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Estimate ``todo`` voxels by 1D interpolation along each axis where both sides are valid.

    Estimates along the three axes are averaged with weights 1/span² (span = distance between the
    bracketing valid voxels), so the direction that crosses the gap the shortest way dominates; along
    the in-plane directions of a full gap plane there is nothing valid and they do not count. With
    ``one_sided``, lines valid on one side only give the nearest value along them (weight 1/distance²).
    Only the lines that contain ``todo`` voxels are processed, as contiguous ``(lines, n)`` arrays.

    Returns the coordinates of the voxels estimated and their values.
    """
    coords = np.nonzero(todo)
    num = np.zeros(coords[0].size)
    den = np.zeros(coords[0].size)
    for a in range(3):
        n = v.shape[a]
        o1, o2 = (i for i in range(3) if i != a)
        line_sel = np.moveaxis(todo, a, -1).any(axis=-1)
        lid = np.full(line_sel.shape, -1, dtype=np.int64)
        lid[line_sel] = np.arange(int(line_sel.sum()))
        lv = np.moveaxis(valid, a, -1)[line_sel]
        if not lv.any():
            continue
        vals = np.moveaxis(v, a, -1)[line_sel]
        prev, nxt = _prev_next(lv)
        line = lid[coords[o1], coords[o2]]
        pos = coords[a]
        p1 = prev[line, pos]
        n1 = nxt[line, pos]
        x = pos.astype(np.float64)
        if one_sided:
            has_p, has_n = p1 >= 0, n1 < n
            sel = has_p ^ has_n
            if not sel.any():
                continue
            near = np.where(has_p, p1, n1)[sel]
            wgt = 1.0 / (near - x[sel]) ** 2
            num[sel] += wgt * vals[line[sel], near]
            den[sel] += wgt
            continue
        sel = (p1 >= 0) & (n1 < n)
        if not sel.any():
            continue
        ls, p1s, n1s, xs = line[sel], p1[sel], n1[sel], x[sel]
        vp1 = vals[ls, p1s]
        vn1 = vals[ls, n1s]
        t = (xs - p1s) / (n1s - p1s)
        est = vp1 + t * (vn1 - vp1)
        if cubic:
            p2 = np.where(p1s >= 1, prev[ls, np.maximum(p1s - 1, 0)], -1)
            n2 = np.where(n1s <= n - 2, nxt[ls, np.minimum(n1s + 1, n - 1)], n)
            ok = (p2 >= 0) & (n2 < n)
            if ok.any():
                lo = ls[ok]
                h = (n1s[ok] - p1s[ok]).astype(np.float64)
                hp = (p1s[ok] - p2[ok]).astype(np.float64)
                hn = (n2[ok] - n1s[ok]).astype(np.float64)
                a0, a1 = vp1[ok], vn1[ok]
                sec = (a1 - a0) / h
                d0 = _pchip_slope((a0 - vals[lo, p2[ok]]) / hp, sec, hp, h)
                d1 = _pchip_slope(sec, (vals[lo, n2[ok]] - a1) / hn, h, hn)
                tt = t[ok]
                t2, t3 = tt * tt, tt * tt * tt
                est[ok] = (
                    (2 * t3 - 3 * t2 + 1) * a0
                    + (t3 - 2 * t2 + tt) * h * d0
                    + (3 * t2 - 2 * t3) * a1
                    + (t3 - t2) * h * d1
                )
        wgt = 1.0 / (n1s - p1s).astype(np.float64) ** 2
        num[sel] += wgt * est
        den[sel] += wgt
    done = den > 0
    return tuple(c[done] for c in coords), num[done] / den[done]


def _fill_directional(v: np.ndarray, mask: np.ndarray, cubic: bool, progress, cancel) -> np.ndarray:
    out = v.copy()
    valid = ~mask
    todo = mask.copy()
    total = int(todo.sum())
    while todo.any():
        check_cancel(cancel)
        coords, vals = _directional_pass(out, valid, todo, cubic, one_sided=False)
        if vals.size == 0:
            coords, vals = _directional_pass(out, valid, todo, cubic=False, one_sided=True)
        if vals.size == 0:  # nothing valid on any line through the rest: nearest valid voxel in 3D
            idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
            sel = np.nonzero(todo)
            out[sel] = out[tuple(ix[sel] for ix in idx)]
            break
        out[coords] = vals
        valid[coords] = True
        todo[coords] = False
        report(progress, cancel, total - int(todo.sum()), total)
    return out


def _ring_tree(mask: np.ndarray) -> tuple[np.ndarray, cKDTree]:
    """Valid voxels 26-adjacent to the mask, and a k-d tree on them.

    The nearest valid voxel of any masked voxel is on this ring: one step from it towards the masked
    voxel is closer, hence masked.
    """
    ring = ndimage.maximum_filter(mask.view(np.uint8), size=3).astype(bool) & ~mask
    src = np.argwhere(ring)
    return src, cKDTree(src)


def _fill_idw(v: np.ndarray, mask: np.ndarray, k: int, power: float) -> np.ndarray:
    src, tree = _ring_tree(mask)
    dst = np.nonzero(mask)
    k = int(min(max(1, k), len(src)))
    dist, ind = tree.query(np.stack(dst, axis=1), k=k)
    vals = v[tuple(src.T)]
    out = v.copy()
    if k == 1:
        out[dst] = vals[ind]
        return out
    w = 1.0 / np.maximum(dist, 1e-12) ** power
    out[dst] = (w * vals[ind]).sum(axis=1) / w.sum(axis=1)
    return out


def fill_baseline(
    data: np.ndarray,
    mask: np.ndarray,
    method: str = "linear",
    *,
    log: bool = True,
    k: int = 8,
    power: float = 2.0,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Fill the masked voxels by a classical method (the baselines the DL inpainter is compared against).

    Methods
    -------
    ``nearest``
        value of the nearest valid voxel in 3D (Euclidean; k-d tree on the valid voxels around the mask).
    ``linear``
        1D linear interpolation across the gap between the two valid voxels that bracket it along a grid
        axis, for all lines at once. Each axis with valid voxels on both sides gives an estimate; they are
        averaged with weights 1/span², so a plane gap is interpolated along its normal, the centre of a
        cross (no valid voxel on any line in the first pass) is filled in a second pass from the filled
        arms along both normals, and a partial plane also uses the in-plane direction where it ends. Gaps
        that touch the array border are continued with the nearest value along the normal (no
        extrapolation).
    ``cubic``
        the same with a monotone piecewise-cubic Hermite (PCHIP) across the gap: values of the two
        bracketing voxels, slopes from the next valid voxel on each side with the weighted harmonic mean
        of scipy's ``PchipInterpolator`` (no overshoot; a 4-point Lagrange cubic through noisy data
        overshoots in wide gaps and scored lower on the measured pattern). Falls back to linear where a
        side has a single valid voxel.
    ``idw``
        inverse-distance weighting (Shepard, weights 1/d^power) of the ``k`` nearest valid voxels of the
        one-voxel ring around the mask (a k-d tree query).

    Parameters
    ----------
    data : 3D ``(z, y, x)`` intensity.
    mask : 3D mask (1 = gap) of the same shape; a 2D detector mask is repeated over the frames.
    method : one of ``nearest | linear | cubic | idw``.
    log : interpolate ``log(1 + I)`` (default, True) and map back with ``exp(v) - 1``: intensity spans
        decades and the fringes are smooth in log scale; with False the raw values are interpolated.
        Negative intensities are taken as 0 for the interpolation.
    k, power : neighbours and exponent for ``idw``.
    progress, cancel : see :mod:`napari_bcdi_dl.core.progress`.

    Returns
    -------
    np.ndarray
        New array: float inputs keep their dtype, integer inputs become float32 (float64 beyond 2**24).
        Voxels outside the mask are unchanged bit for bit; filled values are >= 0 when the valid data are.

    Raises
    ------
    BCDIError
        Unknown method, data not 3D or with NaN/Inf in valid voxels, mask of another shape, not binary
        or masking every voxel.
    """
    meth = str(method).strip().lower()
    if meth not in METHODS:
        raise BCDIError(f"fill: unknown method {method!r}; choose one of {' | '.join(METHODS)}")
    d = np.asarray(data)
    if d.ndim != 3:
        raise BCDIError(f"fill: data has {d.ndim} dimensions; give a 3D (z, y, x) intensity")
    if not np.issubdtype(d.dtype, np.number) or np.iscomplexobj(d):
        raise BCDIError(f"fill: data of dtype {d.dtype}; give a real intensity")
    m = validate_mask(mask, d.shape, where="gap mask").astype(bool)
    if np.issubdtype(d.dtype, np.floating):
        out_dtype = d.dtype
    else:
        out_dtype = np.float32 if (d.size == 0 or np.abs(d).max() < 2**24) else np.float64
    out = d.astype(out_dtype, copy=True)
    if not m.any():
        return out
    valid_vals = d[~m]
    if np.issubdtype(d.dtype, np.floating) and not np.isfinite(valid_vals).all():
        raise BCDIError("fill: data have NaN or Inf outside the gap mask; mask them too or clean the data")
    nonneg = bool((valid_vals >= 0).all())
    v = d.astype(np.float64)
    if log:
        v = np.log1p(np.maximum(v, 0.0))
    report(progress, cancel, 0, 1)
    if meth == "nearest":
        f = _fill_idw(v, m, 1, power)
    elif meth == "idw":
        f = _fill_idw(v, m, k, power)
    else:
        f = _fill_directional(v, m, meth == "cubic", progress, cancel)
    vals = f[m]
    if log:
        vals = np.expm1(vals)
    if nonneg:
        vals = np.maximum(vals, 0.0)
    out[m] = vals.astype(out_dtype)
    report(progress, cancel, 1, 1)
    return out
