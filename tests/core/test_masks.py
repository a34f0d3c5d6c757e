"""Detector presets, gap detection from data, gap runs, dilation, union and validation."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core import masks
from napari_bcdi_dl.core.errors import BCDIError


def _gaussian_pattern(shape=(32, 64, 64), peak=1e5, width=8.0, seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    r2 = sum(g.astype(float) ** 2 for g in grids)
    return rng.poisson(peak * np.exp(-r2 / (2 * width**2))).astype(np.float32)


# ------------------------------------------------------------------------------------------- presets
def test_presets_exist_with_contract_fields():
    for name in ("maxipix", "eiger2m", "eiger500k"):
        p = masks.PRESETS[name]
        assert p.name == name
        assert len(p.shape) == 2
        for a, b in p.gap_rows + p.gap_cols:
            assert 0 < a < b < max(p.shape)


def test_maxipix_cross_rows_and_cols_255_to_260():
    m = masks.preset_mask("maxipix", (3, 516, 516))
    assert m.shape == (3, 516, 516) and m.dtype == np.uint8
    rows = np.flatnonzero(m[0].all(axis=1))
    cols = np.flatnonzero(m[0].all(axis=0))
    assert rows.tolist() == list(range(255, 261))
    assert cols.tolist() == list(range(255, 261))
    assert m[0].sum() == 2 * 6 * 516 - 36
    assert np.array_equal(m[0], m[2])


def test_preset_through_roi_offset():
    m = masks.preset_mask("mpx1x4", (4, 64, 48), roi_offset=(230, 240))  # BLISS alias
    assert np.flatnonzero(m[0].all(axis=1)).tolist() == list(range(25, 31))
    assert np.flatnonzero(m[0].all(axis=0)).tolist() == list(range(15, 21))
    away = masks.preset_mask("maxipix", (2, 64, 64), roi_offset=(0, 0))
    assert away.sum() == 0


def test_preset_roi_outside_detector_and_unknown_name():
    with pytest.raises(BCDIError, match="do not fit"):
        masks.preset_mask("maxipix", (4, 64, 64), roi_offset=(500, 0))
    with pytest.raises(BCDIError, match="do not fit"):
        masks.preset_mask("maxipix", (4, 64, 64), roi_offset=(-1, 0))
    with pytest.raises(BCDIError, match="unknown detector preset"):
        masks.preset_mask("pilatus", (4, 64, 64))


def test_eiger_presets_geometry():
    e2m = masks.get_preset("eiger2M")
    assert e2m.shape == (2164, 1030)
    assert (511, 552) in e2m.gap_rows and (513, 517) in e2m.gap_cols
    e4 = masks.PRESETS["eiger2_4m"]
    # 4 x 2 modules of 512 x 1028 separated by 38 rows / 12 columns (pyFAI Eiger2)
    assert e4.gap_rows == ((512, 550), (1062, 1100), (1612, 1650))
    assert e4.gap_cols == ((1028, 1040),)
    live_rows = e4.shape[0] - sum(b - a for a, b in e4.gap_rows)
    assert live_rows == 4 * 512
    full = e4.mask2d()
    assert full.shape == (2162, 2068)
    m = masks.preset_mask("eiger500k", (2, 20, 20), roi_offset=(250, 505))
    assert np.flatnonzero(m[0].all(axis=1)).tolist() == [5, 6, 7, 8]
    assert np.flatnonzero(m[0].all(axis=0)).tolist() == [8, 9, 10, 11]


def test_preset_2d_shape():
    m = masks.preset_mask("maxipix", (516, 516))
    assert m.shape == (516, 516)


# ------------------------------------------------------------------------------------------ detection
def test_detect_gaps_cross_through_the_peak():
    data = _gaussian_pattern()
    truth = np.zeros(data.shape, np.uint8)
    truth[:, 30:36, :] = 1
    truth[:, :, 27:31] = 1
    gapped = np.where(truth == 1, 0, data)
    found = masks.detect_gaps(gapped)
    assert found.dtype == np.uint8
    assert np.array_equal(found, truth)
    assert np.array_equal(gapped, np.where(truth == 1, 0, data))  # input untouched


def test_detect_gaps_on_real_pattern(real_pattern):
    assert masks.detect_gaps(real_pattern).sum() == 0  # no false positive on measured data
    truth = np.zeros(real_pattern.shape, np.uint8)
    truth[:, 29:35, :] = 1
    truth[:, :, 40:43] = 1
    found = masks.detect_gaps(np.where(truth == 1, 0, real_pattern))
    assert np.array_equal(found, truth)


def test_detect_gaps_ignores_dark_borders_and_sparse_regions():
    data = _gaussian_pattern(shape=(32, 64, 64), width=5.0)
    padded = np.zeros((32, 80, 80), np.float32)
    padded[:, 8:72, 8:72] = data  # fully dark border bands
    assert masks.detect_gaps(padded).sum() == 0
    weak = np.random.default_rng(3).poisson(0.05, size=(16, 64, 64)).astype(np.float32)
    assert masks.detect_gaps(weak).sum() == 0  # zeros everywhere, nothing predicts counts


def test_detect_gaps_border_option_and_dead_frames():
    data = _gaussian_pattern(shape=(32, 64, 64), width=20.0)
    data[:, :3, :] = 0
    assert masks.detect_gaps(data).sum() == 0
    found = masks.detect_gaps(data, border=True)
    assert np.flatnonzero(found[0].all(axis=1)).tolist() == [0, 1, 2]
    data = _gaussian_pattern(shape=(32, 64, 64), width=20.0)
    data[14] = 0
    assert masks.detect_gaps(data).sum() == 0
    found = masks.detect_gaps(data, axes=(0, 1, 2))
    assert np.flatnonzero(found.all(axis=(1, 2))).tolist() == [14]


def test_detect_gaps_rejects_bad_input():
    with pytest.raises(BCDIError):
        masks.detect_gaps(np.zeros((2, 2, 2, 2)))


# ---------------------------------------------------------------------------------------- gap runs
def test_gap_runs_cross_and_frames():
    m = np.zeros((20, 40, 40), np.uint8)
    m[:, 10:16, :] = 1
    m[:, :, 30:33] = 1
    m[5] = 1
    assert masks.gap_runs(m) == [(0, 5, 6), (1, 10, 16), (2, 30, 33)]
    assert masks.gap_runs(np.zeros((4, 4, 4))) == []


def test_gap_runs_mostly_masked_planes():
    m = np.zeros((10, 20, 20), np.uint8)
    m[:, 4:6, :15] = 1  # 75 % of each row plane
    assert masks.gap_runs(m) == [(1, 4, 6)]
    assert masks.gap_runs(m, min_fraction=0.9) == []


# ------------------------------------------------------------------------------------ dilate, union
def test_dilate_plane_and_axes():
    m = np.zeros((10, 20, 20), np.uint8)
    m[:, 9, :] = 1
    d = masks.dilate(m, 2)
    assert np.flatnonzero(d[0].all(axis=1)).tolist() == [7, 8, 9, 10, 11]
    assert m.sum() == 10 * 20  # input untouched
    p = np.zeros((10, 20, 20), np.uint8)
    p[5, 10, 10] = 1
    only_plane = masks.dilate(p, 1, axes=(1, 2))
    assert only_plane.sum() == 9 and only_plane[5].sum() == 9
    assert masks.dilate(p, 1).sum() == 27
    assert np.array_equal(masks.dilate(p, 0), p)
    with pytest.raises(BCDIError):
        masks.dilate(p, -1)


def test_union():
    a = np.zeros((3, 4, 4), np.uint8)
    b = np.zeros((3, 4, 4), bool)
    a[0, 0, 0] = 1
    b[1, 1, 1] = True
    u = masks.union(a, None, b)
    assert u.dtype == np.uint8 and u.sum() == 2
    with pytest.raises(BCDIError, match="shape"):
        masks.union(a, np.zeros((3, 4, 5)))
    with pytest.raises(BCDIError):
        masks.union()


# ------------------------------------------------------------------------------------------ validate
def test_validate_mask_accepts_and_copies():
    m = np.zeros((4, 5, 6), bool)
    m[1, 2, 3] = True
    out = masks.validate_mask(m, (4, 5, 6))
    assert out.dtype == np.uint8 and out.sum() == 1
    f = m.astype(np.float32)
    out2 = masks.validate_mask(f, (4, 5, 6))
    out2[0, 0, 0] = 1
    assert f[0, 0, 0] == 0  # a new array
    det = np.zeros((5, 6), np.uint8)
    det[2] = 1
    assert masks.validate_mask(det, (4, 5, 6)).sum() == 4 * 6  # 2D detector mask over every frame


@pytest.mark.parametrize(
    "mask, msg",
    [
        (np.zeros((4, 5, 7)), "does not match"),
        (np.full((4, 5, 6), 2), "not 0 or 1"),
        (np.full((4, 5, 6), 0.5), "not 0 or 1"),
        (np.full((4, 5, 6), np.nan), "not 0 or 1"),
        (np.ones((4, 5, 6)), "every voxel"),
        (np.array([["a"]]), "not numeric"),
    ],
)
def test_validate_mask_errors_are_one_line(mask, msg):
    with pytest.raises(BCDIError, match=msg) as exc:
        masks.validate_mask(mask, (4, 5, 6), where="layer 'gaps'")
    text = str(exc.value)
    assert "\n" not in text and "layer 'gaps'" in text


def test_validate_mask_empty_option():
    assert masks.validate_mask(np.zeros((2, 2, 2)), (2, 2, 2)).sum() == 0
    with pytest.raises(BCDIError, match="no voxel"):
        masks.validate_mask(np.zeros((2, 2, 2)), (2, 2, 2), allow_empty=False)
