"""Parasitic scattering ("aliens") injected into simulated BCDI patterns, with their true mask.

Real scans carry signal that is not the crystal's: streaks from slits or a capillary, spots from the
substrate or from a neighbouring grain. Two kinds are simulated, each placed *off* the centro-symmetric
position of the Bragg peak (a real Bragg peak is nearly centro-symmetric about its centre, an alien is not):

- ``"spot"``: a Gaussian blob (σ 0.7–1.6 voxels per axis), truncated at 2σ;
- ``"streak"``: a thin line segment (8–30 voxels long, radius 0.9–1.5 voxels) in a random direction, half
  of them along a detector axis, whose line misses the Bragg peak by at least ``min_distance`` voxels.

Peak intensities are drawn log-uniformly between ``intensity_range`` × the pattern's maximum (default
1e-3–0.3: from a faint spot to a streak a third as bright as the Bragg peak). The alien's photons are drawn
from a Poisson law and added to the measured counts (a sum of Poisson counts is a Poisson count).

Placement (retried until it holds, so that the benchmark's truth is well defined): over the alien's
footprint the true signal stays below 10 % of the alien's peak and below 1 % of the pattern's maximum, and
the mirror of every footprint voxel about the peak lies inside the array. The **true mask** is the
footprint: every voxel that received alien photons (expected ≥ 1 % of the alien's peak). Two aliens are
never placed within 3 voxels of each other, nor within 6 of each other's (or their own) mirror (a mirrored pair would be
centro-symmetric, i.e. indistinguishable from crystal signal by symmetry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..errors import BCDIError
from .diffraction import SeedLike, as_generator

KINDS = ("spot", "streak")
#: a spot is cut at this many σ, a streak's cross-section at its radius (σ = radius / STREAK_SIGMAS)
SPOT_CUT_SIGMAS = 2.0
STREAK_SIGMAS = 1.5


@dataclass
class AlienPattern:
    """A pattern with injected aliens and their ground truth.

    Attributes
    ----------
    intensity : float32 counts with the aliens' photons added (the input is never modified).
    alien_expected : float32 expected alien counts (0 outside the aliens).
    mask : uint8 true alien mask (1 = voxel that received alien photons).
    aliens : one dict per alien (kind, centre, sizes, peak counts, number of voxels).
    peak : (z, y, x) voxel the aliens were placed against (the Bragg peak).
    """

    intensity: np.ndarray
    alien_expected: np.ndarray
    mask: np.ndarray
    aliens: list = field(default_factory=list)
    peak: tuple[int, int, int] = (0, 0, 0)


def _spot(shape, rng: np.random.Generator, peak_counts: float) -> tuple[np.ndarray, tuple, dict]:
    """A truncated Gaussian blob in a small box: (values, slices into a box at origin 0, params)."""
    sigma = rng.uniform(0.7, 1.6, size=3)
    half = np.ceil(SPOT_CUT_SIGMAS * sigma).astype(int)
    grids = np.meshgrid(*[np.arange(-h, h + 1, dtype=float) for h in half], indexing="ij")
    r2 = sum((g / s) ** 2 for g, s in zip(grids, sigma))
    values = np.where(r2 <= SPOT_CUT_SIGMAS**2, peak_counts * np.exp(-0.5 * r2), 0.0)
    return values, half, {"sigma": sigma.round(3).tolist()}


def _direction(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:  # along a detector axis (rows or columns), as slit streaks often are
        d = np.zeros(3)
        d[rng.integers(1, 3)] = 1.0
        return d
    d = rng.normal(size=3)
    return d / np.linalg.norm(d)


def _streak(rng: np.random.Generator, peak_counts: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """A thin segment of length 8–30 voxels: (values, half box size, params); centred in its box."""
    length = float(rng.uniform(8.0, 30.0))
    radius = float(rng.uniform(0.9, 1.5))
    d = _direction(rng)
    half = np.ceil(np.abs(d) * length / 2 + radius).astype(int)
    grids = np.stack(np.meshgrid(*[np.arange(-h, h + 1, dtype=float) for h in half], indexing="ij"), -1)
    t = np.clip(grids @ d, -length / 2, length / 2)
    dist2 = np.sum((grids - t[..., None] * d) ** 2, axis=-1)
    sigma = radius / STREAK_SIGMAS
    # intensity varies slowly along the streak (0.5–1 of the peak), as a slit streak fades away
    ramp = 0.75 + 0.25 * np.cos(np.pi * t / length + rng.uniform(0, 2 * np.pi))
    values = np.where(dist2 <= radius**2, peak_counts * ramp * np.exp(-0.5 * dist2 / sigma**2), 0.0)
    params = {"direction": d.round(4).tolist(), "length": round(length, 2), "radius": round(radius, 3)}
    return values, half, params


def _self_mirror(foot: np.ndarray, centre: np.ndarray, peak: np.ndarray) -> bool:
    """True when a footprint comes within 6 voxels of its own mirror (a streak crossing near the peak)."""
    half = (np.array(foot.shape) - 1) // 2
    pts = np.argwhere(foot) - half + centre
    mir = 2 * peak - pts
    d = np.min(np.linalg.norm(pts[:, None, :] - mir[None, ::7, :], axis=-1)) if len(pts) else np.inf
    return bool(d < 6)


def _peak_of(expected: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(expected)), expected.shape))


def inject_aliens(
    intensity: np.ndarray,
    expected: np.ndarray,
    n: int | None = None,
    *,
    seed: SeedLike = 0,
    kinds: Sequence[str] = KINDS,
    intensity_range: tuple[float, float] = (1e-3, 0.3),
    min_distance: float = 6.0,
    noise: bool = True,
    max_tries: int = 400,
) -> AlienPattern:
    """Add ``n`` aliens (1–4 drawn at random when None) to a simulated pattern.

    Parameters
    ----------
    intensity : measured counts (z, y, x) of the pattern (not modified).
    expected : its noise-free intensity (placement keeps aliens off the true signal).
    n : number of aliens; None draws 1 to 4.
    seed : int, SeedSequence or Generator.
    kinds : kinds to draw from (``"spot"``, ``"streak"``).
    intensity_range : alien peak counts as a fraction of the pattern's maximum (log-uniform).
    min_distance : voxels between the Bragg peak and the alien (a streak's line misses the peak by this).
    noise : add Poisson photons (else the expected alien counts are added).
    max_tries : placements tried per alien before giving up.

    Returns
    -------
    AlienPattern

    Raises
    ------
    BCDIError
        Shapes differ, an unknown kind, or no room for an alien off the Bragg peak.
    """
    data = np.asarray(intensity)
    exp = np.asarray(expected)
    if data.ndim != 3 or data.shape != exp.shape:
        raise BCDIError(f"inject aliens: intensity {data.shape} and expected {exp.shape} must be the same 3D shape")
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise BCDIError(f"inject aliens: unknown kind(s) {bad or kinds}; use {', '.join(KINDS)}")
    rng = as_generator(seed)
    n = int(rng.integers(1, 5)) if n is None else int(n)
    shape = np.array(data.shape)
    peak = np.array(_peak_of(exp))
    i_max = float(exp.max())
    lo, hi = np.log10(intensity_range[0]), np.log10(intensity_range[1])
    alien = np.zeros(data.shape, np.float64)
    # voxels already taken by an alien (and a 1-voxel margin) are not used twice
    taken = np.zeros(data.shape, bool)
    near = np.zeros(data.shape, bool)  # footprints grown by 6 voxels: no alien's mirror may fall there
    records = []
    for _ in range(n):
        kind = str(rng.choice(list(kinds)))
        counts = i_max * 10 ** rng.uniform(lo, hi)
        for _try in range(max_tries):
            if kind == "spot":
                values, half, params = _spot(shape, rng, counts)
            else:
                values, half, params = _streak(rng, counts)
            # the alien's box must sit inside the array and its mirror about the peak too
            lo_c = np.maximum(half, 2 * peak - (shape - 1) + half)
            hi_c = np.minimum(shape - 1 - half, 2 * peak - half)
            if np.any(hi_c < lo_c):
                continue
            centre = np.array([rng.integers(a, b + 1) for a, b in zip(lo_c, hi_c)])
            if kind == "spot" and np.linalg.norm(centre - peak) < min_distance + half.max():
                continue
            if kind == "streak":
                d = np.asarray(params["direction"])
                v = peak - centre
                t = np.clip(v @ d, -params["length"] / 2, params["length"] / 2)
                if np.linalg.norm(v - t * d) < min_distance + params["radius"]:
                    continue
            box = tuple(slice(c - h, c + h + 1) for c, h in zip(centre, half))
            mbox = tuple(slice(2 * p - c - h, 2 * p - c + h + 1) for p, c, h in zip(peak, centre, half))
            foot = values > 0.01 * counts
            sig = exp[box][foot]
            if sig.size == 0 or sig.max() > 0.1 * counts or sig.max() > 0.01 * i_max or taken[box][foot].any():
                continue
            if near[mbox][foot[::-1, ::-1, ::-1]].any() or _self_mirror(foot, centre, peak):
                continue  # aliens mirroring each other would look like centro-symmetric signal
            alien[box] += np.where(foot, values, 0.0)
            taken[box] |= ndimage.binary_dilation(foot, iterations=3)
            grown = np.zeros(data.shape, bool)
            grown[box] = foot
            near |= ndimage.binary_dilation(grown, iterations=6)
            records.append({"kind": kind, "centre": centre.tolist(), "peak_counts": float(counts),
                            "voxels": int(foot.sum()), **params})
            break
        else:
            raise BCDIError(f"inject aliens: no room for a {kind} off the Bragg peak after {max_tries} tries; "
                            "use a larger pattern or fewer aliens")
    expected_alien = alien.astype(np.float32)
    mask = (alien > 0).astype(np.uint8)
    added = rng.poisson(alien).astype(np.float32) if noise else expected_alien
    return AlienPattern(
        intensity=(data.astype(np.float32) + added).astype(np.float32),
        alien_expected=expected_alien,
        mask=mask,
        aliens=records,
        peak=tuple(int(v) for v in peak),
    )
