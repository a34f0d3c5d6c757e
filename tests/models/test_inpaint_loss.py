"""The inpainting loss (``models.inpaint_loss``): masked, composite, per sample, keras.ops only."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.models._keras import keras
from napari_bcdi_dl.models.inpaint_loss import (
    amplitude_l2,
    bright_l1,
    gradient_l1,
    inpaint_loss,
    make_inpaint_loss,
    masked_l1,
    sample_weight,
    ssim_term,
)


def _np(x):
    return np.asarray(keras().ops.convert_to_numpy(x))


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    t = rng.random((3, 16, 16, 16, 1)).astype(np.float32)
    m = np.zeros_like(t)
    m[:, :, 6:10] = 1
    return t, m, np.concatenate([t, m], axis=-1)


def test_zero_when_the_gap_is_right_whatever_outside(case):
    t, m, y = case
    pred = np.where(m == 1, t, 123.0).astype(np.float32)  # garbage outside the gap is never used
    for fn in (masked_l1, gradient_l1):
        np.testing.assert_allclose(_np(fn(y, pred)), 0, atol=1e-6)
    np.testing.assert_allclose(_np(ssim_term(y, pred)), 1, atol=1e-5)
    np.testing.assert_allclose(_np(inpaint_loss(y, pred)), 0, atol=1e-5)


def test_per_sample_and_masked_l1_value(case):
    t, m, y = case
    pred = t + 0.1 * m * np.array([1, 2, 3], np.float32)[:, None, None, None, None]
    loss = _np(masked_l1(y, pred))
    assert loss.shape == (3,)
    np.testing.assert_allclose(loss, [0.1, 0.2, 0.3], rtol=1e-4)


def test_each_term_grows_with_the_error(case):
    t, m, y = case
    rng = np.random.default_rng(1)
    small = t + 0.05 * m * rng.standard_normal(t.shape).astype(np.float32)
    big = t + 0.3 * m * rng.standard_normal(t.shape).astype(np.float32)
    for fn in (masked_l1, gradient_l1, inpaint_loss):
        assert (_np(fn(y, big)) > _np(fn(y, small))).all()
    assert (_np(ssim_term(y, big)) < _np(ssim_term(y, small))).all()


def test_gradient_term_sees_a_seam_that_l1_ranks_the_same():
    """A constant offset in the gap and a noisy fill with the same L1: the offset is smooth inside the
    gap but jumps at its border; the noise is rough everywhere. The gradient term tells them apart."""
    t = np.zeros((1, 16, 16, 16, 1), np.float32)
    m = np.zeros_like(t)
    m[:, :, 6:10] = 1
    y = np.concatenate([t, m], -1)
    offset = t + 0.2 * m
    rng = np.random.default_rng(0)
    noise = t + 0.2 * m * np.sign(rng.standard_normal(t.shape)).astype(np.float32)
    np.testing.assert_allclose(_np(masked_l1(y, offset)), _np(masked_l1(y, noise)), rtol=1e-5)
    assert _np(gradient_l1(y, noise))[0] > 2 * _np(gradient_l1(y, offset))[0]
    assert _np(gradient_l1(y, offset))[0] > 0  # the seam costs something


def test_empty_gap_is_finite_and_2d_works():
    y = np.zeros((2, 8, 8, 2), np.float32)
    pred = np.ones((2, 8, 8, 1), np.float32)
    assert np.isfinite(_np(make_inpaint_loss()(y, pred))).all()


def test_trains_a_keras_model():
    k = keras()
    inp = k.Input((8, 8, 8, 2))
    out = k.layers.Conv3D(1, 3, padding="same")(inp)
    model = k.Model(inp, out)
    model.compile(optimizer=k.optimizers.Adam(1e-2), loss=inpaint_loss)
    rng = np.random.default_rng(0)
    x = rng.random((4, 8, 8, 8, 2)).astype(np.float32)
    y = np.concatenate([x[..., :1] * 0.5, (x[..., 1:] > 0.5).astype(np.float32)], -1)
    first = float(model.train_on_batch(x, y))
    for _ in range(20):
        last = float(model.train_on_batch(x, y))
    assert np.isfinite(first) and last < first


def test_a_third_channel_weights_each_sample(case):
    """``y_true[..., 2]`` (a per-sample constant) multiplies that sample's loss; all ones = no channel."""
    t, m, y = case
    pred = np.where(m == 1, t + 0.1, t).astype(np.float32)
    pred[1] += 0.2
    plain = _np(inpaint_loss(y, pred))
    w = np.array([0.5, 2.0, 1.0], np.float32)
    yw = np.concatenate([y, np.broadcast_to(w[:, None, None, None, None], t.shape)], axis=-1)
    np.testing.assert_allclose(_np(sample_weight(yw)), w, rtol=1e-6)
    np.testing.assert_allclose(_np(inpaint_loss(yw, pred)), plain * w, rtol=1e-5)
    ones = np.concatenate([y, np.ones_like(t)], axis=-1)
    np.testing.assert_allclose(_np(inpaint_loss(ones, pred)), plain, rtol=1e-6)
    assert sample_weight(y) == 1.0


