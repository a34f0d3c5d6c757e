"""Straight dislocation lines in the simulated crystals: displacement, phase ``G·u`` and labelled patterns.

Displacement of an infinite straight dislocation line in an isotropic linear-elastic medium (Hirth & Lothe,
*Theory of Dislocations*, eqs. 3-45 and 3-46). In the line's frame (``e3 = t`` the line direction, ``e1``
along the edge part of the Burgers vector ``b``, ``e2 = t × e1``), with ``(x, y)`` the position in the plane
normal to the line, ``θ = atan2(y, x)``, ``r² = x² + y²`` and Poisson ratio ``ν``::

    u = (b·t)/(2π) θ t                                                        (screw part)
      + |b_e|/(2π) [ (θ + x y / (2(1-ν) r²)) e1
                     - ((1-2ν)/(4(1-ν)) ln r² + (x² - y²)/(4(1-ν) r²)) e2 ]   (edge part)

Lengths are in units of the lattice parameter ``a``, the reflection is ``g = (h, k, l)`` (so ``G = 2π g/a``)
and the object phase is ``φ = G·u = 2π g·u``. Around the line ``u`` jumps by ``b``, so the phase winds by
``2π g·b`` — one full turn per unit of ``g·b`` — while for ``g·b = 0`` the winding vanishes (the
*invisibility criterion*; a pure screw dislocation then leaves no phase at all, an edge one only the weak,
single-valued ``g·(b×t)`` term).

Crystal (fcc, the crystals of :mod:`.shapes` have {111}/{100} facets): Burgers vectors ``½<110>``, slip
planes ``{111}`` holding ``b``; an *edge* line lies in the slip plane normal to ``b``, a *screw* line along
``b``, a *mixed* line in the slip plane at 60° to ``b`` (the common 60° dislocation). Reflections ``{111}``
and ``{200}`` give ``g·b`` in {0, ±1}.

Labels (:data:`LABELS`): ``none`` (defect-free: the same shapes and strain fields, no line), ``edge``,
``screw``, ``mixed`` (one 60° mixed line *or* two lines of any character). **Visibility**: a line is only
placed with a reflection for which it is visible, ``g·b ≠ 0`` (the reflection is redrawn otherwise), so a
label always names a dislocation that winds the phase by ``±2π``; invisible cases are avoided, not
labelled.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import BCDIError
from . import shapes as _shapes
from .diffraction import SeedLike, SimulatedPattern, as_generator, far_field, poisson_counts, simulate_pattern

LABELS = ("none", "edge", "screw", "mixed")
CHARACTERS = ("edge", "screw", "mixed")
POISSON_RATIO = 0.3
#: Core radius (voxels) regularising the single-valued 1/r² and ln r terms at the line (the winding θ is exact).
CORE_RADIUS = 0.5

#: Ranges of :func:`simulate_defect_pattern` (recorded in the dataset manifest; see docs/defects.md).
DEFECT_RANGES = {
    "labels": list(LABELS),
    "shapes": list(_shapes.SHAPES),
    "base_fields": ["gaussian_bumps", "cosines", "random", "interface"],
    "base_phase_range": [0.0, 2 * math.pi],
    "oversampling": [2.5, 5.0],
    "max_counts_log10": [5.0, 8.0],
    "edge_sigma": [0.3, 1.0],
    "density_noise": [0.0, 0.1],
    "density_noise_fraction": 0.5,
    "line_offset": [0.0, 0.5],
    "two_lines_fraction_of_mixed": 0.5,
    "reflections": ["111", "200"],
    "burgers": "1/2<110>",
    "poisson_ratio": POISSON_RATIO,
}


def _family(hkl) -> np.ndarray:
    out = set()
    for perm in set(itertools.permutations(hkl)):
        for signs in itertools.product((-1, 1), repeat=3):
            out.add(tuple(int(s * p) for s, p in zip(signs, perm)))
    return np.array(sorted(v for v in out if any(v)), dtype=float)


BURGERS = _family((1, 1, 0)) / 2  # ½<110>, 12 vectors (both signs)
PLANES = _family((1, 1, 1))  # {111} normals, 8 (both signs)
REFLECTIONS = {"111": _family((1, 1, 1)), "200": _family((2, 0, 0))}


@dataclass
class Dislocation:
    """One straight line: ``point`` on it and unit ``direction`` (voxels, (z, y, x) lab frame, relative to
    the array centre), Burgers vector ``burgers`` (lattice units, lab frame), ``character`` (edge, screw,
    mixed)."""

    point: np.ndarray
    direction: np.ndarray
    burgers: np.ndarray
    character: str = "mixed"

    def to_dict(self) -> dict:
        return {
            "point": [float(v) for v in self.point],
            "direction": [float(v) for v in self.direction],
            "burgers": [float(v) for v in self.burgers],
            "character": self.character,
        }


def displacement(coords: np.ndarray, d: Dislocation, nu: float = POISSON_RATIO,
                 core: float = CORE_RADIUS) -> np.ndarray:
    """Displacement ``u`` (lattice units, (..., 3) float64) of line ``d`` at voxel coordinates ``coords``."""
    t = np.asarray(d.direction, float)
    t = t / np.linalg.norm(t)
    b = np.asarray(d.burgers, float)
    bs = float(b @ t)
    be_vec = b - bs * t
    be = float(np.linalg.norm(be_vec))
    if be > 1e-12:
        e1 = be_vec / be
    else:  # pure screw: any direction normal to the line
        e1 = np.cross(t, [1.0, 0, 0] if abs(t[0]) < 0.9 else [0, 1.0, 0])
        e1 /= np.linalg.norm(e1)
    e2 = np.cross(t, e1)
    r = np.asarray(coords, float) - np.asarray(d.point, float)
    x, y = r @ e1, r @ e2
    theta = np.arctan2(y, x)
    r2 = x * x + y * y + core * core
    u = (bs / (2 * np.pi)) * theta[..., None] * t
    if be > 1e-12:
        k = 1.0 / (4 * (1 - nu))
        u1 = theta + 2 * k * x * y / r2
        u2 = -((1 - 2 * nu) * k * np.log(r2) + k * (x * x - y * y) / r2)
        u = u + (be / (2 * np.pi)) * (u1[..., None] * e1 + u2[..., None] * e2)
    return u


def dislocation_phase(coords: np.ndarray, lines, g: np.ndarray, nu: float = POISSON_RATIO) -> np.ndarray:
    """Object phase ``φ = 2π g·u`` (radians, float64, multivalued across each line's cut) of ``lines``."""
    g = np.asarray(g, float)
    phi = np.zeros(np.shape(coords)[:-1], float)
    for d in lines:
        phi += 2 * np.pi * (displacement(coords, d, nu) @ g)
    return phi


def winding(phase_or_field: np.ndarray, loop) -> float:
    """Total phase change (radians) of ``exp(iφ)`` along a closed voxel ``loop`` ((z, y, x) index tuples).

    Accepts a real phase or a complex field; each step is wrapped to (-π, π].
    """
    a = np.asarray(phase_or_field)
    z = a if np.iscomplexobj(a) else np.exp(1j * a)
    vals = np.array([z[tuple(p)] for p in loop] + [z[tuple(loop[0])]])
    return float(np.sum(np.angle(vals[1:] * np.conj(vals[:-1]))))


# --------------------------------------------------------------------------------------------- drawing
def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    return _shapes.random_rotation(rng)


def draw_line_geometry(character: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(Burgers vector, unit line direction) of an fcc dislocation of ``character`` in the crystal frame."""
    b = BURGERS[rng.integers(len(BURGERS))]
    bh = b / np.linalg.norm(b)
    planes = [n for n in PLANES if abs(n @ b) < 1e-9]
    n = planes[rng.integers(len(planes))]
    n = n / np.linalg.norm(n)
    in_plane = np.cross(n, bh)  # in the slip plane, normal to b
    if character == "screw":
        t = bh
    elif character == "edge":
        t = in_plane
    elif character == "mixed":
        t = 0.5 * bh + math.sqrt(3) / 2 * in_plane  # 60° dislocation
    else:
        raise BCDIError(f"unknown dislocation character {character!r}: use edge, screw or mixed")
    t = t * (1 if rng.random() < 0.5 else -1)
    return b, t / np.linalg.norm(t)


def visible_reflection(burgers_list, rng: np.random.Generator, families=("111", "200")) -> tuple[np.ndarray, str]:
    """A reflection ``g`` (crystal frame) with ``g·b ≠ 0`` for every Burgers vector given (redrawn until so)."""
    cands = [(g, f) for f in families for g in REFLECTIONS[f]
             if all(abs(g @ np.asarray(b)) > 1e-9 for b in burgers_list)]
    if not cands:
        raise BCDIError("no {111}/{200} reflection sees all these Burgers vectors: draw other lines")
    g, fam = cands[rng.integers(len(cands))]
    return np.asarray(g, float), fam


def _line_point(coords: np.ndarray, support: np.ndarray, rng: np.random.Generator, offset) -> np.ndarray:
    inside = coords[support.astype(bool)]
    centre = inside.mean(axis=0)
    q = inside[rng.integers(len(inside))]
    return centre + (q - centre) * rng.uniform(*offset)


def _grid_coords(shape) -> np.ndarray:
    axes = [np.arange(n, dtype=np.float32) - n // 2 for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def _mean_gradient(field: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ρ²-weighted mean gradient of the phase of ``field`` (wrapped finite differences; per voxel)."""
    g = np.zeros(3)
    for ax in range(3):
        sl0 = [slice(None)] * 3
        sl1 = [slice(None)] * 3
        sl0[ax], sl1[ax] = slice(None, -1), slice(1, None)
        d = np.angle(field[tuple(sl1)] * np.conj(field[tuple(sl0)]))
        w = weights[tuple(sl1)] * weights[tuple(sl0)]
        s = w.sum()
        g[ax] = float((d * w).sum() / s) if s > 0 else 0.0
    return g


AXES = ("z", "y", "x")


def _characters(label: str, rng: np.random.Generator, rg: dict) -> list[str]:
    """Characters of the lines of a crystal of class ``label``."""
    if label == "none":
        return []
    if label == "mixed":
        return ["mixed"] if rng.random() >= rg["two_lines_fraction_of_mixed"] else [
            str(c) for c in rng.choice(CHARACTERS, size=2)]
    return [label]


def _reflection(geo, rng: np.random.Generator, rg: dict) -> tuple[np.ndarray, str]:
    """The reflection: one that sees every line (``g·b ≠ 0``), any of the families without lines."""
    if geo:
        return visible_reflection([b for b, _ in geo], rng, tuple(rg["reflections"]))
    fam = str(rng.choice(rg["reflections"]))
    return REFLECTIONS[fam][rng.integers(len(REFLECTIONS[fam]))], fam


def rotation_taking(g: np.ndarray, axis: int, rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix taking the direction of ``g`` onto array axis ``axis``, random about that axis."""
    from scipy.spatial.transform import Rotation

    e = np.zeros(3)
    e[axis] = 1.0
    align, _ = Rotation.align_vectors([e], [np.asarray(g, float) / np.linalg.norm(g)])
    spin = Rotation.from_rotvec(e * rng.uniform(0, 2 * np.pi))
    return (spin * align).as_matrix()


def simulate_defect_pattern(size: int = 64, *, seed: SeedLike = 0, label: str = "random",
                            ranges: dict | None = None, noise: bool = True,
                            max_counts: float | None = None, workers: int = 1) -> SimulatedPattern:
    """A simulated Bragg peak of a crystal with dislocation lines of class ``label`` (or none).

    The crystal (shape, orientation, base strain field of range 0–2π, oversampling, edge) is drawn as for
    the phase datasets (:func:`.diffraction.simulate_pattern`, without its ``screw`` field, which is itself
    a dislocation); the lines' phase ``2π g·u`` is added on top, its ρ²-weighted mean gradient removed (the
    peak stays centred), and the pattern scaled to ``max_counts`` (log-uniform 10^5–10^8 when None) with
    Poisson noise. The reflection ``g`` is drawn so that every line is visible (``g·b = ±1``).

    Returns
    -------
    SimulatedPattern whose ``phase_field`` is the total object phase wrapped to (-π, π] (0 outside) and
    whose ``params`` hold ``label``, ``lines`` (point, direction, Burgers vector, character, lab frame),
    ``reflection`` (crystal and lab frame) and the winding ``g·b`` of each line.

    ``ranges={"g_direction": "z"}`` (or ``"y"``, ``"x"``) turns the crystal so that ``G`` lies along that
    array axis, as in a measured scan where the direction of ``G`` in the detector frame is known (default
    ``"random"``: the crystal, and so ``G``, in any orientation — the set the shipped model was trained on).
    """
    rng = as_generator(seed)
    rg = dict(DEFECT_RANGES, **(ranges or {}))
    if label == "random":
        label = str(rng.choice(rg["labels"]))
    if label not in LABELS:
        raise BCDIError(f"unknown defect label {label!r}: use one of {', '.join(LABELS)} or 'random'")
    g_dir = rg.get("g_direction", "random")
    if g_dir == "random":  # the shipped set: the crystal, so G, in any orientation
        rot = _random_rotation(rng)
    else:  # G along a fixed array axis (as in a real scan): lines and reflection drawn first
        if g_dir not in AXES:
            raise BCDIError(f"G direction {g_dir!r} unknown: use random, z, y or x")
        chars = _characters(label, rng, rg)
        geo = [draw_line_geometry(c, rng) for c in chars]
        g_c, fam = _reflection(geo, rng, rg)
        rot = rotation_taking(g_c, AXES.index(g_dir), rng)
    kw = {
        "shape": str(rng.choice(rg["shapes"])),
        "field": str(rng.choice(rg["base_fields"])),
        "phase_range": float(rng.uniform(*rg["base_phase_range"])),
        "oversampling": [float(v) for v in rng.uniform(*rg["oversampling"], size=3)],
        "edge_sigma": float(rng.uniform(*rg["edge_sigma"])),
        "density_noise": (float(rng.uniform(*rg["density_noise"]))
                       if rng.random() < rg["density_noise_fraction"] else 0.0),
    }
    counts = float(max_counts) if max_counts is not None else float(10 ** rng.uniform(*rg["max_counts_log10"]))
    base = simulate_pattern(size, seed=rng, noise=False, compute_phase=False, orientation=rot,
                            max_counts=1.0, workers=workers, **kw)
    obj = base.obj
    n = obj.shape
    if g_dir == "random":
        chars = _characters(label, rng, rg)
        geo = [draw_line_geometry(c, rng) for c in chars]
    coords = _grid_coords(n)
    support = base.support
    lines = []
    for c, (b, t) in zip(chars, geo):
        lines.append(Dislocation(_line_point(coords, support, rng, rg["line_offset"]), rot @ t, rot @ b, c))
    if g_dir == "random":
        g_c, fam = _reflection(geo, rng, rg)
    g_lab = rot @ g_c
    mod = np.abs(obj)
    inside = mod > 0
    if lines:
        phi_d = np.zeros(n, float)
        phi_d[inside] = dislocation_phase(coords[inside], lines, g_lab)
        field = np.exp(1j * phi_d)
        grad = _mean_gradient(np.where(inside, field, 0), mod.astype(float) ** 2)
        phi_d -= coords @ grad
        obj = (obj * np.exp(1j * phi_d)).astype(np.complex64)
        obj[~inside] = 0
    f = far_field(obj, workers)
    i_max = float(np.max(f.real * f.real + f.imag * f.imag))
    scale = math.sqrt(counts / i_max)
    obj = (obj * np.float32(scale)).astype(np.complex64)
    expected = (np.abs(f) ** 2 * (scale * scale)).astype(np.float32)
    intensity = poisson_counts(expected, rng) if noise else expected.copy()
    phase = np.where(inside, np.angle(obj), 0).astype(np.float32)
    params = dict(base.params)
    params.update(
        generator="napari_bcdi_dl.core.simulate.dislocations.simulate_defect_pattern",
        version=1,
        seed=base.params.get("seed"),
        label=label,
        lines=[d.to_dict() for d in lines],
        reflection={"family": fam, "crystal": [float(v) for v in g_c], "lab": [float(v) for v in g_lab]},
        g_dot_b=[float(g_c @ b) for b, _ in geo],
        max_counts=counts,
        noise=bool(noise),
        modulus_scale=float(scale),
    )
    return SimulatedPattern(intensity, expected, obj, support, None, None, phase, params)
