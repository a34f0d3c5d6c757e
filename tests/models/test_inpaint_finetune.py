"""Fine-tuning on the user's own pattern (``models.finetune``)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.models.finetune import crop_positions, finetune

from ._inpaint_helpers import tiny_inpainter


@pytest.fixture
def gapped(real_pattern):
    m = np.zeros(real_pattern.shape, np.uint8)
    m[:, 30:36, :] = 1
    m[:, :, 30:34] = 1
    return real_pattern, m


def test_crop_positions_have_signal_and_are_mostly_measured(gapped):
    data, m = gapped
    pos, peak = crop_positions(data, m)
    assert len(pos) > 10 and pos.shape[1] == 3
    for o, p in zip(pos[::7], peak[::7]):
        sl = tuple(slice(a, a + 32) for a in o)
        assert m[sl].mean() <= 0.5
        assert np.where(m[sl] == 1, 0, data[sl]).max() == pytest.approx(p)
        assert p >= 20


@pytest.mark.slow
def test_finetuning_improves_the_loss_on_the_patterns_own_crops(gapped):
    data, m = gapped
    before = data.copy()
    model = tiny_inpainter(widths=(4, 8, 16))
    res = finetune(data, m, model=model, steps=25, batch=4, learning_rate=3e-3, seed=0)
    assert res.model is model and res.steps == 25 and res.n_positions > 10
    assert np.isfinite(res.loss_before) and res.loss_after < res.loss_before
    np.testing.assert_array_equal(data, before)


def test_finetune_errors(gapped):
    data, m = gapped
    with pytest.raises(BCDIError, match="smaller"):
        finetune(data[:20], m[:20], model=tiny_inpainter(), steps=1)
    with pytest.raises(BCDIError, match="no 32³ crop"):
        finetune(np.zeros_like(data) + 1, m, model=tiny_inpainter(), steps=1)
    with pytest.raises(BCDIError, match="empty"):
        finetune(data, np.zeros_like(m), model=tiny_inpainter(), steps=1)


def test_context_crops_see_their_region_with_both_gaps_invalid(gapped):
    """The context model's training crops: the window is the centre of its 64³ region, and the region's
    block means are invalid where the real gap, the artificial gap or the array's outside lies."""
    from napari_bcdi_dl.models.finetune import _batch, _sample

    data, m = gapped
    pos, peak = crop_positions(data, m)
    w = np.full(len(pos), 1 / len(pos))
    dp, mp = np.pad(data, 16, constant_values=np.nan), np.pad(m, 16, constant_values=1)
    for seed in range(6):
        noisy, truth, inmask, score, ctx = _sample(dp, mp, pos, w, 32, np.random.default_rng(seed),
                                                   thin=False, context=True)
        assert noisy.shape == ctx.shape == (32, 32, 32) and np.isfinite(noisy).all()
        np.testing.assert_array_equal(noisy, truth)  # no thinning: the crop itself
        bad = np.isnan(ctx)
        centre = bad[8:24, 8:24, 8:24].repeat(2, 0).repeat(2, 1).repeat(2, 2)
        assert centre[inmask].all() and score.sum() >= 8 and inmask[score].all()
        halved = noisy.reshape(16, 2, 16, 2, 16, 2).mean(axis=(1, 3, 5))  # the window, seen coarsely
        ok = ~bad[8:24, 8:24, 8:24]
        np.testing.assert_allclose(ctx[8:24, 8:24, 8:24][ok], halved[ok], rtol=1e-5)
        assert ok.any() and (~bad).sum() > ok.sum()  # and the surroundings beyond it
        (x, xc), y = _batch([(noisy, truth, inmask, score, ctx)])
        assert x.shape == xc.shape == (1, 32, 32, 32, 2) and np.isfinite(xc).all()


@pytest.mark.slow
def test_finetuning_a_context_model(gapped):
    data, m = gapped
    before = data.copy()
    model = tiny_inpainter(widths=(4, 8, 16), context=True)
    res = finetune(data, m, model=model, steps=25, batch=4, learning_rate=3e-3, seed=0)
    assert res.steps == 25 and np.isfinite(res.loss_before) and res.loss_after < res.loss_before
    np.testing.assert_array_equal(data, before)
