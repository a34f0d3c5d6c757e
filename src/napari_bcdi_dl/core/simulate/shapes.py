"""Crystal shapes as convex polyhedra, fitted into the crystal box of an oversampled grid.

Every shape is an intersection of half-spaces ``n_k · r <= d_k`` (unit normals ``n_k``): Wulff-like fcc
polyhedra ({111}, {100}, optionally {110} facets), Winterbottom shapes (a Wulff shape cut by a substrate
plane), cubes cut by random planes, and convex hulls of random points. A shape is drawn in its own frame
(:func:`random_polyhedron`), rotated, centred and scaled per axis so that its extent along each array axis
is exactly the requested length (:func:`fit_to_box`), then rasterised on a grid cropped to the crystal box
(:func:`rasterize`): the signed distance to the polyhedron, ``max_k(n_k · r - d_k)``, is evaluated with one
matrix product and turned into a modulus with a Gaussian-smoothed edge (``0.5 erfc(d / (√2 σ))``), which is
what a Gaussian filter does to a planar facet, without a convolution and without stair-steps.

Coordinates are in voxels, (z, y, x), relative to the array centre ``N // 2`` (the origin of the project's
``ifftshift`` convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage, special
from scipy.spatial import ConvexHull, HalfspaceIntersection, QhullError
from scipy.spatial.transform import Rotation

from ..errors import BCDIError

SHAPES = ("wulff", "winterbottom", "cube_cuts", "hull")
"""Shape families :func:`random_polyhedron` draws for ``"random"`` (and the default dataset ranges)."""
EXTRA_SHAPES = ("rounded",)
"""Further families, drawn only when asked for (``bcdi-dl dataset --shapes``): the default ranges, and so
the datasets the shipped models were trained on, stay reproducible from their seeds."""
#: Directions of the tangent planes that round a shape (:func:`rounded`).
ROUND_DIRECTIONS = 192

#: Smallest crystal, in voxels along any axis, that still looks like a crystal on the grid.
MIN_CRYSTAL_VOXELS = 4
#: The modulus is cut to zero where the signed distance exceeds this many edge widths σ.
EDGE_CUT_SIGMAS = 3.0


def _family(hkl: Sequence[int]) -> np.ndarray:
    """Unit normals of all members of a cubic {hkl} family (no duplicates)."""
    h = np.abs(np.asarray(hkl, dtype=float))
    out = set()
    import itertools

    for perm in set(itertools.permutations(h)):
        for signs in itertools.product((-1, 1), repeat=3):
            v = tuple(float(s * p) for s, p in zip(signs, perm))
            out.add(v)
    normals = np.array(sorted(out), dtype=float)
    normals = normals[np.linalg.norm(normals, axis=1) > 0]
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


_N111 = _family((1, 1, 1))  # 8
_N100 = _family((1, 0, 0))  # 6
_N110 = _family((1, 1, 0))  # 12


@dataclass
class Polyhedron:
    """A convex polyhedron ``{r : normals @ r <= offsets}`` containing the origin.

    Attributes
    ----------
    normals : (K, 3) float64 unit outward normals, (z, y, x) components.
    offsets : (K,) float64 distances of the planes from the origin (all > 0).
    kind : shape family (``"wulff"``, ``"winterbottom"``, ``"cube_cuts"``, ``"hull"``, ``"rounded"``).
    substrate : index of the substrate plane in ``normals`` (Winterbottom), else None.
    params : how it was drawn (JSON-friendly).
    """

    normals: np.ndarray
    offsets: np.ndarray
    kind: str = "custom"
    substrate: int | None = None
    params: dict = field(default_factory=dict)

    def vertices(self) -> np.ndarray:
        """(V, 3) vertices of the polyhedron (qhull half-space intersection)."""
        hs = np.hstack([self.normals, -self.offsets[:, None]])
        try:
            return HalfspaceIntersection(hs, self.interior_point()).intersections
        except (QhullError, ValueError) as err:  # qhull: unbounded or degenerate
            raise BCDIError(
                f"degenerate {self.kind} polyhedron ({err.__class__.__name__}): draw another seed"
            )

    def interior_point(self) -> np.ndarray:
        """A point strictly inside: the origin when it is, else the Chebyshev centre (linear program)."""
        if np.all(self.offsets > 1e-6):
            return np.zeros(3)
        from scipy.optimize import linprog

        # maximise t subject to n_k · x + t <= d_k
        a = np.hstack([self.normals, np.ones((len(self.offsets), 1))])
        res = linprog([0, 0, 0, -1], A_ub=a, b_ub=self.offsets, bounds=[(None, None)] * 3 + [(0, None)])
        if not res.success or res.x[3] <= 1e-9:
            raise BCDIError(f"empty {self.kind} polyhedron: its planes leave no volume, draw another seed")
        return res.x[:3]

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) bounding box of the polyhedron along z, y, x."""
        v = self.vertices()
        return v.min(axis=0), v.max(axis=0)

    def transformed(self, matrix: np.ndarray, shift: np.ndarray | None = None) -> Polyhedron:
        """The image of the polyhedron under ``r -> matrix @ r + shift`` (matrix invertible).

        Normals transform with the inverse transpose and are renormalised, so that ``offsets`` stay
        distances and the signed distance of :func:`signed_distance` keeps its meaning.
        """
        m = np.asarray(matrix, dtype=float)
        shift = np.zeros(3) if shift is None else np.asarray(shift, dtype=float)
        n = self.normals @ np.linalg.inv(m)  # rows: n^T M^-1
        d = self.offsets + n @ shift
        norm = np.linalg.norm(n, axis=1)
        return replace(self, normals=n / norm[:, None], offsets=d / norm)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed 3×3 rotation matrix."""
    return Rotation.random(random_state=rng).as_matrix()


def wulff(
    d100: float = 1.15,
    d110: float | None = None,
    jitter: float = 0.0,
    rng: np.random.Generator | None = None,
) -> Polyhedron:
    """An fcc Wulff-like polyhedron: {111} planes at distance 1, {100} at ``d100``, {110} at ``d110``.

    ``d100`` between 0.58 (cube) and 1.73 (octahedron) gives the family of truncated octahedra; ``d110``
    below 1.22 bevels the octahedron edges. ``jitter`` moves each facet independently by a relative amount
    (uniform in ±jitter), which breaks the symmetry as real particles do.
    """
    normals = [_N111, _N100]
    offsets = [np.ones(len(_N111)), np.full(len(_N100), float(d100))]
    if d110 is not None:
        normals.append(_N110)
        offsets.append(np.full(len(_N110), float(d110)))
    n = np.vstack(normals)
    d = np.concatenate(offsets)
    if jitter and rng is not None:
        d = d * (1.0 + rng.uniform(-jitter, jitter, size=d.shape))
    return Polyhedron(n, d, kind="wulff", params={"d100": float(d100), "d110": d110, "jitter": float(jitter)})


def winterbottom(
    d100: float = 1.15,
    d110: float | None = None,
    substrate_facet: str = "111",
    cut: float = 0.3,
    jitter: float = 0.0,
    rng: np.random.Generator | None = None,
) -> Polyhedron:
    """A Wulff polyhedron truncated by a substrate plane parallel to one of its {111} or {100} facets.

    The substrate plane sits at ``cut`` times that facet's distance from the centre (1: no truncation,
    0: half the particle, < 0: less than half remains). Its index is :attr:`Polyhedron.substrate`.
    """
    base = wulff(d100, d110, jitter, rng)
    ns = np.array([-1.0, -1.0, -1.0]) / np.sqrt(3) if substrate_facet == "111" else np.array([-1.0, 0, 0])
    d_facet = 1.0 if substrate_facet == "111" else float(d100)
    d_sub = float(cut) * d_facet
    if d_sub <= -0.9 * d_facet:
        raise BCDIError(f"winterbottom cut {cut} leaves no particle: use a cut above -0.9")
    # The substrate plane keeps n_s · r <= d_sub; _recentre moves the bounding-box centre to the origin.
    n = np.vstack([base.normals, ns])
    d = np.concatenate([base.offsets, [d_sub]])
    poly = Polyhedron(
        n,
        d,
        kind="winterbottom",
        substrate=len(d) - 1,
        params={**base.params, "substrate_facet": substrate_facet, "cut": float(cut)},
    )
    return _recentre(poly)


def cube_cuts(n_cuts: int = 3, rng: np.random.Generator | None = None, depth=(0.55, 0.95)) -> Polyhedron:
    """A cube [-1, 1]³ cut by ``n_cuts`` random planes.

    Each cut has a random normal and sits at a fraction uniform in ``depth`` of the cube's support function
    along that normal (1 would touch a corner, smaller removes more).
    """
    rng = np.random.default_rng() if rng is None else rng
    n = [_N100]
    d = [np.ones(6)]
    for _ in range(int(n_cuts)):
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        h = np.abs(v).sum()  # support function of the cube along v
        n.append(v[None])
        d.append([rng.uniform(*depth) * h])
    poly = Polyhedron(np.vstack(n), np.concatenate(d), kind="cube_cuts", params={"n_cuts": int(n_cuts)})
    return _recentre(poly)


def convex_hull(n_points: int = 16, rng: np.random.Generator | None = None, aspect=(0.6, 1.0)) -> Polyhedron:
    """The convex hull of ``n_points`` random points in an ellipsoid of random axes (ratios in ``aspect``)."""
    rng = np.random.default_rng() if rng is None else rng
    if n_points < 4:
        raise BCDIError(f"a convex hull needs at least 4 points, got {n_points}")
    axes = np.array([1.0, rng.uniform(*aspect), rng.uniform(*aspect)])
    p = rng.normal(size=(int(n_points), 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    p *= rng.uniform(0.6, 1.0, size=(len(p), 1)) ** (1 / 3)
    p *= axes
    p -= p.mean(axis=0)
    eq = ConvexHull(p).equations  # a·x + b <= 0 inside, |a| = 1
    poly = Polyhedron(eq[:, :3].copy(), -eq[:, 3].copy(), kind="hull", params={"n_points": int(n_points)})
    return _recentre(poly)


def fibonacci_directions(n: int) -> np.ndarray:
    """``n`` unit vectors spread evenly over the sphere (Fibonacci lattice), (n, 3)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)


