"""Full-volume inpainting (``models.inpaint``): encoding, windows, invariants and errors, with tiny models."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError, Cancelled
from napari_bcdi_dl.core.gap_fill import fill_baseline
from napari_bcdi_dl.models.inpaint import (
    decode_windows,
    encode_target,
    encode_windows,
    inpaint,
    window_fill,
)
from napari_bcdi_dl.models.inpaint_training import random_gap_mask

from ._inpaint_helpers import fringe_pattern, tiny_inpainter


@pytest.fixture(scope="module")
def model():
    return tiny_inpainter()


@pytest.fixture(scope="module")
def trained_like():
    """A tiny model whose correction is not zero (random output layer): predictions differ from linear."""
    m = tiny_inpainter(seed=3)
    w = m.get_weights()
    rng = np.random.default_rng(0)
    m.set_weights([x + rng.normal(0, 0.05, x.shape).astype(x.dtype) if x.ndim > 1 and x.shape[-1] == 1
                   and x.size < 16 else x for x in w])
    return m


@pytest.fixture
def noisy():
    return np.random.default_rng(5).poisson(fringe_pattern()).astype(np.float32)


def _cross(shape, w1=6, w2=4, c1=None, c2=None) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    c1 = shape[1] // 2 if c1 is None else c1
    c2 = shape[2] // 2 if c2 is None else c2
    m[:, c1 - w1 // 2:c1 - w1 // 2 + w1, :] = 1
    m[:, :, c2 - w2 // 2:c2 - w2 // 2 + w2] = 1
    return m


# --------------------------------------------------------------------------------------- encoding
def test_window_fill_is_the_linear_baseline_window_by_window():
    rng = np.random.default_rng(0)
    v = rng.random((12, 32, 32, 32)).astype(np.float32)
    m = np.stack([random_gap_mask(rng) for _ in range(12)])
    f = window_fill(v, m)
    for i in range(len(v)):
        ref = fill_baseline(v[i], m[i], "linear", log=False)
        np.testing.assert_allclose(f[i], ref, atol=1e-5)
        np.testing.assert_array_equal(f[i][m[i] == 0], v[i][m[i] == 0])


def test_encode_decode_round_trip_outside_the_gap(noisy):
    w = noisy[None, 8:40, 16:48, 16:48]
    m = _cross(w.shape[1:])[None]
    x, lo, scale = encode_windows(w, m)
    assert x.shape == (1, 32, 32, 32, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x[..., 1], m)
    valid = m == 0
    assert x[..., 0][valid].min() == pytest.approx(0) and x[..., 0][valid].max() == pytest.approx(1)
    back = decode_windows(x[..., :1], lo, scale)
    np.testing.assert_allclose(back[valid], np.log1p(w)[valid], rtol=1e-5, atol=1e-5)
    t = encode_target(w, lo, scale)
    np.testing.assert_allclose(t[valid], x[..., 0][valid], atol=1e-6)


def test_untrained_model_is_the_linear_fill(model, noisy):
    """The zero-initialised correction: an untrained model reproduces linear interpolation exactly,
    through the whole pipeline (windows, encoding, batches, stitching, mapping back to counts)."""
    m = np.zeros(noisy.shape, np.uint8)
    m[:, 29:35, :] = 1
    out = inpaint(noisy, m, model=model, step=8)
    ref = fill_baseline(noisy, m, "linear")
    g = m.astype(bool)
    np.testing.assert_allclose(out[g], ref[g], rtol=2e-4, atol=1e-3)


# ------------------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("method", ["dl", "linear", "cubic", "nearest", "idw"])
def test_voxels_outside_the_gap_are_unchanged(method, trained_like, noisy):
    m = _cross(noisy.shape, 6, 3)
    before = noisy.copy()
    out = inpaint(noisy, m, method=method, model=trained_like, step=8)
    np.testing.assert_array_equal(noisy, before)  # input untouched
    assert out.shape == noisy.shape and out.dtype == np.float32 and out is not noisy
    outside = m == 0
    assert np.array_equal(out[outside].view(np.uint32), noisy[outside].view(np.uint32)), "bit for bit"
    assert np.isfinite(out).all() and (out[m == 1] >= 0).all()


def test_integer_input_gives_float32_and_keeps_counts(trained_like):
    data = np.random.default_rng(1).poisson(fringe_pattern((40, 48, 48), 1e4)).astype(np.uint32)
    m = np.zeros(data.shape, np.uint8)
    m[:, :, 20:25] = 1
    out = inpaint(data, m, model=trained_like, step=8)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[m == 0], data[m == 0].astype(np.float32))


@pytest.mark.parametrize("where", ["border", "partial", "axis0", "unequal_cross"])
def test_gap_geometries(where, trained_like, noisy):
    m = np.zeros(noisy.shape, np.uint8)
    if where == "border":
        m[:, :, :5] = 1  # a gap touching the array border
    elif where == "partial":
        m[:, 30:34, :40] = 1  # a gap over part of its planes
    elif where == "axis0":
        m[20:23] = 1  # along the rocking axis
    else:
        m = _cross(noisy.shape, 12, 1)
    out = inpaint(noisy, m, model=trained_like, step=4)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[m == 0], noisy[m == 0])
    assert not np.array_equal(out[m == 1], noisy[m == 1])


def test_windows_out_of_reach_are_filled_by_a_baseline_with_a_warning(trained_like):
    data = np.random.default_rng(2).poisson(fringe_pattern((16, 48, 48))).astype(np.float32)
    m = np.zeros(data.shape, np.uint8)
    m[:, 20:24, :] = 1  # array thinner than a window along axis 0: no window fits
    with pytest.warns(UserWarning, match="out of reach"):
        out = inpaint(data, m, model=trained_like)
    ref = fill_baseline(data, m, "linear")
    np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_progress_counts_windows_and_cancel_stops(trained_like, noisy):
    m = _cross(noisy.shape)
    seen = []
    inpaint(noisy, m, model=trained_like, step=8, batch=4, progress=lambda d, t: seen.append((d, t)))
    total = seen[-1][1]
    assert seen[-1] == (total, total) and total > 4
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    token = threading.Event()

    def stop_early(done, total):
        if done >= 4:
            token.set()

    with pytest.raises(Cancelled):
        inpaint(noisy, m, model=trained_like, step=8, batch=4, progress=stop_early, cancel=token)


def test_step_one_and_overlap_average(trained_like, noisy):
    m = np.zeros(noisy.shape, np.uint8)
    m[:, 30:33, :] = 1
    a = inpaint(noisy[:, :, :36], m[:, :, :36], model=trained_like, step=1)
    b = inpaint(noisy[:, :, :36], m[:, :, :36], model=trained_like, step=4)
    g = m[:, :, :36] == 1
    assert np.corrcoef(np.log1p(a[g]), np.log1p(b[g]))[0, 1] > 0.99


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "mask, match",
    [
        (lambda s: np.zeros(s, np.uint8), "empty"),
        (lambda s: np.ones(s, np.uint8), "every voxel"),
        (lambda s: np.zeros((s[0], s[1], s[2] + 1), np.uint8), "shape"),
        (lambda s: np.full(s, 2, np.uint8), "0"),
    ],
    ids=["empty", "all-ones", "wrong-shape", "not-binary"],
)
@pytest.mark.parametrize("method", ["dl", "linear"])
def test_bad_masks_give_one_line_errors(mask, match, method, noisy, trained_like):
    with pytest.raises(BCDIError, match=match) as err:
        inpaint(noisy, mask(noisy.shape), method=method, model=trained_like)
    assert "\n" not in str(err.value)


def test_bad_arguments(noisy, trained_like):
    m = _cross(noisy.shape)
    with pytest.raises(BCDIError, match="unknown method"):
        inpaint(noisy, m, method="magic")
    with pytest.raises(BCDIError, match="step"):
        inpaint(noisy, m, step=0, model=trained_like)
    with pytest.raises(BCDIError, match="3D"):
        inpaint(noisy[0], m[0], model=trained_like)
    bad = noisy.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(BCDIError, match="NaN"):
        inpaint(bad, m, model=trained_like)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inpaint(noisy, m, model=trained_like, step=16)  # no warning when every gap voxel is reached
