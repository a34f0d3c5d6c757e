"""Small shared builders for the inpainting tests (tiny models, synthetic fringe patterns)."""

from __future__ import annotations

import numpy as np

TINY = {"widths": (2, 4, 8), "dilations": ((1, 2), (1,), (1,)), "decoder_convs": (1, 1)}


def tiny_inpainter(seed: int = 0, **kw):
    from napari_bcdi_dl.models._keras import keras
    from napari_bcdi_dl.models.inpaint import build_inpainter

    keras().utils.set_random_seed(seed)
    return build_inpainter(32, **dict(TINY, **kw))


def fringe_pattern(shape=(48, 64, 64), peak=1e5, seed=0) -> np.ndarray:
    """A smooth Bragg-peak-like intensity with fringes (noise-free counts, float32)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n) - n / 2 for n in shape], indexing="ij")
    r2 = sum((g / (0.25 * n)) ** 2 for g, n in zip(grids, shape))
    k = rng.uniform(0.6, 1.0, 3)
    fr = np.prod([np.cos(0.5 * ki * g) ** 2 + 0.05 for ki, g in zip(k, grids)], axis=0)
    return (peak * np.exp(-r2) * fr).astype(np.float32)
