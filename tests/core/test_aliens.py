"""core.aliens (DBSCAN masking of parasitic scattering) and core.simulate.aliens (injected streaks and spots)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_bcdi_dl.core.aliens import (
    DEFAULTS,
    asymmetry,
    clusters_mask,
    find_aliens,
    friedel_contrast,
    neighbour_graph,
    threshold_mask,
)
from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.simulate.aliens import inject_aliens


@pytest.fixture(scope="module")
def patterns():
    """Three simulated strained crystals (up to 2.5π of phase range)."""
    from napari_bcdi_dl.core.simulate import simulate_pattern

    return [simulate_pattern(64, seed=s, field=f, phase_range=r, oversampling=3.2, max_counts=m,
                             compute_phase=False)
            for s, f, r, m in ((1, "gaussian_bumps", 1.0, 1e6), (2, "cosines", 5.0, 3e5), (3, "random", 8.0, 2e6))]


def test_injected_aliens_are_off_centre_with_their_true_mask(patterns):
    sp = patterns[0]
    before = sp.intensity.copy()
    ap = inject_aliens(sp.intensity, sp.expected, n=4, seed=3, kinds=("streak",))
    np.testing.assert_array_equal(sp.intensity, before)  # the input is not modified
    assert len(ap.aliens) == 4 and {a["kind"] for a in ap.aliens} == {"streak"}
    assert ap.mask.dtype == np.uint8 and ap.mask.sum() == sum(a["voxels"] for a in ap.aliens)
    added = ap.intensity - sp.intensity
    assert (added[ap.mask == 0] == 0).all() and added[ap.mask == 1].sum() > 0
    # off the centro-symmetric position: nothing of an alien at its mirror about the peak
    p = np.array(ap.peak)
    idx = np.argwhere(ap.mask)
    mir = 2 * p - idx
    assert not ap.mask[tuple(mir.T)].any()
    # realistic intensities: between 1e-3 and 0.3 of the Bragg peak, on signal below 1 % of it
    peaks = [a["peak_counts"] / sp.expected.max() for a in ap.aliens]
    assert min(peaks) >= 1e-3 and max(peaks) <= 0.3
    assert sp.expected[ap.mask == 1].max() < 0.01 * sp.expected.max()
    spots = inject_aliens(sp.intensity, sp.expected, n=2, seed=4, kinds=("spot",))
    assert ndimage.label(spots.mask, structure=np.ones((3, 3, 3)))[1] == 2


@pytest.mark.parametrize("case", [0, 1, 2])
def test_dbscan_finds_planted_streaks_and_spots(patterns, case):
    sp = patterns[case]
    ap = inject_aliens(sp.intensity, sp.expected, n=3, seed=10 + case, intensity_range=(3e-3, 0.3))
    res = find_aliens(ap.intensity)
    found, truth = res.mask.astype(bool), ap.mask.astype(bool)
    tp = int((found & truth).sum())
    assert tp >= 0.9 * truth.sum(), (tp, truth.sum(), [c.describe() for c in res.clusters if c.proposed])
    assert tp >= 0.9 * found.sum()
    # every alien is caught, and nothing of the Bragg peak and its fringes (> 1 % of the max) is masked
    lab, n = ndimage.label(truth, structure=np.ones((3, 3, 3)))
    assert all(found[lab == k].mean() > 0.5 for k in range(1, n + 1))
    assert not (found & (sp.expected >= 0.01 * sp.expected.max())).any()
    # the labels array holds one label per scored cluster; the Bragg peak's cluster is not one of them
    assert set(np.unique(res.labels)) - {0} == {c.label for c in res.clusters}
    assert res.labels[res.peak] == 0
    for c in res.clusters:
        if c.proposed:
            assert c.asymmetry >= 1.2 and c.prominence >= 0.7 and c.size >= 3
            assert c.contrast >= DEFAULTS["contrast_threshold"]


def test_clean_patterns_are_left_untouched(patterns):
    for sp in patterns:
        res = find_aliens(sp.intensity)
        assert res.mask.sum() == 0 and res.proposed == [], [c.describe() for c in res.clusters if c.proposed]


def test_accept_reject_and_the_threshold_baseline(patterns):
    sp = patterns[0]
    ap = inject_aliens(sp.intensity, sp.expected, n=2, seed=21)
    res = find_aliens(ap.intensity)
    assert len(res.proposed) == 2
    one = clusters_mask(res, res.proposed[:1], intensity=ap.intensity)
    assert 0 < one.sum() < res.mask.sum()
    assert clusters_mask(res, []).sum() == 0
    with pytest.raises(BCDIError, match="do not exist"):
        clusters_mask(res, [999])
    # the baseline masks every bright island outside the peak: the aliens and much crystal signal
    base = threshold_mask(ap.intensity).astype(bool)
    truth = ap.mask.astype(bool)
    assert (base & truth).sum() >= 0.5 * truth.sum() and (base & ~truth).sum() > (res.mask.astype(bool) & ~truth).sum()


def test_masked_voxels_are_ignored_and_bad_input_fails_in_one_line(patterns):
    sp = patterns[0]
    ap = inject_aliens(sp.intensity, sp.expected, n=1, seed=5, kinds=("spot",))
    res = find_aliens(ap.intensity, mask=ap.mask)  # the alien already masked: nothing left to find
    assert res.mask.sum() == 0
    for bad, kw, msg in (
        (np.zeros((8, 8, 8), np.float32), {}, "pattern is empty"),
        (sp.intensity, {"mask": np.zeros((64, 64, 8))}, "mask shape"),
        (sp.intensity[0], {}, "3D"),
        (sp.intensity, {"eps": 0.5}, "eps"),
        (sp.intensity, {"contrast_threshold": -1}, "contrast threshold"),
    ):
        with pytest.raises(BCDIError, match=msg) as err:
            find_aliens(bad, **kw)
        assert "\n" not in str(err.value)


def test_asymmetry_and_the_grid_graph():
    assert asymmetry(10.0, 10.0) == 0 and asymmetry(5.0, 0.0) == 2 and asymmetry(0.0, 0.0) == 0
    assert asymmetry(3.0, 1.0) == pytest.approx(1.0)
    coords = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1], [3, 3, 3]])
    g = neighbour_graph(coords, (4, 4, 4), 1.8).toarray()
    assert g[0, 1] == 1 and g[0, 2] == pytest.approx(np.sqrt(3)) and g[1, 2] == pytest.approx(np.sqrt(2))
    assert not g[3, :3].any() and np.allclose(g, g.T)


def test_friedel_contrast_is_the_jump_of_the_log_friedel_ratio_at_the_edge():
    """An added spot: E jumps from 0 around it to log10(1 + A/B) inside. A one-sided plateau: E is as high
    around its core as inside it, so the contrast is 0 although the plateau has no partner at -q."""
    a = np.full((32, 32, 32), 100.0)
    a[20:23, 20:23, 20:23] += 1e4  # the spot, on a symmetric background
    core = np.argwhere(a > 1e3)
    assert friedel_contrast(a, core, (16, 16, 16)) == pytest.approx(np.log10(10101 / 101), abs=1e-6)
    b = np.full((32, 32, 32), 10.0)
    b[18:27, 18:27, 18:27] = 1e3  # a broad one-sided region: its central 3^3 voxels as the core
    assert friedel_contrast(b, np.argwhere(np.pad(np.ones((3, 3, 3)), ((21, 8),) * 3) > 0), (16, 16, 16)) == 0
    # a masked mirror leaves no valid core voxel
    m = np.zeros(a.shape, np.uint8)
    m[10:13, 10:13, 10:13] = 1
    assert np.isnan(friedel_contrast(a, core, (16, 16, 16), mask=m))


def test_satellites_of_a_strained_interface_are_not_proposed_but_a_spot_is():
    """A thin strained layer (the "interface" field, 7.6 rad) diffracts into satellites on one side of the
    peak, as asymmetric and prominent as aliens (held-out seed 137 of benchmarks/aliens_quality.py): their
    Friedel contrast is low, so they are not proposed; spots planted on the same pattern still are."""
    from napari_bcdi_dl.core.simulate import simulate_pattern

    sp = simulate_pattern(64, seed=137, shape="random", field="interface", phase_range=7.6, oversampling=3.4,
                          max_counts=1.4e6, compute_phase=False)
    res = find_aliens(sp.intensity)
    assert res.proposed == [] and res.mask.sum() == 0
    # the satellites pass every other test: only the Friedel contrast turns them down
    t = DEFAULTS
    protect = np.log10(1 + sp.intensity.max()) - t["protect_decades"]
    satellites = [c for c in res.clusters
                  if c.asymmetry >= t["asymmetry_threshold"] and c.size >= t["min_size"]
                  and c.prominence >= t["prominence_threshold"] and c.level < protect]
    assert len(satellites) >= 3 and sum(c.size for c in satellites) > 1000
    assert all(c.contrast < t["contrast_threshold"] for c in satellites)
    ap = inject_aliens(sp.intensity, sp.expected, n=2, seed=5, kinds=("spot",), intensity_range=(3e-3, 0.1))
    found, truth = find_aliens(ap.intensity).mask.astype(bool), ap.mask.astype(bool)
    assert (found & truth).sum() >= 0.9 * truth.sum() and (found & ~truth).sum() <= 0.1 * truth.sum()
    assert not (found & (sp.expected >= 0.01 * sp.expected.max())).any()
