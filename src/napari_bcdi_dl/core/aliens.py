"""Parasitic-signal ("alien") masking by clustering, after Bellec et al., J. Synchrotron Rad. 33 (2026).

A Bragg peak is (nearly) centro-symmetric about its centre ``p``: ``I(p + q) ≈ I(p − q)`` — exactly for a
real object, approximately for a strained one, whose asymmetry stays moderate. Parasitic scattering (slit
streaks, substrate or neighbour-grain spots) has no partner at ``p − q``. The method:

1. log-scale the pattern, ``L = log10(1 + I)`` (masked voxels 0), and keep the *bright* voxels
   ``L ≥ log_threshold · max L``; masked voxels — the mask given and the detector gaps found in the data
   (``core.masks.detect_gaps``) — are never bright themselves, but within ``bridge`` voxels of bright ones
   they connect them (a gap through the Bragg peak or through a streak must not cut it in two), and they
   are never a mirror partner;
2. cluster the bright voxels in 3D with DBSCAN (scikit-learn; ``eps`` in voxels, ``min_samples``);
   isolated bright voxels (DBSCAN noise) are left alone;
3. set aside the cluster that holds the Bragg peak (the maximum, or ``peak=`` given) — and, because a
   streak or spot that touches the peak's bright region is merged into it, cluster that region again at
   brightness levels rising by ``level_step`` decades: whatever separates from the peak's cluster at some
   level is a cluster of its own (a component tree of the pattern, built with DBSCAN);
4. score every cluster by its centro-asymmetry, the mean over its voxels of
   ``2 |I(q) − I(−q)| / (I(q) + I(−q))`` about the centre of the Bragg peak (0 = symmetric, 2 = no partner
   at all), taken on the cluster's brightest voxel against the brightest voxel of its mirror region (grown
   by ``mirror_tolerance`` voxels; masked or outside voxels left out), and by its intensity: its
   *prominence*, the decades by which its brightest voxel rises above the level where it separates from the
   rest. The centre is the brightest voxel (or ``peak=`` given, sub-voxel allowed); the tolerance covers
   the voxel or two by which it may miss the centre of the crystal's pattern;
5. score every cluster by its *Friedel contrast* (:func:`friedel_contrast`): parasitic scattering is
   *added* to the crystal's pattern, so the log Friedel ratio ``E(q) = log10(1 + I(q)) − log10(1 + I(−q))``
   jumps at an alien's edge (to ``log10(1 + A/B)`` over the crystal's signal B); a crystal's asymmetry is
   smooth: the satellite of a strained layer has no partner at −q, but neither has its flank;
6. propose the clusters with asymmetry ≥ ``asymmetry_threshold``, prominence ≥ ``prominence_threshold``,
   Friedel contrast ≥ ``contrast_threshold`` (where measurable) and at least ``min_size`` voxels.
   Strained crystals have genuinely asymmetric fringes and lobes, but these rise little above their
   surroundings (the pattern is smooth at the voxel scale); aliens are compact peaks of their own. A
   proposed cluster grows by up to ``grow`` voxels into the neighbours that belong to the same alien: at
   least ``grow_fraction`` of the cluster's maximum and brighter than their mirror by
   ``1 + asymmetry_threshold`` (the rim of the alien below the level it was found at).

:func:`find_aliens` returns every cluster (a labels array, one label per cluster, and a table), so that a
user can accept or reject clusters one by one (:func:`clusters_mask`); ``mask`` holds the proposal.
:func:`threshold_mask` is the plain intensity-threshold baseline of ``benchmarks/aliens_quality.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .errors import BCDIError
from .friedel import CONTRAST_SHELL, asymmetry, friedel_contrast, mirror_intensity, mirror_max
from .progress import CancelToken, ProgressFn, report

__all__ = ["DEFAULTS", "AlienCluster", "AlienResult", "asymmetry", "clusters_mask", "find_aliens",
           "find_peak_voxel", "friedel_contrast", "log_scale", "mirror_intensity", "mirror_max",
           "neighbour_graph", "threshold_mask"]

#: defaults tuned on the simulated cases of ``benchmarks/aliens_quality.py`` (see docs/prepare.md)
DEFAULTS = {
    "log_threshold": 0.25,
    "eps": 1.8,
    "min_samples": 3,
    "asymmetry_threshold": 1.2,
    "prominence_threshold": 0.7,
    "contrast_threshold": 1.1,
    "contrast_shell": CONTRAST_SHELL,
    "protect_decades": 2.0,
    "mirror_tolerance": 2,
    "level_step": 0.25,
    "min_size": 3,
    "grow": 3,
    "grow_fraction": 0.1,
    "bridge": 4,
}


@dataclass
class AlienCluster:
    """One cluster of bright voxels.

    Attributes
    ----------
    label : its value in :attr:`AlienResult.labels` (1, 2, ...).
    size : voxels in the cluster.
    asymmetry : centro-asymmetry ``2|I(q) − I(−q)| / (I(q) + I(−q))`` of the cluster: ``I(q)`` its brightest
        voxel, ``I(−q)`` the brightest voxel of its mirror about the peak (grown by ``mirror_tolerance``
        voxels); NaN when the mirror is outside the array or masked.
    voxel_asymmetry : the same ratio voxel by voxel (exact mirror voxel), averaged over the cluster.
    prominence : decades its brightest voxel rises above the level at which it separates from the rest of
        the pattern (a lower bound, to ``level_step``).
    level : that level, decades of ``log10(1 + I)``.
    max_intensity : brightest voxel (counts).
    total_intensity : summed counts.
    centre : intensity-weighted centre (z, y, x) in voxels.
    distance : distance of the centre from the Bragg peak (voxels).
    proposed : True when the cluster is proposed as an alien.
    contrast : Friedel contrast (decades): median of ``log10(1 + I(q)) − log10(1 + I(−q))`` over the core
        (voxels above ``grow_fraction`` of the maximum) minus its median over the voxels around the core;
        NaN when no core voxel has a valid mirror (the test is then not applied).
    """

    label: int
    size: int
    asymmetry: float
    voxel_asymmetry: float
    prominence: float
    level: float
    max_intensity: float
    total_intensity: float
    centre: tuple[float, float, float]
    distance: float
    proposed: bool
    contrast: float = float("nan")

    def describe(self) -> str:
        """One line for the CLI and the widget's tooltips."""
        c = ", ".join(f"{v:.1f}" for v in self.centre)
        return (f"cluster {self.label}: {self.size} voxels at ({c}), asymmetry {self.asymmetry:.2f}, "
                f"prominence {self.prominence:.2f} decades, Friedel contrast {self.contrast:.2f} decades, "
                f"max {self.max_intensity:.4g}, "
                f"total {self.total_intensity:.4g}" + (" -> alien" if self.proposed else ""))


