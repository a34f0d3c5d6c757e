"""Displacement phase fields φ = G·u inside a crystal, scaled to an exact phase range.

Each field is drawn on the crystal box (voxel coordinates relative to the array centre), then
:func:`make_phase` removes its mean phase gradient (a phase ramp only moves the Bragg peak off the array
centre) and scales it so that ``max - min`` of φ over the support is exactly the requested range.

Fields (``FIELDS``):
- ``gaussian_bumps``: two Gaussian displacement bumps of random sign, width and position inside the crystal;
- ``cosines``: two cosine waves of random direction, 0.5–2 periods across the crystal;
- ``random``: a Gaussian-correlated random field (correlation length 0.15–0.5 of the crystal size);
- ``interface``: a field decaying exponentially away from the substrate plane (Winterbottom) or a random
  bottom facet, modulated along the interface as misfit dislocations do;
- ``screw``: the phase winding ``m·θ`` of a screw dislocation line through the crystal (``m`` = 1 or 2, so
  that the object stays single-valued) plus a smooth field that brings the range to the request.
"""

from __future__ import annotations

import numpy as np

from ..errors import BCDIError
from .shapes import Polyhedron, correlated_noise

FIELDS = ("gaussian_bumps", "cosines", "random", "interface", "screw")
MAX_PHASE_RANGE = 6 * np.pi


