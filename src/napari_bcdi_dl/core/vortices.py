"""Phase vortices of a reconstruction: where dislocation lines cross the crystal.

Around a dislocation line the object phase ``φ = G·u`` winds by ``2π g·b``; everywhere else it is single
valued. :func:`plaquette_windings` sums the wrapped phase steps around every unit square (plaquette) of the
voxel grid whose four corners lie inside the support: the sum is ``2π w`` with ``w`` an integer, non-zero
only where a line pierces the square. :func:`find_vortex_lines` groups the pierced plaquettes (their
centres lie ≤ 1 voxel apart along a line) into connected lines and fits each with a straight segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import BCDIError
from .progress import report


@dataclass
class VortexLine:
    """One connected vortex line.

    Attributes
    ----------
    points : (K, 3) float (z, y, x) voxel coordinates of the pierced plaquette centres.
    windings : (K,) int winding of each plaquette (sign: counter-clockwise about the plaquette's axis).
    start, end : (3,) ends of the straight segment fitted to ``points`` (principal axis, extreme projections).
    """

    points: np.ndarray
    windings: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @property
    def length(self) -> float:
        """Length of the fitted segment (voxels)."""
        return float(np.linalg.norm(self.end - self.start))

    @property
    def direction(self) -> np.ndarray:
        """Unit vector from ``start`` to ``end`` (zeros for a single point)."""
        d = self.end - self.start
        n = np.linalg.norm(d)
        return d / n if n > 0 else np.zeros(3)


def _field(obj: np.ndarray) -> np.ndarray:
    a = np.asarray(obj)
    if a.ndim != 3:
        raise BCDIError(f"vortex finder: the object has {a.ndim} dimensions; give a 3D (z, y, x) array")
    if not np.iscomplexobj(a):
        if not np.issubdtype(a.dtype, np.number):
            raise BCDIError(f"vortex finder: dtype {a.dtype} is neither a complex object nor a phase")
        a = np.exp(1j * a.astype(np.float64))  # a phase in radians
    if not np.all(np.isfinite(a)):
        raise BCDIError("vortex finder: the object holds NaN or infinite values; clean it first")
    return a


def _support(obj: np.ndarray, support: np.ndarray | None, threshold: float) -> np.ndarray:
    if support is not None:
        s = np.asarray(support)
        if s.shape != obj.shape:
            raise BCDIError(f"vortex finder: support shape {s.shape} differs from the object's {obj.shape}")
        return s != 0
    mod = np.abs(obj)
    top = float(mod.max())
    if not top > 0:
        raise BCDIError("vortex finder: the object is zero everywhere; give a reconstruction")
    return mod > threshold * top


def plaquette_windings(obj: np.ndarray, support: np.ndarray | None = None, *,
                       threshold: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Every plaquette of the grid inside the support with a non-zero phase winding.

    Parameters
    ----------
    obj : complex object, or a real phase (radians), (z, y, x).
    support : uint8/bool, 1 inside the crystal; default ``|obj| > threshold · max |obj|`` (a real phase
        without support counts as inside everywhere).
    threshold : relative modulus threshold of the default support.

    Returns
    -------
    centres : (K, 3) float64 plaquette centres (voxel coordinates).
    windings : (K,) int, the winding ``round(Σ Δφ / 2π)`` counter-clockwise about the plaquette normal
        (axis 0, 1 or 2 in turn).
    """
    z = _field(obj)
    inside = (np.ones(z.shape, bool) if support is None and not np.iscomplexobj(obj)
              else _support(z, support, threshold))
    u = z / np.where(np.abs(z) > 0, np.abs(z), 1)
    # wrapped phase steps along each axis: d[a][i] = arg(u[i + e_a] / u[i])
    d = [np.angle(np.take(u, range(1, n), axis=a) * np.conj(np.take(u, range(n - 1), axis=a)))
         for a, n in enumerate(u.shape)]
    ok = [inside[1:] & inside[:-1], inside[:, 1:] & inside[:, :-1], inside[:, :, 1:] & inside[:, :, :-1]]
    centres, wind = [], []
    for normal in range(3):
        a, b = [x for x in range(3) if x != normal]  # plaquette spanned by axes a < b, loop a then b
        # corners r, r+ea, r+ea+eb, r+eb: Δ = d_a(r) + d_b(r+ea) - d_a(r+eb) - d_b(r)
        da, db = d[a], d[b]
        # bring all four edge arrays to the plaquette grid (shape n - 1 along a and b)
        s_da_r = [slice(None)] * 3
        s_da_r[b] = slice(0, -1)
        s_da_rb = [slice(None)] * 3
        s_da_rb[b] = slice(1, None)
        s_db_r = [slice(None)] * 3
        s_db_r[a] = slice(0, -1)
        s_db_ra = [slice(None)] * 3
        s_db_ra[a] = slice(1, None)
        total = (da[tuple(s_da_r)] + db[tuple(s_db_ra)] - da[tuple(s_da_rb)] - db[tuple(s_db_r)])
        valid = ok[a][tuple(s_da_r)] & ok[a][tuple(s_da_rb)] & ok[b][tuple(s_db_r)] & ok[b][tuple(s_db_ra)]
        w = np.rint(total / (2 * np.pi)).astype(int)
        if normal == 1:  # loop 0 then 2 turns clockwise about axis 1 (e0 × e2 = -e1)
            w = -w
        w[~valid] = 0
        idx = np.argwhere(w != 0)
        if len(idx):
            c = idx.astype(np.float64)
            c[:, a] += 0.5
            c[:, b] += 0.5
            centres.append(c)
            wind.append(w[tuple(idx.T)])
    if not centres:
        return np.zeros((0, 3)), np.zeros(0, int)
    return np.concatenate(centres), np.concatenate(wind)


def _segment(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = points.mean(axis=0)
    if len(points) < 2:
        return c.copy(), c.copy()
    _, _, vt = np.linalg.svd(points - c, full_matrices=False)
    axis = vt[0]
    proj = (points - c) @ axis
    return c + proj.min() * axis, c + proj.max() * axis


def find_vortex_lines(obj: np.ndarray, support: np.ndarray | None = None, *, threshold: float = 0.2,
                      min_points: int = 3, link: float = 1.01, progress=None, cancel=None) -> list[VortexLine]:
    """Dislocation lines of a reconstruction: connected chains of phase vortices inside the support.

    Parameters
    ----------
    obj, support, threshold : see :func:`plaquette_windings`.
    min_points : chains with fewer pierced plaquettes are dropped (isolated vortex pairs of noise).
    link : plaquette centres closer than this (voxels) belong to the same line (≤ 1 for a straight line
        through the grid; two adjacent plaquettes of one cube are 0.71 apart).
    progress, cancel : 2 steps (windings, grouping); see ``core/progress.py``.

    Returns
    -------
    list of :class:`VortexLine`, longest first (empty for a defect-free object).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    report(progress, cancel, 0, 2)
    pts, w = plaquette_windings(obj, support, threshold=threshold)
    report(progress, cancel, 1, 2)
    if len(pts) == 0:
        report(progress, cancel, 2, 2)
        return []
    pairs = cKDTree(pts).query_pairs(r=float(link), output_type="ndarray")
    n = len(pts)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])) if len(pairs) else
                       (np.zeros(0), (np.zeros(0, int), np.zeros(0, int))), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    lines = []
    for k in np.unique(comp):
        sel = comp == k
        if sel.sum() < int(min_points):
            continue
        p = pts[sel]
        a, b = _segment(p)
        lines.append(VortexLine(p, w[sel], a, b))
    lines.sort(key=lambda ln: -len(ln.points))
    report(progress, cancel, 2, 2)
    return lines


def line_coverage(lines: list[VortexLine], point: np.ndarray, direction: np.ndarray, inside: np.ndarray,
                  tolerance: float = 2.0, step: float = 0.5) -> float:
    """Fraction of a true straight line's length inside ``inside`` that has a found vortex within
    ``tolerance`` voxels (the goal of docs/defects.md: ≥ 90 % within 2 voxels).

    ``point``, ``direction`` : the true line in array-index coordinates (z, y, x).
    ``inside`` : bool mask of where the line counts (e.g. the support eroded by 2 voxels).
    """
    from scipy.spatial import cKDTree

    t = np.asarray(direction, float)
    t = t / np.linalg.norm(t)
    n = max(inside.shape) * 2
    s = np.arange(-n, n + step, step)
    samples = np.asarray(point, float) + s[:, None] * t
    idx = np.rint(samples).astype(int)
    ok = np.all((idx >= 0) & (idx < np.array(inside.shape)), axis=1)
    samples, idx = samples[ok], idx[ok]
    ok = inside[tuple(idx.T)]
    samples = samples[ok]
    if len(samples) == 0:
        raise BCDIError("line coverage: the line does not cross the region given")
    if not lines:
        return 0.0
    found = np.concatenate([ln.points for ln in lines])
    dist, _ = cKDTree(found).query(samples)
    return float(np.mean(dist <= tolerance))
