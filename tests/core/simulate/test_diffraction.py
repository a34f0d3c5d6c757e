"""Diffraction: I = |FT(obj)|² of the stored object, Poisson noise, gaps, seeds, bad parameters."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.simulate import GapSpec, gap_mask, random_gap, simulate_pattern


def _ft(obj: np.ndarray) -> np.ndarray:
    """The project's convention in float64, independent of the code under test (numpy.fft)."""
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj.astype(np.complex128))))


@pytest.mark.parametrize(
    "kw",
    [
        dict(size=64, shape="wulff", field="gaussian_bumps", phase_range=3 * np.pi, oversampling=(3, 3, 3)),
        dict(size=(48, 64, 40), shape="hull", field="screw", phase_range=5 * np.pi, oversampling=(2, 4, 2.5)),
        dict(size=33, shape="winterbottom", field="interface", phase_range=6 * np.pi, oversampling=2.2),
        dict(
            size=64,
            shape="cube_cuts",
            field="random",
            phase_range=0.0,
            oversampling=5,
            rotation="random",
            density_noise=0.1,
        ),
    ],
)
def test_intensity_is_ft_of_stored_object_before_noise(kw):
    size = kw.pop("size")
    p = simulate_pattern(size, seed=4, max_counts=3e7, **kw)
    f = _ft(p.obj)
    i_ref = np.abs(f) ** 2
    assert p.expected.dtype == np.float32 and p.obj.dtype == np.complex64 and p.intensity.dtype == np.float32
    assert p.expected.shape == p.obj.shape == p.support.shape == p.intensity.shape
    np.testing.assert_allclose(p.expected, i_ref, rtol=0, atol=2e-6 * i_ref.max())
    assert p.expected.max() == pytest.approx(3e7, rel=1e-6)
    strong = i_ref > 1e-6 * i_ref.max()
    dphi = np.angle(np.exp(1j * (p.reciprocal_phase[strong] - np.angle(f[strong]))))
    assert np.abs(dphi).max() < 1e-3
    assert p.reciprocal_phase.dtype == np.float32


def test_no_noise_gives_the_expected_intensity():
    p = simulate_pattern(32, seed=0, noise=False)
    np.testing.assert_array_equal(p.intensity, p.expected)


def test_poisson_statistics_of_the_noise():
    p = simulate_pattern(64, seed=11, max_counts=1e6, phase_range=2 * np.pi, oversampling=2.5)
    i, e = p.intensity.astype(np.float64), p.expected.astype(np.float64)
    assert np.array_equal(i, np.round(i)) and i.min() >= 0  # photon counts
    # mean and variance equal the expectation: standardised residuals have mean 0 and variance 1
    bright = e > 20
    z = (i[bright] - e[bright]) / np.sqrt(e[bright])
    n = z.size
    assert n > 5000
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    # the low-count regime: P(0 photons) = exp(-E)
    dim = (e > 0.05) & (e < 0.5)
    assert dim.sum() > 5000
    p0_expected = np.exp(-e[dim]).mean()
    p0 = (i[dim] == 0).mean()
    assert abs(p0 - p0_expected) < 5 * np.sqrt(p0_expected * (1 - p0_expected) / dim.sum())
    # overall: total counts match the expectation to Poisson precision
    assert abs(i.sum() - e.sum()) < 5 * np.sqrt(e.sum())