@dataclass
class AlienResult:
    """What :func:`find_aliens` returns.

    Attributes
    ----------
    labels : int32 array of the pattern's shape: 0 = not in a scored cluster, k = cluster k.
    clusters : the scored clusters (the Bragg peak's cluster excluded), by label.
    mask : uint8 proposed alien mask (1 = alien voxel): the proposed clusters, grown.
    peak : the Bragg peak voxel (z, y, x), the brightest.
    centre : the centre (z, y, x) the asymmetry is measured about (sub-voxel).
    params : the parameters used.
    invalid : the voxels treated as masked (the mask given and the detected gaps), or None.
    """

    labels: np.ndarray
    clusters: list[AlienCluster] = field(default_factory=list)
    mask: np.ndarray | None = None
    peak: tuple[int, int, int] = (0, 0, 0)
    centre: tuple[float, float, float] | None = None
    params: dict = field(default_factory=dict)
    invalid: np.ndarray | None = None

    @property
    def proposed(self) -> list[int]:
        """Labels of the proposed clusters."""
        return [c.label for c in self.clusters if c.proposed]


def _check(intensity, mask) -> tuple[np.ndarray, np.ndarray | None]:
    a = np.asarray(intensity)
    if a.ndim != 3:
        raise BCDIError(f"alien search: the intensity has {a.ndim} dimensions; give a 3D (z, y, x) pattern")
    if a.size == 0 or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise BCDIError(f"alien search: the intensity (shape {a.shape}, {a.dtype}) is not real counts")
    m = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != a.shape:
            raise BCDIError(f"alien search: mask shape {m.shape} does not match the intensity {a.shape}; "
                            "give the mask of these data")
        m = m != 0
    return a, m