def rounded(base: Polyhedron, roundness: float, n_dirs: int = ROUND_DIRECTIONS) -> Polyhedron:
    """``base`` intersected with a sphere (``n_dirs`` tangent planes) centred on the origin.

    The sphere radius goes from the smallest facet distance of ``base`` (``roundness`` 1: the inscribed
    sphere, an annealed, nearly spherical particle) to its circumradius (``roundness`` 0: the polyhedron
    unchanged): in between, rounded edges and corners between flat facets, the shape of dewetted and
    annealed metal particles, whose patterns show ring-like fringes around the facet streaks.
    """
    if not 0.0 <= roundness <= 1.0:
        raise BCDIError(f"roundness {roundness} must be in [0, 1]")
    r_out = float(np.linalg.norm(base.vertices(), axis=1).max())
    r_in = float(base.offsets.min())
    radius = r_out - roundness * (r_out - min(r_in, r_out))
    dirs = fibonacci_directions(int(n_dirs))
    poly = Polyhedron(np.vstack([base.normals, dirs]), np.concatenate([base.offsets, np.full(len(dirs), radius)]),
                      kind="rounded", params=dict(base.params, base=base.kind, roundness=float(roundness)))
    return _recentre(poly)


def _recentre(poly: Polyhedron) -> Polyhedron:
    """Move the polyhedron so that the centre of its bounding box is the origin."""
    lo, hi = poly.extent()
    return poly.transformed(np.eye(3), -(lo + hi) / 2)