def _points_inside(coords: np.ndarray, support: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    inside = coords[support.astype(bool)]
    if len(inside) == 0:
        raise BCDIError(
            "the crystal has no voxel inside its support: increase the size or lower the oversampling"
        )
    return inside[rng.integers(0, len(inside), size=k)]


def _crystal_size(coords: np.ndarray, support: np.ndarray) -> float:
    inside = coords[support.astype(bool)]
    return float(np.max(inside.max(axis=0) - inside.min(axis=0)) + 1)


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def gaussian_bumps(coords, support, rng, n_bumps: int = 2) -> tuple[np.ndarray, dict]:
    """Sum of ``n_bumps`` Gaussians of random sign, amplitude and width centred inside the crystal."""
    size = _crystal_size(coords, support)
    centres = _points_inside(coords, support, rng, n_bumps)
    phi = np.zeros(coords.shape[:3], np.float32)
    rec = []
    for c in centres:
        w = rng.uniform(0.15, 0.5) * size
        a = rng.uniform(0.5, 1.0) * rng.choice((-1.0, 1.0))
        r2 = ((coords - c.astype(np.float32)) ** 2).sum(axis=-1)
        phi += np.float32(a) * np.exp(-r2 / np.float32(2 * w * w))
        rec.append({"centre": c.tolist(), "width": float(w), "amplitude": float(a)})
    return phi, {"bumps": rec}


def cosines(coords, support, rng, n_waves: int = 2) -> tuple[np.ndarray, dict]:
    """Sum of ``n_waves`` cosines of random direction and phase, 0.5–2 periods across the crystal."""
    size = _crystal_size(coords, support)
    phi = np.zeros(coords.shape[:3], np.float32)
    rec = []
    for _ in range(n_waves):
        k = _unit(rng) * 2 * np.pi * rng.uniform(0.5, 2.0) / size
        psi = rng.uniform(0, 2 * np.pi)
        a = rng.uniform(0.5, 1.0)
        phi += np.float32(a) * np.cos(coords @ k.astype(np.float32) + np.float32(psi))
        rec.append({"k": k.tolist(), "phase": float(psi), "amplitude": float(a)})
    return phi, {"waves": rec}


def random_field(coords, support, rng) -> tuple[np.ndarray, dict]:
    """A Gaussian-correlated random field, correlation length 0.15–0.5 of the crystal size."""
    size = _crystal_size(coords, support)
    length = rng.uniform(0.15, 0.5) * size
    return correlated_noise(coords.shape[:3], length, rng), {"correlation_length": float(length)}


def interface(coords, support, rng, poly: Polyhedron | None = None) -> tuple[np.ndarray, dict]:
    """A field decaying away from the substrate interface, modulated along it.

    ``exp(-h/λ)·(a0 + a1 cos(k·r∥ + ψ))`` with ``h`` the height above the substrate plane (the Winterbottom
    substrate, else the lowest point of the crystal along a random direction), decay length λ of 0.1–0.4 of
    the crystal size.
    """
    size = _crystal_size(coords, support)
    if poly is not None and poly.substrate is not None:
        n = poly.normals[poly.substrate]
        d = poly.offsets[poly.substrate]
    else:
        n = _unit(rng)
        d = float((coords[support.astype(bool)] @ n).max())
    h = np.float32(d) - coords @ n.astype(np.float32)  # >= 0 inside, 0 on the interface
    lam = rng.uniform(0.1, 0.4) * size
    t = _unit(rng)
    t -= n * (t @ n)
    t /= np.linalg.norm(t)
    kpar = 2 * np.pi * rng.uniform(0.5, 3.0) / size
    a0, a1 = rng.uniform(0.3, 1.0), rng.uniform(0.0, 1.0)
    psi = rng.uniform(0, 2 * np.pi)
    mod = np.float32(a0) + np.float32(a1) * np.cos(
        np.float32(kpar) * (coords @ t.astype(np.float32)) + np.float32(psi)
    )
    phi = np.exp(-np.clip(h, 0, None) / np.float32(lam)) * mod
    return phi.astype(np.float32), {
        "normal": n.tolist(),
        "decay_length": float(lam),
        "a0": float(a0),
        "a1": float(a1),
        "k_parallel": float(kpar),
    }


def screw_angle(coords, support, rng) -> tuple[np.ndarray, dict]:
    """Azimuth θ in (-π, π] around a random line through a point of the crystal's core."""
    inside = coords[support.astype(bool)]
    centre = inside.mean(axis=0)
    p = centre + (_points_inside(coords, support, rng, 1)[0] - centre) * rng.uniform(0, 0.5)
    t = _unit(rng)
    e1 = np.cross(t, [1.0, 0, 0] if abs(t[0]) < 0.9 else [0, 1.0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(t, e1)
    r = coords - p.astype(np.float32)
    theta = np.arctan2(r @ e2.astype(np.float32), r @ e1.astype(np.float32))
    return theta.astype(np.float32), {"point": p.tolist(), "direction": t.tolist()}


def remove_ramp(phi: np.ndarray, coords: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, list]:
    """Subtract the weighted least-squares linear ramp ``g·r`` (weights: ρ² keeps the Bragg peak centred)."""
    w = weights.ravel().astype(np.float64)
    sel = w > 0
    if sel.sum() < 4:
        return phi, [0.0, 0.0, 0.0]
    x = coords.reshape(-1, 3)[sel].astype(np.float64)
    a = np.hstack([x, np.ones((len(x), 1))])
    sw = np.sqrt(w[sel])[:, None]
    coef, *_ = np.linalg.lstsq(a * sw, phi.ravel()[sel].astype(np.float64) * sw[:, 0], rcond=None)
    g = coef[:3]
    return (phi - coords @ g.astype(np.float32)).astype(np.float32), g.tolist()


def _range(phi: np.ndarray, inside: np.ndarray) -> float:
    v = phi[inside]
    return float(v.max() - v.min())


def make_phase(
    kind: str,
    coords: np.ndarray,
    support: np.ndarray,
    modulus: np.ndarray,
    phase_range: float,
    rng: np.random.Generator,
    poly: Polyhedron | None = None,
    remove_gradient: bool = True,
) -> tuple[np.ndarray, dict]:
    """A phase field of family ``kind`` whose range over ``support`` is exactly ``phase_range`` (radians).

    Parameters
    ----------
    kind : one of :data:`FIELDS` or ``"random_kind"`` (any of them).
    coords : (bz, by, bx, 3) voxel coordinates of the crystal box.
    support, modulus : crystal support (uint8) and modulus on the box.
    phase_range : ``max - min`` of φ over the support, 0 to 6π.
    remove_gradient : subtract the ρ²-weighted mean phase gradient first (keeps the Bragg peak centred).

    Returns
    -------
    phi : float32 field on the box (unwrapped, radians), from -range/2 to +range/2 over the support.
    params : how it was drawn.
    """
    if not np.isfinite(phase_range) or phase_range < 0 or phase_range > MAX_PHASE_RANGE + 1e-9:
        raise BCDIError(
            f"phase range {phase_range:.4g} rad is outside 0–6π: choose a value in [0, {MAX_PHASE_RANGE:.4f}]"
        )
    if kind == "random_kind":
        kind = str(rng.choice(FIELDS))
    inside = support.astype(bool)
    if not inside.any():
        raise BCDIError(
            "the crystal has no voxel inside its support: increase the size or lower the oversampling"
        )
    weights = modulus.astype(np.float32) ** 2
    params: dict = {"kind": kind, "phase_range": float(phase_range)}
    if kind == "screw":
        if phase_range < 2 * np.pi - 1e-6:
            raise BCDIError(
                f"a screw dislocation winds the phase by 2π, phase range {phase_range:.3g} rad is below it: "
                "ask for ≥ 2π or choose another field"
            )
        theta, p = screw_angle(coords, support, rng)
        m = 2 if phase_range >= 5 * np.pi and rng.random() < 0.5 else 1
        smooth, ps = gaussian_bumps(coords, support, rng)
        if remove_gradient:
            smooth, _ = remove_ramp(smooth, coords, weights)
        base = np.float32(m) * theta
        sr = _range(smooth, inside)
        # range(c) = range(base + c·smooth) is convex in c: bisect its crossing of the request.
        lo, hi = 0.0, 1.0
        if _range(base, inside) > phase_range or sr == 0:
            c = 0.0
        else:
            hi = max(1.0, 2 * phase_range / sr)
            while _range(base + np.float32(hi) * smooth, inside) < phase_range:
                hi *= 2
            for _ in range(50):
                mid = 0.5 * (lo + hi)
                if _range(base + np.float32(mid) * smooth, inside) < phase_range:
                    lo = mid
                else:
                    hi = mid
            c = hi
        phi = base + np.float32(c) * smooth
        params.update(p, winding=m, smooth=ps, smooth_scale=float(c))
    else:
        if kind == "gaussian_bumps":
            phi, p = gaussian_bumps(coords, support, rng)
        elif kind == "cosines":
            phi, p = cosines(coords, support, rng)
        elif kind == "random":
            phi, p = random_field(coords, support, rng)
        elif kind == "interface":
            phi, p = interface(coords, support, rng, poly)
        else:
            raise BCDIError(f"unknown field {kind!r}: choose one of {', '.join(FIELDS)}")
        params.update(p)
        if remove_gradient:
            phi, g = remove_ramp(phi, coords, weights)
            params["removed_gradient"] = g
        r = _range(phi, inside)
        phi = phi * np.float32(phase_range / r) if r > 0 else np.zeros_like(phi)
    v = phi[inside]
    phi = phi - np.float32((float(v.max()) + float(v.min())) / 2)
    return phi.astype(np.float32), params