def log_scale(intensity: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``log10(1 + max(I, 0))`` as float32, masked voxels 0 (a new array)."""
    a = np.asarray(intensity, dtype=np.float32)
    out = np.log10(1.0 + np.maximum(a, 0), dtype=np.float32)
    if mask is not None:
        out[np.asarray(mask) != 0] = 0
    return out


def find_peak_voxel(intensity: np.ndarray, mask: np.ndarray | None = None) -> tuple[int, int, int]:
    """The brightest valid voxel (z, y, x)."""
    a = np.asarray(intensity)
    if mask is not None and np.any(mask):
        a = np.where(np.asarray(mask) != 0, -np.inf, a)
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(a)), a.shape))


def _offsets(eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer voxel offsets within ``eps`` (origin excluded) and their lengths."""
    r = int(np.floor(eps))
    g = np.stack(np.meshgrid(*[np.arange(-r, r + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
    d = np.sqrt(np.sum(g**2, axis=1))
    keep = (d <= eps) & (d > 0)
    return g[keep], d[keep]


def neighbour_graph(coords: np.ndarray, shape: Sequence[int], eps: float):
    """Sparse (n, n) matrix of the distances between grid voxels ``coords`` closer than ``eps``.

    Built from the grid (a sorted linear index and one look-up per offset), not from a tree: the bright
    voxels of a pattern lie on the voxel grid. DBSCAN takes it with ``metric="precomputed"``.
    """
    from scipy import sparse

    n = len(coords)
    shape = np.asarray(shape, dtype=np.int64)
    lin = np.ravel_multi_index(tuple(np.asarray(coords).T), tuple(shape))
    order = np.argsort(lin)
    lin_sorted = lin[order]
    # each voxel is its own neighbour at distance 0, stored explicitly: DBSCAN then keeps the structure
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [np.zeros(n, np.float32)]
    offs, dist = _offsets(eps)
    for off, d in zip(offs, dist):
        nb = coords + off
        ok = np.all((nb >= 0) & (nb < shape), axis=1)
        src = np.flatnonzero(ok)
        nl = np.ravel_multi_index(tuple(nb[ok].T), tuple(shape))
        pos = np.searchsorted(lin_sorted, nl)
        pos = np.minimum(pos, n - 1)
        hit = lin_sorted[pos] == nl
        rows.append(src[hit])
        cols.append(order[pos[hit]])
        vals.append(np.full(int(hit.sum()), d, np.float32))
    rows_a = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols_a = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    vals_a = np.concatenate(vals) if vals else np.zeros(0, np.float32)
    # rows sorted by distance, as scikit-learn wants a precomputed graph (else it re-sorts row by row)
    o = np.lexsort((vals_a, rows_a))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows_a, minlength=n))])
    return sparse.csr_matrix((vals_a[o], cols_a[o], indptr), shape=(n, n))


def _dbscan_labels(graph, eps: float, min_samples: int) -> np.ndarray:
    """scikit-learn's DBSCAN on a precomputed sparse neighbour graph (labels, -1 = noise)."""
    from sklearn.cluster import DBSCAN

    if graph.shape[0] == 0:
        return np.zeros(0, np.int64)
    return DBSCAN(eps=float(eps), min_samples=int(min_samples), metric="precomputed").fit(graph).labels_


def _bridge_fill(logi: np.ndarray, m: np.ndarray, bridge: int) -> None:
    """In place: each masked voxel within ``bridge`` pixels of a valid one (in its frame) takes the value of
    the nearest valid pixel. Across a gap each side is continued up to the middle, so the two sides connect
    at a brightness level exactly when both are bright there (no value spreads along the gap)."""
    same = bool(np.array_equal(m.all(axis=0), m.any(axis=0)))  # a detector mask, the same in every frame
    cache = None
    for z in range(logi.shape[0]):
        mz = m[z]
        if not mz.any() or mz.all():
            continue
        if cache is None or not same:
            d, (iy, ix) = ndimage.distance_transform_edt(mz, return_indices=True)
            near = mz & (d <= bridge)
            cache = (near, iy[near], ix[near])
        near, sy, sx = cache
        frame = logi[z]
        frame[near] = frame[sy, sx]


def _peak_label(coords: np.ndarray, labels: np.ndarray, p: Sequence[int]) -> int:
    """DBSCAN label of the cluster holding voxel ``p`` (else the cluster nearest to it; -1 if none)."""
    hit = np.flatnonzero(np.all(coords == np.asarray(p), axis=1))
    if hit.size and labels[hit[0]] >= 0:
        return int(labels[hit[0]])
    ok = labels >= 0
    if not ok.any():
        return -1
    d2 = np.sum((coords[ok] - np.asarray(p)) ** 2, axis=1)
    return int(labels[ok][int(np.argmin(d2))])


def find_aliens(
    intensity: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    peak: Sequence[int] | None = None,
    log_threshold: float = DEFAULTS["log_threshold"],
    eps: float = DEFAULTS["eps"],
    min_samples: int = DEFAULTS["min_samples"],
    asymmetry_threshold: float = DEFAULTS["asymmetry_threshold"],
    prominence_threshold: float = DEFAULTS["prominence_threshold"],
    contrast_threshold: float = DEFAULTS["contrast_threshold"],
    level_step: float = DEFAULTS["level_step"],
    protect_decades: float = DEFAULTS["protect_decades"],
    mirror_tolerance: int = DEFAULTS["mirror_tolerance"],
    min_size: int = DEFAULTS["min_size"],
    grow: int = DEFAULTS["grow"],
    grow_fraction: float = DEFAULTS["grow_fraction"],
    gaps: bool = True,
    bridge: int = DEFAULTS["bridge"],
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> AlienResult:
    """Find the parasitic-signal clusters of a pattern (see the module docstring).

    Parameters
    ----------
    intensity : 3D pattern (z, y, x), photon counts (any non-negative scale).
    mask : invalid voxels (1), ignored everywhere (never bright, never a mirror partner).
    peak : centre of symmetry of the Bragg peak (z, y, x; sub-voxel allowed); default the brightest valid
        voxel.
    log_threshold : bright voxels have ``log10(1 + I) ≥ log_threshold × max`` (0–1).
    eps : DBSCAN neighbourhood radius in voxels (1.8 joins voxels sharing an edge or a corner).
    min_samples : DBSCAN core-point count (voxels within ``eps``, itself included; 3 keeps one-voxel
        lines).
    asymmetry_threshold : a proposed cluster has a mean centro-asymmetry at or above it (0–2) ...
    prominence_threshold : ... and rises at least this many decades above the level where it separates
        from the rest of the pattern ...
    contrast_threshold : ... and its core's log Friedel ratio exceeds that of its surroundings by at least
        this many decades (:func:`friedel_contrast`; 0: off; not applied where it cannot be measured).
    level_step : step (decades) of the brightness levels at which the Bragg peak's cluster is split.
    protect_decades : a cluster that separates from the Bragg peak less than this many decades below its
        maximum (2: above 1 % of it) is a lobe of a split peak, never proposed.
    mirror_tolerance : voxels the mirror footprint is grown by before its brightest voxel is taken.
    min_size : smaller clusters are never proposed.
    grow : voxels a proposed cluster grows into its rim (0: no growth).
    grow_fraction : a rim voxel has at least this fraction of the cluster's maximum (and is asymmetric).
    gaps : also treat the detector gaps found in the data (``core.masks.detect_gaps``) as masked.
    bridge : masked voxels within this many voxels of bright ones connect them (a gap through the Bragg
        peak or an alien does not split it); 0: off.
    progress, cancel : progress callback and cancel token.

    Returns
    -------
    AlienResult

    Raises
    ------
    BCDIError
        Not a 3D real array, a mask of another shape, an empty (all-zero) pattern, parameters out of range.
    """
    a, m = _check(intensity, mask)
    if not 0 < log_threshold < 1:
        raise BCDIError(f"alien search: log threshold {log_threshold} must be between 0 and 1 (default 0.3)")
    if not eps >= 1:
        raise BCDIError(f"alien search: eps {eps} must be at least 1 voxel (default {DEFAULTS['eps']})")
    if int(min_samples) < 1:
        raise BCDIError(f"alien search: min samples {min_samples} must be at least 1")
    if not 0 <= asymmetry_threshold <= 2:
        raise BCDIError(f"alien search: asymmetry threshold {asymmetry_threshold} must be between 0 and 2")
    if not prominence_threshold >= 0 or not level_step > 0:
        raise BCDIError(f"alien search: prominence threshold {prominence_threshold} must be >= 0 and level "
                        f"step {level_step} > 0 (decades)")
    if not contrast_threshold >= 0:
        raise BCDIError(f"alien search: contrast threshold {contrast_threshold} must be >= 0 decades "
                        f"(default {DEFAULTS['contrast_threshold']})")
    if int(grow) < 0 or not 0 <= grow_fraction <= 1:
        raise BCDIError(f"alien search: grow {grow} must be >= 0 and grow fraction {grow_fraction} in 0-1")
    if m is None or not m.any():
        # nothing masked: an array that is one big mask is refused by ``detect_gaps`` below anyway
        m = None
    if gaps:
        from .masks import detect_gaps

        g = detect_gaps(np.where(m, 0, a) if m is not None else a) != 0
        if g.any():
            m = g if m is None else (m | g)
    logi = log_scale(a, m)
    top = float(logi.max())
    if not top > 0:
        raise BCDIError("alien search: the pattern is empty (no positive count in the valid voxels); "
                        "check the data and the mask")
    centre_given = None if peak is None else tuple(float(v) for v in peak)
    p = tuple(int(np.floor(v + 0.5)) for v in peak) if peak is not None else find_peak_voxel(a, m)
    if len(p) != 3 or any(not 0 <= v < n for v, n in zip(p, a.shape)):
        raise BCDIError(f"alien search: peak {p} is outside the pattern {a.shape}")
    centre: tuple = centre_given or tuple(float(v) for v in p)
    l_thr = log_threshold * top
    levels = list(np.arange(l_thr, top, level_step)) or [l_thr]
    if m is not None and int(bridge) > 0:
        _bridge_fill(logi, m, int(bridge))
    coords = np.argwhere(logi >= l_thr)
    lvals = logi[tuple(coords.T)]
    is_bridge = np.zeros(len(coords), bool) if m is None else m[tuple(coords.T)]
    del logi
    report(progress, cancel, 0, len(levels) + 1)

    # Clusters at the base level, then the Bragg peak's cluster split at rising levels: a parasitic spot
    # or streak touching the peak's bright region separates from it at a level below its own maximum.
    found: list[tuple[np.ndarray, float]] = []  # (coords, level at which the cluster separated)
    region, region_l, region_b = coords, lvals, is_bridge
    for k, level in enumerate(levels):
        keep = region_l >= level
        region, region_l, region_b = region[keep], region_l[keep], region_b[keep]
        if len(region) == 0:
            break
        db = _dbscan_labels(neighbour_graph(region, a.shape, eps), eps, min_samples)
        pl = _peak_label(region, db, p)
        for lab in np.unique(db):
            if lab < 0 or lab == pl:
                continue
            members = (db == lab) & ~region_b  # bridge voxels connect, they are never part of a cluster
            if members.any():
                found.append((region[members], float(level)))
        if pl < 0:
            break
        sel = db == pl
        region, region_l, region_b = region[sel], region_l[sel], region_b[sel]
        report(progress, cancel, k + 1, len(levels) + 1)

    labels = np.zeros(a.shape, np.int32)
    clusters: list[AlienCluster] = []
    protect_level = top - float(protect_decades)
    for new, (c, level) in enumerate(found, start=1):
        v = a[tuple(c.T)].astype(np.float64)
        mir = mirror_intensity(a, c, centre, m)
        valid = ~np.isnan(mir)
        vox_asym = float(np.mean(asymmetry(v[valid], mir[valid]))) if valid.any() else float("nan")
        top_v = float(v.max())
        mmax = mirror_max(a, c, centre, m, int(mirror_tolerance))
        score = float(asymmetry(top_v, mmax)) if np.isfinite(mmax) else float("nan")
        w = v / v.sum() if v.sum() > 0 else np.full(len(v), 1 / len(v))
        where = tuple(float(x) for x in (w @ c))
        labels[tuple(c.T)] = new
        prominence = float(np.log10(1.0 + max(top_v, 0.0))) - level
        # the core is what clusters_mask keeps of an accepted cluster (before its rim grows)
        core = c[v >= grow_fraction * top_v]
        contrast = friedel_contrast(a, core, centre, m, int(DEFAULTS["contrast_shell"]))
        proposed = bool(len(c) >= int(min_size) and np.isfinite(score) and score >= asymmetry_threshold
                        and prominence >= prominence_threshold and level < protect_level
                        and not (contrast_threshold > 0 and contrast < contrast_threshold))  # 0: off; NaN: no veto
        clusters.append(AlienCluster(
            label=new, size=len(c), asymmetry=score, voxel_asymmetry=vox_asym, prominence=prominence,
            level=float(level), max_intensity=top_v, total_intensity=float(v.sum()), centre=where,
            distance=float(np.linalg.norm(np.asarray(where) - np.asarray(centre))), proposed=proposed,
            contrast=contrast))
    result = AlienResult(labels=labels, clusters=clusters, peak=p, centre=centre, params={
        "log_threshold": float(log_threshold), "eps": float(eps), "min_samples": int(min_samples),
        "asymmetry_threshold": float(asymmetry_threshold), "prominence_threshold": float(prominence_threshold),
        "contrast_threshold": float(contrast_threshold), "level_step": float(level_step),
        "protect_decades": float(protect_decades),
        "mirror_tolerance": int(mirror_tolerance), "min_size": int(min_size), "grow": int(grow),
        "grow_fraction": float(grow_fraction)})
    result.mask = clusters_mask(result, result.proposed, intensity=a, mask=m)
    result.invalid = m
    report(progress, cancel, len(levels) + 1, len(levels) + 1)
    return result


def clusters_mask(
    result: AlienResult,
    accept: Iterable[int] | None = None,
    *,
    intensity: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 mask (1 = alien) of the clusters ``accept`` (labels; default the proposed ones).

    With ``intensity`` given, each accepted cluster keeps its voxels holding at least ``grow_fraction`` of
    its maximum and grows by up to ``result.params["grow"]`` voxels into the neighbours that hold as much
    and whose voxel asymmetry reaches ``asymmetry_threshold`` (its rim).
    """
    labels = np.asarray(result.labels)
    accept = list(result.proposed if accept is None else accept)
    known = {c.label for c in result.clusters}
    unknown = [k for k in accept if int(k) not in known]
    if unknown:
        raise BCDIError(f"alien clusters {unknown} do not exist; the clusters are 1 to {len(known)}")
    out = np.isin(labels, np.asarray(accept, dtype=np.int32)) if accept else np.zeros(labels.shape, bool)
    n_grow = int(result.params.get("grow", 0))
    if intensity is None or not out.any():
        return out.astype(np.uint8)
    a = np.asarray(intensity)
    m = None if mask is None else np.asarray(mask) != 0
    if result.invalid is not None and result.invalid.shape == a.shape:
        m = result.invalid if m is None else (m | result.invalid)
    a_thr = float(result.params.get("asymmetry_threshold", DEFAULTS["asymmetry_threshold"]))
    fraction = float(result.params.get("grow_fraction", DEFAULTS["grow_fraction"]))
    by_label = {c.label: c for c in result.clusters}
    cube = np.ones((3, 3, 3), bool)
    out = np.zeros(labels.shape, bool)
    for k in accept:
        sl = ndimage.find_objects((labels == int(k)).astype(np.int8))[0]
        box = tuple(slice(max(0, s.start - n_grow), s.stop + n_grow) for s in sl)
        offset = np.array([s.start for s in box])
        floor = fraction * by_label[int(k)].max_intensity
        # the alien itself: the cluster's voxels above the floor (a cluster found at a low level may hold a
        # faint patch of crystal fringes next to the alien), then its rim, grown voxel by voxel
        region = (labels[box] == int(k)) & (a[box] >= floor)
        for _ in range(n_grow):
            ring = ndimage.binary_dilation(region, structure=cube) & ~region
            if m is not None:
                ring &= ~m[box]
            c = np.argwhere(ring) + offset
            if not len(c):
                break
            v = a[tuple(c.T)].astype(np.float64)
            mir = mirror_intensity(a, c, result.centre or result.peak, m)
            take = (v >= floor) & (v > 0) & ~np.isnan(mir) & (asymmetry(v, mir) >= a_thr)
            if not take.any():
                break
            region[tuple((c[take] - offset).T)] = True
        out[box] |= region
    return out.astype(np.uint8)


def threshold_mask(intensity: np.ndarray, mask: np.ndarray | None = None, *,
                   log_threshold: float = DEFAULTS["log_threshold"],
                   peak: Sequence[int] | None = None) -> np.ndarray:
    """Baseline: every bright voxel (``log10(1 + I) ≥ log_threshold × max``) outside the Bragg peak's
    connected bright region (26-connectivity), as a uint8 mask."""
    a, m = _check(intensity, mask)
    logi = log_scale(a, m)
    top = float(logi.max())
    if not top > 0:
        raise BCDIError("threshold mask: the pattern is empty (no positive count in the valid voxels)")
    bright = logi >= log_threshold * top
    p = tuple(int(v) for v in peak) if peak is not None else find_peak_voxel(a, m)
    lab, _n = ndimage.label(bright, structure=np.ones((3, 3, 3), bool))
    if lab[p] > 0:
        bright &= lab != lab[p]
    return bright.astype(np.uint8)
