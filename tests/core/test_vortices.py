"""The vortex finder: planted dislocation lines are found (within 2 voxels over ≥ 90 % of their length),
defect-free crystals give none."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.simulate.dislocations import Dislocation, dislocation_phase, simulate_defect_pattern
from napari_bcdi_dl.core.vortices import find_vortex_lines, line_coverage, plaquette_windings


def _ball(n=32, radius=11.0):
    axes = [np.arange(n, dtype=float) - n // 2] * 3
    coords = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return coords, (np.linalg.norm(coords, axis=-1) <= radius)


def test_planted_straight_line_is_found():
    coords, ball = _ball()
    t = np.array([0.3, 0.8, -0.5])
    t /= np.linalg.norm(t)
    point = np.array([1.3, -2.2, 0.7])
    d = Dislocation(point, t, 0.5 * np.array([1.0, 1.0, 0.0]), "mixed")
    phi = dislocation_phase(coords, [d], np.array([2.0, 0.0, 0.0]))  # g·b = 1
    obj = (ball * np.exp(1j * phi)).astype(np.complex64)
    lines = find_vortex_lines(obj)
    assert len(lines) == 1
    line = lines[0]
    assert set(np.abs(line.windings)) == {1}
    inside = ndimage.binary_erosion(ball, iterations=2)
    assert line_coverage(lines, point + 16, t, inside) >= 0.9
    # every found vortex lies within 2 voxels of the true line, and the fitted segment is along it
    r = line.points - (point + 16)
    dist = np.linalg.norm(r - (r @ t)[:, None] * t, axis=1)
    assert dist.max() <= 2.0
    assert abs(line.direction @ t) > 0.98
    assert line.length > 15


def test_defect_free_object_has_no_vortex():
    for seed in range(4):
        p = simulate_defect_pattern(48, seed=seed, label="none", noise=False)
        assert find_vortex_lines(p.obj, p.support) == []
        assert len(plaquette_windings(p.obj, p.support)[0]) == 0


@pytest.mark.parametrize("label", ["edge", "screw", "mixed"])
def test_simulated_dislocations_are_found(label):
    p = simulate_defect_pattern(48, seed=7, label=label, noise=False)
    lines = find_vortex_lines(p.obj, p.support)
    inside = ndimage.binary_erosion(p.support.astype(bool), iterations=2)
    assert 1 <= len(lines) <= len(p.params["lines"])  # two lines may meet inside the crystal
    for true in p.params["lines"]:
        assert line_coverage(lines, np.array(true["point"]) + 24, true["direction"], inside) >= 0.9


def test_a_phase_array_works_too_and_bad_inputs_are_refused():
    coords, ball = _ball(24, 9)
    d = Dislocation(np.array([0.0, 0.5, 0.5]), np.array([1.0, 0, 0]), np.array([0, 0, 0.5]), "edge")
    phi = dislocation_phase(coords, [d], np.array([0, 0, 2.0]))
    lines = find_vortex_lines(phi.astype(np.float32), ball.astype(np.uint8))
    assert len(lines) == 1 and np.allclose(lines[0].points[:, 1:], [12.5, 12.5])
    with pytest.raises(BCDIError, match="3D"):
        find_vortex_lines(np.zeros((8, 8), np.complex64))
    with pytest.raises(BCDIError, match="NaN"):
        find_vortex_lines(np.full((8, 8, 8), np.nan, np.complex64))
    with pytest.raises(BCDIError, match="support shape"):
        find_vortex_lines(phi, np.ones((4, 4, 4)))
