"""The napari sample pattern: 128³ Winterbottom particle, 3π, Maxipix-like 6-px cross gap."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core.simulate import strained_particle_with_gap


def test_strained_particle_with_gap_matches_its_description():
    p = strained_particle_with_gap()
    assert p.intensity.shape == (128, 128, 128) and p.intensity.dtype == np.float32
    assert p.params["shape"] == "winterbottom"
    assert p.params["phase_range"] == pytest.approx(3 * np.pi)
    assert np.ptp(p.phase_field[p.support == 1]) == pytest.approx(3 * np.pi, rel=1e-5)
    gap = p.params["gap"]
    assert gap["kind"] == "cross" and sorted(a for a, _, _ in gap["slabs"]) == [1, 2]
    assert all(w == 6 for _, _, w in gap["slabs"])
    # the cross passes close to the peak centre, where it hurts
    for axis, start, width in gap["slabs"]:
        assert abs(start + width / 2 - 64) < 10
    assert np.all(p.intensity[p.mask == 1] == 0)
    assert p.expected.max() == pytest.approx(1e7, rel=1e-5)
    # deterministic: the second sample (truth) is the same particle
    q = strained_particle_with_gap()
    np.testing.assert_array_equal(p.obj, q.obj)