def test_same_seed_same_pattern_bit_for_bit():
    kw = dict(shape="random", field="random", phase_range=4 * np.pi, gap="cross", density_noise=0.05)
    a = simulate_pattern(48, seed=123, **kw)
    b = simulate_pattern(48, seed=123, workers=1, **kw)
    for name in ("intensity", "expected", "obj", "support", "reciprocal_phase", "mask", "phase_field"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.params == b.params
    c = simulate_pattern(48, seed=124, **kw)
    assert not np.array_equal(a.intensity, c.intensity)


def test_seed_sequence_and_generator_are_accepted():
    ss = np.random.SeedSequence(5, spawn_key=(1, 2))
    a = simulate_pattern(32, seed=ss)
    b = simulate_pattern(32, seed=np.random.default_rng(np.random.SeedSequence(5, spawn_key=(1, 2))))
    np.testing.assert_array_equal(a.intensity, b.intensity)
    assert a.params["seed"] == {"entropy": 5, "spawn_key": [1, 2]}


def test_gap_voxels_are_zero_and_mask_has_requested_widths():
    p = simulate_pattern(64, seed=3, gap="cross:4,9")
    assert p.mask.dtype == np.uint8 and set(np.unique(p.mask)) == {0, 1}
    assert np.all(p.intensity[p.mask == 1] == 0)
    assert p.expected[p.mask == 1].max() > 0  # the truth is kept under the gap
    slabs = p.params["gap"]["slabs"]
    assert p.params["gap"]["kind"] == "cross"
    assert sorted((a, w) for a, _, w in slabs) == [(1, 4), (2, 9)]
    # a slab spans the whole array along the other two axes
    _, start, width = slabs[0]
    assert p.mask[:, start : start + width, :].all()
    assert p.mask.sum() == 64 * 64 * (4 + 9) - 64 * 4 * 9


def test_random_gaps_cover_widths_1_to_12_and_positions():
    rng = np.random.default_rng(0)
    specs = [random_gap((64, 64, 64), rng) for _ in range(500)]
    widths = {w for s in specs for _, _, w in s.slabs}
    assert widths == set(range(1, 13))
    kinds = [s.kind for s in specs]
    assert 0.12 < kinds.count("cross") / len(kinds) < 0.28
    starts = {st for s in specs for _, st, _ in s.slabs}
    assert len(starts) > 10
    for s in specs:
        for axis, start, width in s.slabs:
            assert axis in (1, 2) and 0 <= start and start + width <= 64


def test_gap_mask_explicit_slabs():
    m = gap_mask((8, 10, 12), [(2, 10, 5)])  # clipped at the border
    assert m[:, :, 10:].all() and m.sum() == 8 * 10 * 2
    spec = GapSpec(((1, 2, 3),))
    assert spec.kind == "line" and spec.mask((4, 8, 8)).sum() == 4 * 3 * 8


def test_rotation_of_reciprocal_axes_is_recorded_and_keeps_ft_relation():
    rot = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    p = simulate_pattern(48, seed=2, rotation=rot, orientation=None, noise=False)
    q = simulate_pattern(48, seed=2, rotation=None, orientation=None, noise=False)
    np.testing.assert_allclose(p.params["rotation"], rot)
    assert not np.allclose(p.expected, q.expected)
    np.testing.assert_allclose(p.expected, np.abs(_ft(p.obj)) ** 2, atol=2e-6 * p.expected.max())


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(oversampling=1.5), "below 2"),
        (dict(oversampling=(3, 1.9, 3)), "along y is below 2"),
        (dict(oversampling=(3, 3)), "one number or three"),
        (dict(max_counts=-10), "positive"),
        (dict(max_counts=0), "positive"),
        (dict(max_counts=float("nan")), "positive"),
        (dict(size=16, oversampling=4), "leaves a crystal"),
        (dict(size=4), "too small"),
        (dict(gap="cross:0"), "at least 1|does not fit"),
        (dict(gap="line:40"), "does not fit"),
        (dict(gap="star"), "unknown gap kind"),
        (dict(rotation="sideways"), "rotation"),
        (dict(rotation=np.eye(3) * 2), "rotation matrix"),
        (dict(edge_sigma=-1), "edge sigma"),
    ],
)
def test_bad_parameters_give_one_line_errors(kw, match):
    kw = {"size": 64, **kw}
    size = kw.pop("size")
    with pytest.raises(BCDIError, match=match) as err:
        simulate_pattern(size, **kw)
    assert "\n" not in str(err.value)
