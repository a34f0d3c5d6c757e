"""npe2 sample data: a simulated strained particle with a detector gap, and its ground-truth object.

Thin callables over ``core.simulate.sample``; they import numpy/scipy only (no Qt, no TensorFlow), and
return new arrays at every call (the user may paint the mask in place).
"""

from __future__ import annotations

import json

import numpy as np

NAME = "Strained particle"


def _intensity_kwargs(intensity: np.ndarray, params: dict) -> dict:
    # Photon counts span 7 decades: a low gamma and an upper contrast limit well below the maximum show
    # the fringes without changing the data (the raw counts stay the layer's data for the pipeline).
    positive = intensity[intensity > 0]
    hi = float(np.percentile(positive, 99.9)) if positive.size else 1.0
    return {
        "name": NAME,
        "colormap": "inferno",
        "gamma": 0.2,
        "contrast_limits": (0.0, max(hi, 1.0)),
        "metadata": {"bcdi": {"kind": "intensity", "simulated": True, "params_json": json.dumps(params)}},
    }


def strained_particle_with_gap() -> list:
    """ "Strained particle with detector gap": 128³ counts (Image) + "<name> gap mask" (Labels)."""
    from .core.simulate.sample import strained_particle_with_gap as simulate

    p = simulate()
    return [
        (p.intensity, _intensity_kwargs(p.intensity, p.params), "image"),
        (
            p.mask.astype(np.uint8),
            {"name": f"{NAME} gap mask", "opacity": 0.5, "metadata": {"bcdi": {"kind": "mask"}}},
            "labels",
        ),
    ]


def strained_particle_truth() -> list:
    """Ground truth of the sample: modulus, phase (twilight, ±π) and support of the simulated object."""
    from .core.simulate.sample import strained_particle_with_gap as simulate

    p = simulate()
    modulus = np.abs(p.obj)
    phase = np.where(modulus > 0, np.angle(p.obj), 0).astype(np.float32)
    meta = {"bcdi": {"kind": "truth", "simulated": True, "params_json": json.dumps(p.params)}}
    return [
        (
            modulus.astype(np.float32),
            {"name": f"{NAME} truth modulus", "colormap": "gray", "metadata": meta},
            "image",
        ),
        (
            phase,
            {
                "name": f"{NAME} truth phase",
                "colormap": "twilight",
                "contrast_limits": (-np.pi, np.pi),
                "metadata": meta,
            },
            "image",
        ),
        (
            p.support.astype(np.uint8),
            {"name": f"{NAME} truth support", "opacity": 0.3, "visible": False},
            "labels",
        ),
    ]
