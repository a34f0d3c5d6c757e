"""DL phasing of an inpainted pattern: the fill is the network's input and the gap stays free in the
refinement (``predict_and_refine(mask_prediction=False)``, what ``bcdi-dl run``, ``bcdi-dl phase`` on a
``bcdi-dl inpaint`` file and the DL phase dock do). A real case of ``benchmarks/inpaint_real_space.py --part
dl`` (crystal 1, a 6-px cross gap through the Bragg peak): this hand-over solves it, the gap zeroed does not."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core.metrics import compare, is_match
from napari_bcdi_dl.core.simulate import gap_mask, simulate_pattern


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(np.random.SeedSequence([2123, 1]))
    p = simulate_pattern(64, seed=rng, shape="winterbottom", phase_range=float(rng.uniform(0.5, 2.0)) * np.pi,
                         oversampling=3.0, max_counts=1e6, noise=True, workers=1)
    peak = np.unravel_index(int(np.argmax(p.expected)), p.expected.shape)
    w = 6
    mask = gap_mask(p.intensity.shape, [(1, int(peak[1]) + 1 - w // 2, w), (2, int(peak[2]) + 1 - w // 2, w)])
    zeroed = np.where(mask != 0, 0, p.intensity).astype(np.float32)
    from napari_bcdi_dl.models.inpaint import inpaint

    filled = inpaint(zeroed, mask != 0, method="dl", step=4)
    return p, mask, zeroed, filled


def test_filled_gap_is_the_network_input_and_free_in_the_refinement(case):
    from napari_bcdi_dl.models.dl_phasing import predict_and_refine

    p, mask, zeroed, filled = case
    _, rec_free = predict_and_refine(filled, mask, mask_prediction=False)
    _, rec_zero = predict_and_refine(zeroed, mask)
    free, zero = (compare(p.obj, r.obj, p.support, r.support) for r in (rec_free, rec_zero))
    assert is_match(free), free
    assert not is_match(zero) and free["error"] < zero["error"]


def test_inpaint_file_is_marked_and_phase_reads_the_mark(case, tmp_path):
    from napari_bcdi_dl.cli import main
    from napari_bcdi_dl.core.io import read

    _p, mask, zeroed, _ = case
    np.savez(tmp_path / "gappy.npz", data=zeroed, mask=mask)
    assert main(["inpaint", str(tmp_path / "gappy.npz"), "--method", "linear", "--out",
                 str(tmp_path / "filled.npz"), "--quiet"]) == 0
    loaded = read(tmp_path / "filled.npz")
    assert loaded.meta.get("inpainted") == "linear" and loaded.mask is not None and loaded.mask.any()
    assert read(tmp_path / "gappy.npz").meta.get("inpainted") is None
