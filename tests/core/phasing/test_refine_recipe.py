"""``core.phasing.refine`` with a recipe, named recipes, shared prepared data and the early stop."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.phasing import refine
from napari_bcdi_dl.core.phasing.operators import prepare_data
from napari_bcdi_dl.core.phasing.refine import REFINE_RECIPES, refine_steps, resolve_recipe
from napari_bcdi_dl.core.simulate import simulate_pattern


@pytest.fixture(scope="module")
def case():
    p = simulate_pattern(32, seed=4, phase_range=1.0 * np.pi, oversampling=3.0, max_counts=1e7)
    rng = np.random.default_rng(0)
    start = (p.obj * np.exp(0.4j * rng.standard_normal(p.obj.shape))).astype(np.complex64)
    return p, start


def test_named_and_written_recipes():
    assert resolve_recipe("PAPER") == REFINE_RECIPES["paper"] == "border=on, ER**400"
    steps = refine_steps("paper")
    assert [(s.algorithm, s.n, s.border_only) for s in steps] == [("ER", 400, True)]
    steps = refine_steps("HIO**20, ER**10")
    assert [(s.algorithm, s.n, s.border_only) for s in steps] == [("HIO", 20, False), ("ER", 10, False)]
    assert [(s.algorithm, s.n) for s in refine_steps(None, 7)] == [("ER", 7)]
    for bad in ("HIO**", "XX**3", " ", "sup=-1, ER**3"):
        with pytest.raises(BCDIError) as err:
            refine_steps(bad)
        assert "\n" not in str(err.value)


def test_recipe_refinement_runs_and_reports(case):
    p, start = case
    calls = []
    rec = refine(p.intensity, start, p.support, recipe="HIO**20, ER**20", llk_every=5, backend="numpy",
                 progress=lambda d, t: calls.append((d, t)))
    assert rec.meta["recipe"].endswith("HIO**20, ER**20") and rec.meta["iterations"] == 40
    assert calls[-1] == (40, 40) and not rec.meta["stopped_early"]
    assert rec.llk < rec.history[0]["llk"]


def test_early_stop_ends_the_final_er_and_shared_data_give_the_same_result(case):
    p, start = case
    near = p.obj.astype(np.complex64)  # a start at the solution, frozen support: the free LLK soon levels off
    full = refine(p.intensity, near, p.support, recipe="sup=off, ER**300", backend="numpy", early_stop=0)
    stopped = refine(p.intensity, near, p.support, recipe="sup=off, ER**300", backend="numpy", early_stop=30)
    assert stopped.meta["stopped_early"] and 30 < stopped.meta["iterations"] < 300
    assert stopped.llk_free <= full.llk_free * 1.01  # it stopped where the free LLK no longer improved
    data = prepare_data(p.intensity, None, seed=0, backend="numpy")
    shared = refine(None, near, p.support, recipe="sup=off, ER**300", data=data, early_stop=0)
    assert np.allclose(shared.obj, full.obj) and shared.llk_free == pytest.approx(full.llk_free)