def random_polyhedron(kind: str, rng: np.random.Generator) -> Polyhedron:
    """Draw a shape of family ``kind`` with random facet ratios (in its own, unrotated frame).

    Ranges: Wulff ``d100`` in [0.8, 1.6] (from cube-like to octahedron-like truncations), {110} facets in
    half of the particles at ``d110`` in [1.05, 1.3], facet jitter up to 8 %; Winterbottom cut in
    [-0.3, 0.8] of the {111} or {100} facet distance; 1–6 random cuts of a cube; hulls of 8–30 points;
    rounded Wulff shapes (:func:`rounded`) of roundness in [0.3, 1].
    """
    if kind == "random":
        kind = str(rng.choice(SHAPES))
    if kind == "rounded":
        d100 = float(rng.uniform(0.8, 1.6))
        d110 = float(rng.uniform(1.05, 1.3)) if rng.random() < 0.5 else None
        return rounded(wulff(d100, d110, float(rng.uniform(0.0, 0.08)), rng), float(rng.uniform(0.3, 1.0)))
    if kind in ("wulff", "winterbottom"):
        d100 = float(rng.uniform(0.8, 1.6))
        d110 = float(rng.uniform(1.05, 1.3)) if rng.random() < 0.5 else None
        jitter = float(rng.uniform(0.0, 0.08))
        if kind == "wulff":
            return wulff(d100, d110, jitter, rng)
        facet = "111" if rng.random() < 0.7 else "100"
        return winterbottom(d100, d110, facet, float(rng.uniform(-0.3, 0.8)), jitter, rng)
    if kind == "cube_cuts":
        return cube_cuts(int(rng.integers(1, 7)), rng)
    if kind == "hull":
        return convex_hull(int(rng.integers(8, 31)), rng)
    raise BCDIError(f"unknown shape {kind!r}: choose one of {', '.join(SHAPES + EXTRA_SHAPES)} or 'random'")


