"""A small, self-contained BCDI simulator and comparison helper for the phasing tests.

The particle is faceted (a box cut by the {111} octahedron), with slightly smoothed edges and a smooth,
low phase field (a 0.8 rad Gaussian bump plus a weak ramp): the "low-strain" case conventional phasing
must solve. The pattern is ``|fftshift(fftn(ifftshift(obj)))|²`` scaled to ``max_counts`` at the Bragg peak,
with Poisson noise.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_erosion, gaussian_filter

from napari_bcdi_dl.core.phasing import register


def simulate(
    n: int = 40,
    size: float = 12.0,
    *,
    phase_amp: float = 0.8,
    blur: float = 0.5,
    max_counts: float = 1e5,
    seed: int = 0,
    noise: bool = True,
):
    """Return (noisy intensity float32, object complex64 on the data's scale, shape uint8)."""
    rng = np.random.default_rng(seed)
    c = np.arange(n) - n // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    r = size / 2
    shape = (
        (np.abs(x) <= r)
        & (np.abs(y) <= 0.8 * r)
        & (np.abs(z) <= 0.9 * r)
        & (np.abs(x) + np.abs(y) + np.abs(z) <= 1.3 * r)
    )
    mod = gaussian_filter(shape.astype(np.float64), blur) if blur else shape.astype(np.float64)
    phase = phase_amp * np.exp(-((x - 1) ** 2 + (y + 1) ** 2 + z**2) / (2 * (r / 1.5) ** 2)) + 0.03 * x
    obj = mod * np.exp(1j * phase)
    f = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))
    i = np.abs(f) ** 2
    scale = max_counts / i.max()
    i *= scale
    obj = (obj * np.sqrt(scale)).astype(np.complex64)
    data = rng.poisson(i).astype(np.float32) if noise else i.astype(np.float32)
    return data, obj, shape.astype(np.uint8)


def calc_intensity(obj: np.ndarray) -> np.ndarray:
    """The project's FFT convention."""
    return (np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))) ** 2).astype(np.float32)


def compare(truth: np.ndarray, rec: np.ndarray, shape: np.ndarray, erode: int = 2) -> dict:
    """Error of ``rec`` against ``truth`` up to global phase, translation, twin and scale.

    Returns ``error`` (‖γ·rec − truth‖ / ‖truth‖ after registration, γ the best complex scale) and
    ``phase_rmse`` (rad) over the crystal's core (``shape`` eroded by ``erode`` voxels), where the phase is
    not blurred by the edges.
    """
    aligned, info = register(truth, rec)
    gamma = np.vdot(aligned, truth) / np.vdot(aligned, aligned)
    aligned = aligned * gamma
    error = float(np.linalg.norm(aligned - truth) / np.linalg.norm(truth))
    core = binary_erosion(shape.astype(bool), iterations=erode)
    dphi = np.angle(aligned[core] * np.conj(truth[core]))
    return {"error": error, "phase_rmse": float(np.sqrt(np.mean(dphi**2))), **info}
