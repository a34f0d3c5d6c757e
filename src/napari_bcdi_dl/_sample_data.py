"""npe2 sample data: a simulated strained particle with a detector gap, and its ground-truth object.

Thin callables over ``core.simulate.sample``; they import numpy/scipy only (no Qt, no TensorFlow), and
return new arrays at every call (the user may paint the mask in place).

The sample carries a realistic ESRF ID01-like geometry (:data:`SAMPLE_GEOMETRY`: 9 keV, Maxipix 55 µm
pixels at 0.6 m, eta rocking in 0.009° steps, Au 111 in the symmetric Bragg geometry, delta = 2θ), so the
whole path is in physical units: the pattern's ``scale`` is its reciprocal step (1/nm, with the axis labels
of the scan), the real-space voxel size (≈ 11.7 nm) of objects phased from it is its ``metadata["bcdi"]
["voxel_size_nm"]``, the Results dock orthogonalises to the lab frame and the strain is a true strain.
"""

from __future__ import annotations

import json

import numpy as np

from .core.types import Geometry

NAME = "Strained particle"
#: Au 111 at 9 keV: 2θ = 34.022°, θ = 17.011° (Bragg's law, a = 0.4078 nm)
SAMPLE_GEOMETRY = Geometry(energy_kev=9.0, distance_m=0.6, pixel_size_m=(55e-6, 55e-6), rocking_step_deg=0.009,
                           rocking_motor="eta", angles_deg={"eta": 17.011, "phi": 0.0, "delta": 34.022, "nu": 0.0},
                           hkl=(1, 1, 1), lattice_nm=0.4078, detector="mpx1x4")
#: the dims slider labels of the pattern (rocking angle, detector rows and columns)
AXIS_LABELS = ("rocking (eta)", "detector row", "detector col")


def _grids(shape) -> tuple[dict, tuple]:
    """The pattern's layer grid (reciprocal step in 1/nm, labels) and the real-space voxel size (nm)."""
    from .core.geometry import detector_voxel_size, reciprocal_voxel_size

    q = tuple(float(v) for v in reciprocal_voxel_size(SAMPLE_GEOMETRY, shape))
    voxel = tuple(float(v) for v in detector_voxel_size(SAMPLE_GEOMETRY, shape))
    return {"scale": q, "units": "1/nm", "axis_labels": AXIS_LABELS}, voxel


def _intensity_kwargs(intensity: np.ndarray, params: dict) -> dict:
    # Photon counts span 7 decades: a low gamma and an upper contrast limit well below the maximum show
    # the fringes without changing the data (the raw counts stay the layer's data for the pipeline).
    positive = intensity[intensity > 0]
    hi = float(np.percentile(positive, 99.9)) if positive.size else 1.0
    grid, voxel = _grids(intensity.shape)
    return {
        "name": NAME,
        "colormap": "inferno",
        "gamma": 0.2,
        "contrast_limits": (0.0, max(hi, 1.0)),
        "metadata": {"bcdi": {"kind": "intensity", "simulated": True, "params_json": json.dumps(params),
                              "geometry": SAMPLE_GEOMETRY, "voxel_size_nm": voxel}},
        **grid,
    }


def strained_particle_with_gap() -> list:
    """ "Strained particle with detector gap": 128³ counts (Image) + "<name> gap mask" (Labels)."""
    from .core.simulate.sample import strained_particle_with_gap as simulate

    p = simulate()
    grid, _voxel = _grids(p.intensity.shape)
    return [
        (p.intensity, _intensity_kwargs(p.intensity, p.params), "image"),
        (
            p.mask.astype(np.uint8),
            {"name": f"{NAME} gap mask", "opacity": 0.5, "metadata": {"bcdi": {"kind": "mask"}}, **grid},
            "labels",
        ),
    ]


def strained_particle_truth() -> list:
    """Ground truth of the sample: modulus, phase (twilight, ±π) and support of the simulated object."""
    from .core.simulate.sample import strained_particle_with_gap as simulate

    p = simulate()
    modulus = np.abs(p.obj)
    phase = np.where(modulus > 0, np.angle(p.obj), 0).astype(np.float32)
    _grid, voxel = _grids(p.obj.shape)
    real = {"scale": voxel, "units": "nm"}
    meta = {"bcdi": {"kind": "truth", "simulated": True, "params_json": json.dumps(p.params),
                     "geometry": SAMPLE_GEOMETRY, "voxel_size_nm": voxel}}
    return [
        (
            modulus.astype(np.float32),
            {"name": f"{NAME} truth modulus", "colormap": "gray", "metadata": meta, **real},
            "image",
        ),
        (
            phase,
            {
                "name": f"{NAME} truth phase",
                "colormap": "twilight",
                "contrast_limits": (-np.pi, np.pi),
                "metadata": meta,
                **real,
            },
            "image",
        ),
        (
            p.support.astype(np.uint8),
            {"name": f"{NAME} truth support", "opacity": 0.3, "visible": False, **real},
            "labels",
        ),
    ]
