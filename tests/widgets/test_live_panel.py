"""The live view's picture (``widgets._live.live_panel``): slices through the centre of mass, modulus in gray
above phase in twilight, prepared in the worker thread without Qt."""

from __future__ import annotations

import numpy as np

from napari_bcdi_dl.widgets._live import FULL_RES_VOXELS, live_panel


def _blob(shape, centre, r=4):
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    inside = sum((g - c) ** 2 for g, c in zip(grids, centre)) <= r * r
    return (inside * np.exp(1j * 0.5)).astype(np.complex64), inside.astype(np.uint8)


def test_panel_cuts_through_the_centre_of_mass():
    obj, support = _blob((20, 24, 28), (6, 15, 9))
    rgba = live_panel(obj, support, gap=2)
    h = 24  # the tallest cut: (y, x) = (24, 28), (z, x) = (20, 28), (z, y) = (20, 24)
    assert rgba.dtype == np.uint8 and rgba.shape == (2 * h + 2, 28 + 28 + 24 + 4, 4)
    assert (rgba[..., 3] == 255).all()
    top = rgba[:h, :28, 0]  # the z cut of the modulus: the blob's disc, full brightness at its centre
    assert top[15, 9] == 255 and top[0, 0] == 0
    side = rgba[:20, 30:58, 0]  # the y cut: (z, x)
    assert side[6, 9] == 255
    # the phase row is coloured (offset removed: the crystal's mean phase 0 is the middle of twilight)
    phase_row = rgba[h + 2: h + 2 + 24, :28, :3]
    assert phase_row[15, 9].tolist() == phase_row[14, 9].tolist()


def test_large_volumes_are_shown_one_voxel_in_two():
    n = int(round(FULL_RES_VOXELS ** (1 / 3))) + 8
    obj, support = _blob((n, n, n), (n // 2,) * 3, r=10)
    rgba = live_panel(obj, support, gap=2)
    assert rgba.shape[0] == 2 * ((n + 1) // 2) + 2