def test_a_model_trains_on_targets_with_and_without_the_weight_channel(case):
    """Keras retraces the step with the channel count unknown once both kinds of target were seen."""
    t, m, y = case
    x = np.concatenate([np.where(m == 1, 0, t), m], axis=-1).astype(np.float32)
    yw = np.concatenate([y, np.full_like(t, 2.0)], axis=-1)
    model = keras().Sequential([keras().Input(x.shape[1:]), keras().layers.Conv3D(1, 3, padding="same")])
    model.compile(optimizer=keras().optimizers.Adam(1e-3), loss=inpaint_loss)
    losses = [float(model.train_on_batch(x, target)) for target in (y, yw, y, yw)]
    assert np.all(np.isfinite(losses))


def test_bright_term_counts_an_error_beside_the_peak_more_than_the_same_error_in_the_faint_tail():
    """The same L1 (one voxel off by 0.2): plain L1 cannot tell where it is, the bright term can; a right
    fill scores zero; the term enters the loss only when asked for."""
    t = np.full((2, 16, 16, 16, 1), 0.2, np.float32)
    t[:, 8, 8, 8] = 1.0  # the brightest voxel of the window
    m = np.zeros_like(t)
    m[:, :, 6:10] = 1
    y = np.concatenate([t, m], axis=-1)
    pred = t.copy()
    pred[0, 8, 8, 8] += 0.2  # sample 0: error on the bright voxel
    pred[1, 2, 8, 8] += 0.2  # sample 1: the same error on a faint one
    l1, bright = _np(masked_l1(y, pred)), _np(bright_l1(y, pred))
    np.testing.assert_allclose(l1[0], l1[1], rtol=1e-5)
    assert bright[0] > 50 * bright[1]
    np.testing.assert_allclose(_np(bright_l1(y, t)), 0, atol=1e-7)
    plain, with_bright = _np(make_inpaint_loss()(y, pred)), _np(make_inpaint_loss(bright_weight=2.0)(y, pred))
    np.testing.assert_allclose(with_bright - plain, 2.0 * bright, rtol=1e-4, atol=1e-7)


def test_amplitude_term_costs_a_fill_four_times_too_bright_as_much_as_a_dark_one():
    """In a window spanning 14 in log(1 + I) (a peak of ~10⁶ counts), a gap voxel at 0.9 of the range holds
    ~1/4 of the peak's amplitude²; a fill 4× too bright there is +log(4)/14 in the normalised scale: plain
    L1 calls it 9× smaller than a dark fill, the amplitude term (what a reconstruction sees) calls them
    equal; a right fill scores zero, and the term enters the loss only when asked for."""
    t = np.full((3, 16, 16, 16, 1), 0.1, np.float32)
    t[:, 8, 2, 8] = 1.0  # the peak, outside the gap
    t[:, 8, 8, 8] = 0.9  # a bright voxel inside the gap
    m = np.zeros_like(t)
    m[:, :, 6:10] = 1
    y = np.concatenate([t, m], axis=-1)
    pred = t.copy()
    pred[0, 8, 8, 8] += np.log(4.0) / 14.0  # 4× the true intensity
    pred[1, 8, 8, 8] = 0.0  # no photons
    l1, amp = _np(masked_l1(y, pred)), _np(amplitude_l2(y, pred))
    assert l1[1] > 8 * l1[0]
    np.testing.assert_allclose(amp[0], amp[1], rtol=0.02)
    assert amp[0] > 0.1 and amp[2] == pytest.approx(0, abs=1e-7)
    plain, with_amp = _np(make_inpaint_loss()(y, pred)), _np(make_inpaint_loss(amplitude_weight=0.5)(y, pred))
    np.testing.assert_allclose(with_amp - plain, 0.5 * amp, rtol=1e-4, atol=1e-7)
