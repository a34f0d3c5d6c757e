"""Gap geometry and 32³ window planning/extraction/stitching (no model and no gap fill in here).

The DL inpainter (``models/inpaint``) sees the data through windows: :func:`find_gaps` describes the gap
planes of a mask, :func:`window_origins` places windows with the gap slab in the middle and slides them
along it with a step, :func:`extract_windows` cuts them out in one vectorised gather and
:func:`stitch_windows` / :func:`apply_stitched` average the predictions back; :func:`gap_pcc` scores a fill.
The classical fills (the baselines, and the fallback for voxels no window reaches) are in
:mod:`napari_bcdi_dl.core.gap_fill`.

Arrays are ``(z, y, x)``; masks ``uint8``/bool with 1 = gap. Nothing here modifies its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from .errors import BCDIError
from .progress import CancelToken, ProgressFn, report

Bounds = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


# --------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Gap:
    """One gap slab: planes ``start:stop`` normal to ``axis``, over the box ``bounds``.

    Attributes
    ----------
    axis : axis normal to the gap planes (1 = detector rows, 2 = detector columns, 0 = frames).
    start, stop : half-open range of the gap along ``axis``.
    bounds : bounding box ``((z0, z1), (y0, y1), (x0, x1))`` of the gap (``bounds[axis] == (start,
        stop)``); for a plane across the whole array the other two ranges are the full axes.
    partial : True when the gap covers only part of its planes (``bounds`` smaller than the array).
    n_voxels : masked voxels attributed to this gap (voxels shared with a crossing gap are not counted).
    """

    axis: int
    start: int
    stop: int
    bounds: Bounds
    partial: bool = False
    n_voxels: int = 0

    @property
    def width(self) -> int:
        """Thickness of the slab in voxels."""
        return self.stop - self.start

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """Slices of the bounding box."""
        return tuple(slice(a, b) for a, b in self.bounds)  # type: ignore[return-value]

    def touches_border(self, shape: Sequence[int]) -> bool:
        """True when the slab touches the array border along its normal."""
        return self.start == 0 or self.stop == int(shape[self.axis])


def _run_lengths(m: np.ndarray, axis: int) -> np.ndarray:
    """Length of the run of True each voxel belongs to along ``axis`` (0 where False)."""
    a = np.moveaxis(m, axis, -1)
    n = a.shape[-1]
    flat = a.reshape(-1, n)
    padded = np.zeros((flat.shape[0], n + 1), dtype=bool)
    padded[:, :n] = flat
    f = padded.ravel()
    starts = f.copy()
    starts[1:] &= ~f[:-1]
    ids = np.cumsum(starts)
    lengths = np.bincount(ids[f], minlength=int(ids[-1]) + 1 if ids.size else 1)
    rl = np.where(f, lengths[ids], 0).reshape(padded.shape)[:, :n]
    return np.moveaxis(rl.reshape(a.shape), -1, axis)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    f = np.concatenate(([False], np.asarray(flags, bool), [False])).astype(np.int8)
    d = np.diff(f)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _as_mask3d(mask: np.ndarray, where: str = "mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 3:
        raise BCDIError(f"{where}: {m.ndim} dimensions; give a 3D (z, y, x) mask")
    return m.astype(bool, copy=False)


def find_gaps(mask: np.ndarray, *, max_width: int | None = None) -> list[Gap]:
    """Describe the gap planes of a mask: lines, crosses of any widths, along any axis, partial planes.

    A masked voxel belongs to a gap normal to axis ``a`` when its run of masked voxels along ``a`` is the
    shortest of its three runs and shorter than the array: a 6-pixel row gap is 6 voxels thick along the
    rows and spans the other two axes. Voxels where two gaps cross (masked along every direction) belong to
    both slabs through their bounding boxes. Each slab is split into its connected pieces in the plane, so
    two partial gaps in the same planes are two :class:`Gap`\\ s. A piece must extend in both in-plane
    directions beyond its thickness to count as a gap; isolated pixels, dead lines along one axis and
    blobs are not gaps (see :func:`other_masked`), though :func:`window_origins` still covers them.

    Parameters
    ----------
    mask : 3D mask (1 = gap).
    max_width : ignore slabs thicker than this (no limit by default).

    Returns
    -------
    list of Gap
        Sorted by axis then start.
    """
    m = _as_mask3d(mask)
    shape = m.shape
    if not m.any():
        return []
    rl = [_run_lengths(m, a) for a in range(3)]
    rmin = np.minimum(np.minimum(rl[0], rl[1]), rl[2])
    thin = [m & (rl[a] == rmin) & (rl[a] < shape[a]) for a in range(3)]
    if max_width is not None:
        thin = [t & (rl[a] <= int(max_width)) for a, t in enumerate(thin)]
    # voxels masked along every direction (where full planes cross): they join the pieces of each slab
    core = m & ~(thin[0] | thin[1] | thin[2])
    gaps: list[Gap] = []
    for a in range(3):
        others = tuple(i for i in range(3) if i != a)
        if not thin[a].any():
            continue
        plane_has = thin[a].any(axis=others)
        for s, e in _runs(plane_has):
            sl = [slice(None)] * 3
            sl[a] = slice(s, e)
            sl = tuple(sl)
            slab_thin = thin[a][sl].any(axis=a)  # 2D over the other two axes
            labels, n = ndimage.label(slab_thin | core[sl].any(axis=a), structure=np.ones((3, 3), bool))
            thin_counts = np.bincount(labels[slab_thin], minlength=n + 1)
            for lab, box in enumerate(ndimage.find_objects(labels), start=1):
                if box is None or thin_counts[lab] == 0:
                    continue
                piece = np.expand_dims(labels == lab, a)
                sub = thin[a][sl] & piece
                along = np.flatnonzero(sub.any(axis=others))
                ps, pe = s + int(along[0]), s + int(along[-1]) + 1
                width = pe - ps
                ext = [(int(b.start), int(b.stop)) for b in box]
                if min(hi - lo for lo, hi in ext) <= width:
                    continue  # a dead line or a blob, not a plane
                bounds: list = [None, None, None]
                bounds[a] = (ps, pe)
                for k, ax in enumerate(others):
                    bounds[ax] = ext[k]
                partial = any(bounds[ax] != (0, shape[ax]) for ax in others)
                gaps.append(Gap(a, ps, pe, tuple(bounds), partial, int(sub.sum())))  # type: ignore[arg-type]
    gaps.sort(key=lambda g: (g.axis, g.start, g.bounds))
    return gaps


def gaps_mask(gaps: Sequence[Gap], shape: Sequence[int]) -> np.ndarray:
    """Boolean array that is True inside the bounding boxes of ``gaps``."""
    out = np.zeros(tuple(int(s) for s in shape), dtype=bool)
    for g in gaps:
        out[g.slices] = True
    return out


def other_masked(mask: np.ndarray, gaps: Sequence[Gap] | None = None) -> np.ndarray:
    """Masked voxels outside every gap slab (hot pixels, dead lines, painted blobs), as a bool array."""
    m = _as_mask3d(mask)
    if gaps is None:
        gaps = find_gaps(m)
    return m & ~gaps_mask(gaps, m.shape)


def describe_gaps(gaps: Sequence[Gap]) -> str:
    """One line such as ``"rows 30-35 (6 px), cols 30-33 (4 px)"`` for the CLI and the widgets."""
    if not gaps:
        return "no gap planes"
    names = {0: "frames", 1: "rows", 2: "cols"}
    parts = []
    for g in gaps:
        txt = f"{names[g.axis]} {g.start}-{g.stop - 1} ({g.width} px)"
        if g.partial:
            txt += " partial"
        parts.append(txt)
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------- windows
def _positions(lo: int, hi: int, n: int, size: int, step: int) -> np.ndarray:
    """Window origins along one axis covering ``[lo, hi)`` within ``[0, n)``."""
    lo, hi = max(0, int(lo)), min(int(n), int(hi))
    if hi - lo <= size:
        o = (lo + hi - size) // 2
        return np.array([min(max(o, 0), n - size)], dtype=np.int64)
    last = hi - size
    pos = np.arange(lo, last + 1, max(1, int(step)), dtype=np.int64)
    if pos[-1] != last:
        pos = np.append(pos, last)
    return np.clip(pos, 0, n - size)


def _normal_positions(start: int, stop: int, n: int, size: int) -> np.ndarray:
    """Origins along the gap normal: one window centred on the slab, or as many as a wide slab needs."""
    width = stop - start
    if width <= size - 2:
        o = (start + stop - size) // 2
        return np.array([min(max(o, 0), n - size)], dtype=np.int64)
    lo, hi = max(0, start - 1), min(n, stop + 1) - size
    k = int(np.ceil((hi - lo) / max(1, size // 2))) + 1
    pos = np.unique(np.round(np.linspace(lo, hi, k)).astype(np.int64))
    return np.clip(pos, 0, n - size)


def window_origins(
    mask: np.ndarray,
    size: int = 32,
    step: int = 4,
    *,
    gaps: Sequence[Gap] | None = None,
    include_other: bool = True,
) -> np.ndarray:
    """Origins of ``size``³ windows along every gap, with the gap slab in the middle of the window.

    For each :class:`Gap`, the window is centred on the slab along its normal (a slab thicker than
    ``size - 2`` gets several windows, overlapping by half) and slid along the two in-plane axes with
    ``step`` over the gap's extent, the last window flush with its end so that every gap voxel is
    covered. Windows are clipped to stay inside the array, so a gap touching the border sits off-centre.
    With ``include_other``, masked voxels outside every slab (hot pixels, dead lines, blobs) get windows
    centred on their connected pieces. Duplicate origins are removed.

    Parameters
    ----------
    mask : 3D mask (1 = gap).
    size : window edge in voxels (the model's patch size).
    step : stride of the windows along the gap (the published model used 1; 4 is ~64× fewer windows).
    gaps : result of :func:`find_gaps` if already computed.
    include_other : also cover masked voxels that are not part of a gap plane.

    Returns
    -------
    np.ndarray
        ``int64`` array ``(n, 3)`` of window origins, lexicographically sorted. Empty ``(0, 3)`` when the
        array is smaller than ``size`` along some axis (nothing can be extracted: use a baseline). Use
        :func:`unreached` to list masked voxels that no window covers.
    """
    m = _as_mask3d(mask)
    size, step = int(size), int(step)
    if size < 1 or step < 1:
        raise BCDIError(f"windows: size {size} and step {step} must be >= 1")
    shape = m.shape
    if min(shape) < size or not m.any():
        return np.zeros((0, 3), dtype=np.int64)
    if gaps is None:
        gaps = find_gaps(m)
    blocks = []
    for g in gaps:
        per_axis = []
        for ax in range(3):
            if ax == g.axis:
                per_axis.append(_normal_positions(g.start, g.stop, shape[ax], size))
            else:
                lo, hi = g.bounds[ax]
                per_axis.append(_positions(lo, hi, shape[ax], size, step))
        grid = np.stack(np.meshgrid(*per_axis, indexing="ij"), axis=-1).reshape(-1, 3)
        blocks.append(grid)
    origins = np.concatenate(blocks) if blocks else np.zeros((0, 3), dtype=np.int64)
    if include_other:
        left = m & (coverage(origins, shape, size) == 0) if len(origins) else m.copy()
        if left.any():
            labels, _ = ndimage.label(left, structure=np.ones((3, 3, 3), bool))
            extra = []
            for box in ndimage.find_objects(labels):
                per_axis = [
                    _positions(box[ax].start, box[ax].stop, shape[ax], size, max(1, size // 2))
                    for ax in range(3)
                ]
                extra.append(np.stack(np.meshgrid(*per_axis, indexing="ij"), axis=-1).reshape(-1, 3))
            origins = np.concatenate([origins, *extra])
    if len(origins) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    return np.unique(origins.astype(np.int64), axis=0)


def coverage(origins: np.ndarray, shape: Sequence[int], size: int) -> np.ndarray:
    """Number of windows covering each voxel (``int32`` array of ``shape``), by 3D prefix sums."""
    shape = tuple(int(s) for s in shape)
    o = np.asarray(origins, dtype=np.int64).reshape(-1, 3)
    diff = np.zeros(tuple(s + 1 for s in shape), dtype=np.int32)
    if len(o):
        for corner in np.ndindex(2, 2, 2):
            idx = o + np.array(corner) * size
            idx = np.minimum(idx, np.array(shape))
            np.add.at(diff, tuple(idx.T), (-1) ** sum(corner))
    out = diff.cumsum(0).cumsum(1).cumsum(2)
    return out[: shape[0], : shape[1], : shape[2]].astype(np.int32)


def unreached(mask: np.ndarray, origins: np.ndarray, size: int) -> np.ndarray:
    """Masked voxels that no window covers (``uint8``); fill them with :func:`napari_bcdi_dl.core.gap_fill.fill_baseline`."""
    m = _as_mask3d(mask)
    return (m & (coverage(origins, m.shape, size) == 0)).astype(np.uint8)


def _check_origins(origins: np.ndarray, shape: Sequence[int], size: int) -> np.ndarray:
    o = np.asarray(origins)
    if o.ndim != 2 or o.shape[1] != 3 or not np.issubdtype(o.dtype, np.integer):
        raise BCDIError(f"windows: origins must be an integer (n, 3) array, got {o.dtype} {o.shape}")
    if len(o) and (o.min() < 0 or np.any(o.max(axis=0) + size > np.asarray(shape))):
        raise BCDIError(f"windows: some {size}³ windows fall outside the {tuple(shape)} array")
    return o.astype(np.int64, copy=False)


def extract_windows(data: np.ndarray, origins: np.ndarray, size: int = 32) -> np.ndarray:
    """Cut ``size``³ windows at ``origins`` out of ``data`` in one gather.

    Parameters
    ----------
    data : 3D array (intensity, mask...).
    origins : ``(n, 3)`` integer origins (from :func:`window_origins`); take slices of it for batches.
    size : window edge.

    Returns
    -------
    np.ndarray
        New array ``(n, size, size, size)`` of ``data``'s dtype.
    """
    d = np.asarray(data)
    if d.ndim != 3:
        raise BCDIError(f"windows: data has {d.ndim} dimensions; give a 3D (z, y, x) array")
    size = int(size)
    o = _check_origins(origins, d.shape, size)
    if len(o) == 0:
        return np.zeros((0, size, size, size), dtype=d.dtype)
    view = sliding_window_view(d, (size, size, size))
    return np.ascontiguousarray(view[o[:, 0], o[:, 1], o[:, 2]])


def extract_context(data: np.ndarray, origins: np.ndarray, size: int = 32,
                    invalid: np.ndarray | None = None, factor: int = 2) -> np.ndarray:
    """A coarse view of the surroundings of each window: the ``factor · size``-wide region centred on the
    window, averaged over ``factor``³ blocks, so ``size``³ values again.

    Blocks with any voxel outside the array or in ``invalid`` (e.g. the gap) are NaN. Block averages of
    counts keep Poisson statistics (the mean of ``factor``³ independent counts), which is how the training
    sets simulate them. With ``factor = 2`` the central ``size/2``³ blocks are the window itself, aligned
    with the window's grid halved.

    Parameters
    ----------
    data : 3D array (counts).
    origins : ``(n, 3)`` window origins (every window inside ``data``).
    size : window edge (even).
    invalid : optional mask of ``data``'s shape (nonzero = not to be used).
    factor : coarsening factor (the region is ``factor · size`` wide).

    Returns
    -------
    np.ndarray
        New float32 array ``(n, size, size, size)``.
    """
    d = np.asarray(data)
    if d.ndim != 3:
        raise BCDIError(f"context: data has {d.ndim} dimensions; give a 3D (z, y, x) array")
    size, factor = int(size), int(factor)
    o = _check_origins(origins, d.shape, size)
    if factor < 1 or (size * (factor - 1)) % 2:
        raise BCDIError(f"context: factor {factor} with windows of {size} gives no centred region")
    pad = size * (factor - 1) // 2
    src = np.full(tuple(s + 2 * pad for s in d.shape), np.nan, dtype=np.float32)
    inner = tuple(slice(pad, pad + s) for s in d.shape)
    src[inner] = d
    if invalid is not None:
        m = _as_mask3d(invalid, where="context mask")
        if m.shape != d.shape:
            raise BCDIError(f"context: mask shape {m.shape} does not match the data {d.shape}")
        src[inner][m] = np.nan
    if len(o) == 0:
        return np.zeros((0, size, size, size), dtype=np.float32)
    region = size * factor
    view = sliding_window_view(src, (region,) * 3)[o[:, 0], o[:, 1], o[:, 2]]
    blocks = view.reshape(len(o), size, factor, size, factor, size, factor)
    return blocks.mean(axis=(2, 4, 6), dtype=np.float32)


def stitch_windows(
    windows: np.ndarray,
    origins: np.ndarray,
    shape: Sequence[int],
    mask: np.ndarray | None = None,
    *,
    weight: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Accumulate window predictions on the full grid, to be averaged where windows overlap.

    Parameters
    ----------
    windows : ``(n, s, s, s)`` or ``(n, s, s, s, 1)`` predictions.
    origins : their ``(n, 3)`` origins.
    shape : shape of the full array.
    mask : if given, sums and counts are kept only inside the mask (elsewhere 0).
    weight : optional ``(s, s, s)`` weight of each window voxel (e.g. a taper trusting the centre more);
        ``count`` then holds the summed weights.

    Returns
    -------
    (total, count)
        ``float64`` sum of the predictions and ``int32`` number of windows per voxel (``float64`` summed
        weights when ``weight`` is given). The average is ``total / count`` where ``count > 0``; see
        :func:`apply_stitched`.
    """
    w = np.asarray(windows)
    if w.ndim == 5 and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim != 4 or len(set(w.shape[1:])) != 1:
        raise BCDIError(f"stitch: windows of shape {w.shape}; expected (n, s, s, s)")
    shape = tuple(int(s) for s in shape)
    size = w.shape[1]
    o = _check_origins(origins, shape, size)
    if len(o) != len(w):
        raise BCDIError(f"stitch: {len(w)} windows but {len(o)} origins")
    total = np.zeros(shape, dtype=np.float64)
    if weight is None:
        count = np.zeros(shape, dtype=np.int32)
        wt = None
    else:
        wt = np.asarray(weight, dtype=np.float64)
        if wt.shape != (size,) * 3:
            raise BCDIError(f"stitch: weight shape {wt.shape} is not {(size,) * 3}")
        count = np.zeros(shape, dtype=np.float64)
    n = len(o)
    for i, (z, y, x) in enumerate(o):
        if i % 64 == 0:
            report(progress, cancel, i, n)
        sl = (slice(z, z + size), slice(y, y + size), slice(x, x + size))
        if wt is None:
            total[sl] += w[i]
            count[sl] += 1
        else:
            total[sl] += w[i] * wt
            count[sl] += wt
    report(progress, cancel, n, n)
    if mask is not None:
        m = _as_mask3d(mask)
        if m.shape != shape:
            raise BCDIError(f"stitch: mask shape {m.shape} does not match {shape}")
        total[~m] = 0
        count[~m] = 0
    return total, count


def apply_stitched(
    data: np.ndarray, total: np.ndarray, count: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Write the window average into a copy of ``data``, only inside ``mask``.

    Returns
    -------
    (filled, unfilled)
        ``filled``: copy of ``data`` (same dtype) with ``total / count`` in the masked voxels that at least
        one window covered; every other voxel unchanged bit for bit. ``unfilled``: ``uint8`` mask of the
        masked voxels no window covered.
    """
    d = np.asarray(data)
    m = _as_mask3d(mask)
    sel = m & (np.asarray(count) > 0)
    out = d.copy()
    out[sel] = (np.asarray(total)[sel] / np.asarray(count)[sel]).astype(d.dtype)
    return out, (m & ~sel).astype(np.uint8)


def gap_pcc(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, *, log: bool = True) -> float:
    """Pearson correlation of ``log(1 + I)`` (or of I with ``log=False``) between two arrays in the mask.

    The quality number of the inpainting issue (PCC inside the gap against the measured values).
    """
    m = _as_mask3d(mask) if np.asarray(mask).ndim == 3 else np.asarray(mask).astype(bool)
    a = np.asarray(pred, dtype=np.float64)[m]
    b = np.asarray(truth, dtype=np.float64)[m]
    if a.size < 2:
        raise BCDIError("gap PCC: fewer than 2 masked voxels")
    if log:
        a, b = np.log1p(np.maximum(a, 0)), np.log1p(np.maximum(b, 0))
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")
