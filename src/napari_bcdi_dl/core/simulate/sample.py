"""The napari sample: "Strained particle with detector gap" (128³, Winterbottom, 3π, 6-px cross gap)."""

from __future__ import annotations

import numpy as np

from .diffraction import GapSpec, SimulatedPattern, simulate_pattern

SAMPLE_SIZE = 128
#: Maxipix-like cross: a 6-pixel band of detector rows and one of columns, a little off the peak centre.
SAMPLE_GAP = GapSpec(((1, 58, 6), (2, 69, 6)))


def strained_particle_with_gap(seed: int = 0) -> SimulatedPattern:
    """A 128³ pattern of a Winterbottom particle with a 3π phase range and a 6-px Maxipix-like cross gap.

    Oversampling (3, 3.5, 3), 1e7 photons at the maximum, Poisson noise, Gaussian displacement bumps,
    edges smoothed over 0.7 voxel and 5 % density fluctuations. The gap crosses the peak 3 voxels off its
    centre along y and 5 along x, like a Maxipix 2×2 chip gap near a centred Bragg peak.
    """
    return simulate_pattern(
        SAMPLE_SIZE,
        seed=seed,
        shape="winterbottom",
        field="gaussian_bumps",
        phase_range=3 * np.pi,
        oversampling=(3.0, 3.5, 3.0),
        max_counts=1e7,
        noise=True,
        gap=SAMPLE_GAP,
        edge_sigma=0.7,
        density_noise=0.05,
    )
