"""From a strained crystal to a noisy Bragg peak: ``simulate_pattern`` and its parts.

``I = |fftshift(fftn(ifftshift(obj)))|²`` (the project's convention, object centred). The object lives in a
crystal box of ``size / oversampling`` voxels per axis, zero-padded to ``size``: that padding is the
oversampling. The stored object is scaled so that ``|FT(obj)|²`` *is* the expected photon count
(maximum ``max_counts``), then Poisson noise gives the measured counts; both are kept, because scores of
gap filling and phasing must be taken against the noise-free intensity (see the notes on measuring model
quality). Gap voxels are 0 in ``intensity`` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft

from ..errors import BCDIError
from . import fields as _fields
from . import shapes as _shapes

SeedLike = int | np.random.SeedSequence | np.random.Generator | None

MIN_OVERSAMPLING = 2.0
MAX_COUNTS_RANGE = (1.0, 1e12)


def as_generator(seed: SeedLike) -> np.random.Generator:
    """A numpy Generator from an int, a SeedSequence or a Generator (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _seed_record(seed: SeedLike):
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": int(seed.entropy), "spawn_key": [int(k) for k in seed.spawn_key]}
    if isinstance(seed, (int, np.integer)):
        return int(seed)
    return None


# --------------------------------------------------------------------------------------------- far field
def far_field(obj: np.ndarray, workers: int = -1) -> np.ndarray:
    """``fftshift(fftn(ifftshift(obj)))`` in complex64 (scipy.fft, all cores by default)."""
    a = np.asarray(obj)
    if a.dtype != np.complex64:
        a = a.astype(np.complex64)
    return sfft.fftshift(sfft.fftn(sfft.ifftshift(a), workers=workers))


def intensity_of(obj: np.ndarray, workers: int = -1) -> np.ndarray:
    """``|FT(obj)|²`` in float32 with the project's FFT convention."""
    f = far_field(obj, workers)
    return (f.real * f.real + f.imag * f.imag).astype(np.float32, copy=False)


def poisson_counts(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon counts (float32) of the expected intensity ``expected`` (≥ 0)."""
    return rng.poisson(expected).astype(np.float32)


# --------------------------------------------------------------------------------------------- gaps
@dataclass(frozen=True)
class GapSpec:
    """Detector gaps as slabs of planes: ``slabs`` = ((axis, start, width), ...).

    Axis 1 = a band of detector rows, axis 2 = a band of columns; every slab spans the whole array along the
    two other axes (a detector gap is in every frame of the rocking scan). A line gap has one slab, a cross
    two (one per detector axis, widths may differ).
    """

    slabs: tuple[tuple[int, int, int], ...]

    @property
    def kind(self) -> str:
        return "cross" if len({a for a, _, _ in self.slabs}) > 1 else "line"

    def mask(self, shape: Sequence[int]) -> np.ndarray:
        """uint8 mask of ``shape``, 1 in the gap."""
        return gap_mask(shape, self.slabs)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "slabs": [list(map(int, s)) for s in self.slabs]}


def gap_mask(shape: Sequence[int], slabs: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """uint8 mask of ``shape`` with 1 on each slab ``(axis, start, width)`` (clipped to the array)."""
    m = np.zeros(tuple(shape), np.uint8)
    for axis, start, width in slabs:
        if not 0 <= axis < len(shape):
            raise BCDIError(f"gap axis {axis} is outside a {len(shape)}-D array: use 0, 1 or 2")
        if width < 1:
            raise BCDIError(f"gap width {width} must be at least 1 voxel")
        idx = [slice(None)] * len(shape)
        idx[axis] = slice(max(0, int(start)), max(0, int(start) + int(width)))
        m[tuple(idx)] = 1
    return m


def random_gap(
    shape: Sequence[int],
    rng: np.random.Generator,
    kind: str | None = None,
    width: int | Sequence[int] | None = None,
    max_offset: float | None = None,
    widths_range: tuple[int, int] = (1, 12),
) -> GapSpec:
    """A random line or cross gap near the array centre.

    Parameters
    ----------
    kind : ``"line"``, ``"cross"`` or None (a cross one time in five).
    width : one width for all slabs, one per slab, or None (uniform in ``widths_range``, each slab drawn).
    max_offset : the gap centre is at most this many voxels from the array centre along its axis
        (default ``size / 8``: the gap crosses the bright part of the peak, where it hurts).
    """
    if kind is None:
        kind = "cross" if rng.random() < 0.2 else "line"
    if kind not in ("line", "cross"):
        raise BCDIError(f"unknown gap kind {kind!r}: use 'line' or 'cross'")
    axes = (1, 2) if kind == "cross" else (int(rng.choice((1, 2))),)
    if width is None:
        widths = [int(rng.integers(widths_range[0], widths_range[1] + 1)) for _ in axes]
    elif np.ndim(width) == 0:
        widths = [int(width)] * len(axes)
    else:
        widths = [int(w) for w in width]
        if len(widths) != len(axes):
            raise BCDIError(f"a {kind} gap takes {len(axes)} width(s), got {len(widths)}")
    slabs = []
    for axis, w in zip(axes, widths):
        if not 1 <= w <= shape[axis] // 2:
            raise BCDIError(
                f"gap width {w} does not fit an axis of {shape[axis]} voxels: use 1 to {shape[axis] // 2}"
            )
        mo = shape[axis] / 8 if max_offset is None else max_offset
        centre = shape[axis] // 2 + rng.uniform(-mo, mo)
        start = int(np.clip(round(centre - w / 2), 0, shape[axis] - w))
        slabs.append((axis, start, w))
    return GapSpec(tuple(slabs))


def parse_gap(gap, shape: Sequence[int], rng: np.random.Generator) -> GapSpec | None:
    """Turn the ``gap`` argument of :func:`simulate_pattern` into a :class:`GapSpec` (or None).

    Accepted: None / ``"none"``; ``"line"``, ``"cross"``, ``"line:6"``, ``"cross:6"``, ``"cross:4,8"``
    (random position); a :class:`GapSpec`; a dict ``{"kind", "width"}`` or
    ``{"slabs": [[axis, start, width], ...]}``.
    """
    if gap is None or (isinstance(gap, str) and gap.lower() in ("none", "")):
        return None
    if isinstance(gap, GapSpec):
        gap_mask(shape, gap.slabs)  # validates
        return gap
    if isinstance(gap, dict):
        if "slabs" in gap:
            spec = GapSpec(tuple(tuple(int(v) for v in s) for s in gap["slabs"]))
            gap_mask(shape, spec.slabs)
            return spec
        return random_gap(shape, rng, gap.get("kind"), gap.get("width"), gap.get("max_offset"))
    if isinstance(gap, str):
        kind, _, w = gap.partition(":")
        width = None
        if w:
            try:
                ws = [int(v) for v in w.split(",")]
            except ValueError:
                raise BCDIError(
                    f"gap {gap!r}: widths must be integers, e.g. 'cross:6' or 'cross:4,8'"
                ) from None
            width = ws[0] if len(ws) == 1 else ws
        return random_gap(shape, rng, kind.strip().lower(), width)
    raise BCDIError(f"gap {gap!r} not understood: use None, 'line', 'cross', 'cross:6' or a GapSpec")


# --------------------------------------------------------------------------------------------- pattern
@dataclass
class SimulatedPattern:
    """A simulated BCDI pattern and its ground truth (arrays (z, y, x), all the same shape).

    Attributes
    ----------
    intensity : float32 measured counts (Poisson noise unless ``noise=False``), 0 in the gap.
    expected : float32 noise-free intensity, ``|FT(obj)|²``, no gap.
    obj : complex64 centred object, scaled so that ``|FT(obj)|² == expected``.
    support : uint8 crystal support (1 inside).
    reciprocal_phase : float32 phase of ``FT(obj)`` in (-π, π] (None if not computed).
    mask : uint8 gap mask (1 = gap) or None.
    phase_field : float32 unwrapped object phase (radians), 0 where the modulus is 0.
    params : everything needed to redo it (JSON-friendly).
    """

    intensity: np.ndarray
    expected: np.ndarray
    obj: np.ndarray
    support: np.ndarray
    reciprocal_phase: np.ndarray | None
    mask: np.ndarray | None
    phase_field: np.ndarray
    params: dict = field(default_factory=dict)


def _triple(value, name: str) -> tuple[float, float, float]:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        a = None
    if a is None or a.ndim > 1 or a.size not in (1, 3):
        raise BCDIError(f"{name} must be one number or three (z, y, x), got {value!r}")
    return tuple(float(x) for x in np.broadcast_to(a, (3,)))


def _rotation(spec, rng: np.random.Generator, name: str) -> np.ndarray:
    if spec is None or (isinstance(spec, str) and spec == "none"):
        return np.eye(3)
    if isinstance(spec, str):
        if spec == "random":
            return _shapes.random_rotation(rng)
        raise BCDIError(f"{name} {spec!r} not understood: use None, 'random' or a 3×3 rotation matrix")
    m = np.asarray(spec, dtype=float)
    if m.shape != (3, 3) or not np.allclose(m @ m.T, np.eye(3), atol=1e-6) or np.linalg.det(m) < 0:
        raise BCDIError(f"{name} must be a 3×3 rotation matrix (orthonormal, det +1)")
    return m


def validate_geometry(
    size: Sequence[int], oversampling: Sequence[float], where: str = "simulation"
) -> np.ndarray:
    """Check size and oversampling; return the crystal lengths (voxels) along z, y, x."""
    axes = "zyx"
    for i, (n, os_) in enumerate(zip(size, oversampling)):
        if n < 8:
            raise BCDIError(f"{where}: size {n} along {axes[i]} is too small, use at least 8 voxels")
        if not np.isfinite(os_) or os_ < MIN_OVERSAMPLING:
            raise BCDIError(
                f"{where}: oversampling {os_:g} along {axes[i]} is below 2, "
                "the pattern would be undersampled "
                "and the phase lost: use 2 or more"
            )
        box = n / os_
        if box < _shapes.MIN_CRYSTAL_VOXELS + 1:
            raise BCDIError(
                f"{where}: size {n} with oversampling {os_:g} along {axes[i]} "
                f"leaves a crystal of {box:.1f} voxels, "
                f"below {_shapes.MIN_CRYSTAL_VOXELS + 1}: use a larger size or a smaller oversampling"
            )
    # Sharp extent n/os - 1 keeps the voxel count of the support at most n/os along each axis.
    return np.array([n / os_ - 1.0 for n, os_ in zip(size, oversampling)])


def simulate_pattern(
    size: int | Sequence[int] = 64,
    *,
    seed: SeedLike = 0,
    shape: str | _shapes.Polyhedron = "wulff",
    field: str = "gaussian_bumps",
    phase_range: float = 3 * np.pi,
    oversampling: float | Sequence[float] = (3, 3, 3),
    max_counts: float = 1e6,
    noise: bool = True,
    gap=None,
    orientation="random",
    rotation=None,
    edge_sigma: float = 0.6,
    density_noise: float = 0.0,
    keep_aspect: bool = False,
    remove_gradient: bool = True,
    compute_phase: bool = True,
    workers: int = -1,
) -> SimulatedPattern:
    """Simulate a strained crystal's Bragg peak with its ground truth.

    Parameters
    ----------
    size : array size, one int (cube) or (z, y, x).
    seed : int, SeedSequence or Generator; the same seed gives the same pattern, bit for bit.
    shape : ``"wulff"``, ``"winterbottom"``, ``"cube_cuts"``, ``"hull"``, ``"random"`` or a
        :class:`Polyhedron`.
    field : ``"gaussian_bumps"``, ``"cosines"``, ``"random"``, ``"interface"``, ``"screw"`` or
        ``"random_kind"`` (any of them).
    phase_range : max - min of the object phase inside the crystal, radians, 0 to 6π.
    oversampling : ratio of array size to crystal extent, per axis (≥ 2; 2–7 is realistic).
    max_counts : maximum of the expected intensity, photons (> 0; 1e3–1e9 is realistic).
    noise : draw Poisson counts (else ``intensity`` is the expected intensity).
    gap : None, ``"line"``, ``"cross"``, ``"cross:6"``, a :class:`GapSpec` or a dict (see :func:`parse_gap`).
    orientation : crystal orientation: ``"random"`` (uniform), None (facets along the axes) or a 3×3 matrix.
    rotation : an extra rotation of the reciprocal-space axes (``"random"`` or a 3×3 matrix). Rotating
        reciprocal space rotates the object by the same matrix, so it is applied to the crystal before it
        is fitted to the box and the stored object stays the exact inverse transform of the pattern.
    edge_sigma : width (voxels) of the Gaussian-smoothed crystal edge.
    density_noise : relative amplitude of correlated density fluctuations of the modulus (0 to ~0.2).
    keep_aspect : scale the shape uniformly (the tightest axis then sets the oversampling, the others get
        more) instead of per axis (each axis gets exactly its oversampling).
    remove_gradient : remove the mean phase gradient so that the Bragg peak stays centred.
    compute_phase : compute ``reciprocal_phase`` (None when False; saves time when it is not needed).
    workers : FFT threads (-1: all cores).

    Returns
    -------
    SimulatedPattern
    """
    n = (int(size),) * 3 if np.ndim(size) == 0 else tuple(int(s) for s in size)
    if len(n) != 3:
        raise BCDIError(f"size must be one int or three (z, y, x), got {size!r}")
    os3 = _triple(oversampling, "oversampling")
    lengths = validate_geometry(n, os3)
    if not np.isfinite(max_counts) or not max_counts > 0:
        raise BCDIError(f"max counts {max_counts!r} must be a positive number of photons (e.g. 1e6)")
    if not np.isfinite(edge_sigma) or edge_sigma < 0 or edge_sigma > 3:
        raise BCDIError(f"edge sigma {edge_sigma!r} must be between 0 and 3 voxels")
    if not 0 <= density_noise <= 1:
        raise BCDIError(f"density noise {density_noise!r} must be between 0 and 1")
    rng = as_generator(seed)

    # 1. Shape, oriented and fitted to the crystal box.
    poly = shape if isinstance(shape, _shapes.Polyhedron) else _shapes.random_polyhedron(shape, rng)
    orient = _rotation(orientation, rng, "orientation")
    extra = _rotation(rotation, rng, "rotation")
    rot = extra @ orient
    if keep_aspect:
        p = poly.transformed(rot)
        lo, hi = p.extent()
        lengths = (hi - lo) * float(np.min(lengths / (hi - lo)))
    fitted = _shapes.fit_to_box(poly, lengths, rot)
    box = _shapes.crystal_box(n, lengths, _shapes.EDGE_CUT_SIGMAS * edge_sigma + 1)
    modulus, support_box, _ = _shapes.rasterize(
        fitted, box, edge_sigma, density_noise, noise_length=float(rng.uniform(1.0, 3.0)), rng=rng
    )

    # 2. Phase field with the exact range inside the crystal.
    phi, field_params = _fields.make_phase(
        field, box.coords, support_box, modulus, float(phase_range), rng, fitted, remove_gradient
    )
    phi[modulus == 0] = 0

    # 3. Object, far field, scaling to counts.
    obj = np.zeros(n, np.complex64)
    obj[box.slices] = modulus * np.exp(1j * phi).astype(np.complex64)
    f = far_field(obj, workers)
    i_max = float(np.max(f.real * f.real + f.imag * f.imag))
    if not i_max > 0:
        raise BCDIError("the simulated object is empty: increase the size or lower the oversampling")
    scale = math.sqrt(max_counts / i_max)
    f *= np.float32(scale)
    obj[box.slices] *= np.float32(scale)
    expected = (f.real * f.real + f.imag * f.imag).astype(np.float32)
    reciprocal_phase = np.angle(f).astype(np.float32, copy=False) if compute_phase else None
    del f

    # 4. Noise and gap.
    intensity = poisson_counts(expected, rng) if noise else expected.copy()
    spec = parse_gap(gap, n, rng)
    mask = None
    if spec is not None:
        mask = spec.mask(n)
        intensity[mask.astype(bool)] = 0

    support = np.zeros(n, np.uint8)
    support[box.slices] = support_box
    phase_field = np.zeros(n, np.float32)
    phase_field[box.slices] = phi
    params = {
        "generator": "napari_bcdi_dl.core.simulate.simulate_pattern",
        "version": 1,
        "seed": _seed_record(seed),
        "size": list(n),
        "shape": fitted.kind,
        "shape_params": fitted.params,
        "orientation": orient.tolist(),
        "rotation": extra.tolist(),
        "oversampling": list(os3),
        "crystal_lengths": [float(x) for x in lengths],
        "keep_aspect": bool(keep_aspect),
        "edge_sigma": float(edge_sigma),
        "density_noise": float(density_noise),
        "field": field_params.pop("kind"),
        "field_params": field_params,
        "phase_range": float(phase_range),
        "max_counts": float(max_counts),
        "noise": bool(noise),
        "modulus_scale": float(scale),
        "gap": None if spec is None else spec.to_dict(),
    }
    return SimulatedPattern(intensity, expected, obj, support, reciprocal_phase, mask, phase_field, params)
