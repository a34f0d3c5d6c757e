"""Phase fields: the range inside the crystal is exactly the request; the screw field winds by 2π·m."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.simulate import FIELDS, simulate_pattern


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("turns", [0.0, 0.5, 2.0, 3.0, 5.0, 6.0])
def test_phase_range_matches_request(field, turns):
    if field == "screw" and turns < 2:
        pytest.skip("a screw dislocation winds by at least 2π")
    request = turns * np.pi
    for seed, shape in ((0, "winterbottom"), (1, "hull")):
        p = simulate_pattern(
            48, seed=seed, shape=shape, field=field, phase_range=request, oversampling=2.5, noise=False
        )
        inside = p.phase_field[p.support.astype(bool)]
        assert np.ptp(inside) == pytest.approx(request, abs=1e-5 * max(request, 1))
        # centred on zero: [-range/2, +range/2]
        assert inside.max() == pytest.approx(request / 2, abs=1e-5 * max(request, 1))
        # the stored object carries that phase
        obj_phase = np.angle(p.obj[p.support.astype(bool)])
        np.testing.assert_allclose(np.exp(1j * obj_phase), np.exp(1j * inside), atol=2e-3)


def test_screw_field_winds_by_integer_turns():
    p = simulate_pattern(
        64, seed=2, shape="wulff", field="screw", phase_range=4 * np.pi, oversampling=2.2, noise=False
    )
    fp = p.params["field_params"]
    point = np.array(fp["point"]) + 32  # params are relative to the array centre
    t = np.array(fp["direction"])
    e1 = np.cross(t, [1.0, 0, 0] if abs(t[0]) < 0.9 else [0, 1.0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(t, e1)
    ang = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    loop = point[:, None] + 2.5 * (np.cos(ang) * e1[:, None] + np.sin(ang) * e2[:, None])
    re = ndimage.map_coordinates(p.obj.real, loop, order=1)
    im = ndimage.map_coordinates(p.obj.imag, loop, order=1)
    assert np.all(np.hypot(re, im) > 0.3 * np.abs(p.obj).max())
    phase = np.angle(re + 1j * im)
    winding = np.sum(np.angle(np.exp(1j * np.diff(np.append(phase, phase[0]))))) / (2 * np.pi)
    assert abs(round(winding)) == fp["winding"]
    assert winding == pytest.approx(round(winding), abs=1e-3)


@pytest.mark.parametrize("field", FIELDS)
def test_strained_peak_stays_centred(field):
    p = simulate_pattern(64, seed=5, field=field, phase_range=5 * np.pi, oversampling=3, noise=False)
    e = p.expected.astype(np.float64)
    com = [
        (e.sum(axis=tuple(a for a in range(3) if a != i)) * np.arange(64)).sum() / e.sum() for i in range(3)
    ]
    assert np.all(np.abs(np.array(com) - 32) < 4), com


@pytest.mark.parametrize("bad", [-0.1, 6.01 * np.pi, np.nan])
def test_phase_range_outside_0_6pi_is_a_clear_error(bad):
    with pytest.raises(BCDIError, match="phase range"):
        simulate_pattern(32, phase_range=bad)


def test_screw_below_2pi_is_a_clear_error():
    with pytest.raises(BCDIError, match="screw dislocation"):
        simulate_pattern(32, field="screw", phase_range=np.pi)


def test_unknown_field_is_a_clear_error():
    with pytest.raises(BCDIError, match="unknown field"):
        simulate_pattern(32, field="vortex")