def fit_to_box(poly: Polyhedron, lengths: Sequence[float], rotation: np.ndarray | None = None) -> Polyhedron:
    """Rotate ``poly``, centre its bounding box on the origin and scale each axis to ``lengths`` voxels.

    The scaling is per array axis (the detector frame of BCDI data is not orthonormal either), so that
    the extent of the returned polyhedron along axis ``i`` is exactly ``lengths[i]``.
    """
    rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=float)
    p = poly.transformed(rot)
    lo, hi = p.extent()
    scale = np.asarray(lengths, dtype=float) / (hi - lo)
    return p.transformed(np.diag(scale), -scale * (lo + hi) / 2)


def signed_distance(poly: Polyhedron, coords: np.ndarray) -> np.ndarray:
    """``max_k(n_k · r - d_k)`` for the (..., 3) voxel coordinates ``coords``: < 0 inside, float32.

    Inside, this is the exact distance to the surface; outside it is the distance to the farthest facet
    plane (a lower bound of the Euclidean distance, exact in front of a facet).
    """
    c = np.asarray(coords, dtype=np.float32)
    proj = poly.normals.astype(np.float32) @ c.reshape(-1, 3).T  # (K, V): contiguous rows to reduce
    proj -= poly.offsets.astype(np.float32)[:, None]
    return proj.max(axis=0).reshape(c.shape[:-1])


@dataclass
class Box:
    """Where the crystal box sits in the full array: ``slices`` into it and its voxel coordinates."""

    slices: tuple[slice, slice, slice]
    coords: np.ndarray  # (bz, by, bx, 3) float32 coordinates relative to the array centre

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.coords.shape[:3])


def crystal_box(size: Sequence[int], lengths: Sequence[float], margin: float) -> Box:
    """The sub-grid of an array of shape ``size`` that holds a centred crystal of ``lengths`` + ``margin``."""
    sl, axes = [], []
    for n, length in zip(size, lengths):
        c = n // 2
        h = int(np.ceil(length / 2 + margin)) + 1
        a, b = max(0, c - h), min(n, c + h + 1)
        sl.append(slice(a, b))
        axes.append(np.arange(a, b, dtype=np.float32) - c)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return Box(tuple(sl), grid)


def correlated_noise(shape: Sequence[int], length: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-correlated random field of unit standard deviation and correlation length ``length``."""
    w = rng.standard_normal(size=tuple(shape), dtype=np.float32)
    f = ndimage.gaussian_filter(w, sigma=max(float(length), 0.3), mode="wrap")
    s = f.std()
    return f / s if s > 0 else f


def rasterize(
    poly: Polyhedron,
    box: Box,
    sigma: float = 0.6,
    density_noise: float = 0.0,
    noise_length: float = 2.0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Modulus, support and signed distance of ``poly`` on the crystal box.

    Parameters
    ----------
    poly : the fitted polyhedron (voxel units, centred on the array centre).
    box : the crystal box from :func:`crystal_box`.
    sigma : width (voxels) of the Gaussian-smoothed edge; 0 gives a binary modulus.
    density_noise : relative amplitude of a correlated density fluctuation (0 to ~0.2) multiplying the
        modulus inside the crystal, correlation length ``noise_length`` voxels.

    Returns
    -------
    modulus : float32 in [0, ~1+density_noise], zero beyond ``EDGE_CUT_SIGMAS·sigma`` outside.
    support : uint8, 1 where the voxel centre is inside the polyhedron.
    distance : float32 signed distance (voxels).
    """
    dist = signed_distance(poly, box.coords)
    support = (dist <= 0).astype(np.uint8)
    if sigma > 0:
        modulus = (0.5 * special.erfc(dist / np.float32(np.sqrt(2.0) * sigma))).astype(np.float32)
        modulus[dist > EDGE_CUT_SIGMAS * sigma] = 0
    else:
        modulus = support.astype(np.float32)
    if density_noise > 0:
        rng = np.random.default_rng() if rng is None else rng
        modulus *= np.clip(
            1.0 + np.float32(density_noise) * correlated_noise(box.shape, noise_length, rng), 0, None
        )
    return modulus, support, dist
