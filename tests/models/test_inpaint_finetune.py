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
