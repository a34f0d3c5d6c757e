"""The real-space inpainting benchmark (``benchmarks/inpaint_real_space.py``, issue 21): its oracle path, and
the shipped model on gaps at the array border and wider than its 32³ window."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "inpaint_real_space.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("inpaint_real_space", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def crystal(bench):
    return bench.zero_phase_crystal(0)


@pytest.fixture(scope="module")
def shipped():
    from napari_bcdi_dl.models import registry

    return registry.load_model("inpaint")


def test_oracle_path_gives_zero_strain_without_a_gap(bench, crystal):
    obj = bench.oracle_object(crystal)
    assert np.allclose(obj, crystal.obj, atol=1e-4 * np.abs(crystal.obj).max())
    err = bench.oracle_case(crystal, None, "masked")
    assert err["phase"] < 1e-6 and err["displacement"] < 1e-4 and err["strain"] < 1e-4  # rounding only
    # the exact amplitude written back into a gap is no gap at all
    peak = np.unravel_index(int(np.argmax(crystal.expected)), crystal.expected.shape)
    m = bench.cross_mask(crystal.expected.shape, peak, 6)
    exact = bench.real_space_errors(bench.oracle_object(crystal, m, crystal.expected), crystal.support)
    assert exact["strain"] < 1e-4


def test_oracle_path_sees_the_gap_and_a_fill_lowers_it(bench, crystal):
    peak = np.unravel_index(int(np.argmax(crystal.expected)), crystal.expected.shape)
    m = bench.cross_mask(crystal.expected.shape, peak, 6, "through")
    assert m[:, peak[1] + 1, :].all() and m[:, :, peak[2] + 1].all() and m.sum() < m.size / 4
    masked = bench.oracle_case(crystal, m, "masked")
    linear = bench.oracle_case(crystal, m, "linear")
    assert masked["strain"] > 1.0 and masked["phase"] > 0.1  # 10⁻⁴ strain, rad: a real artefact
    assert linear["strain"] < 0.8 * masked["strain"]
    beside = bench.cross_mask(crystal.expected.shape, peak, 6, "beside")
    assert not beside[peak] and beside[:, peak[1] + 3, :].all() and beside[:, :, peak[2] - 3].all()


@pytest.mark.parametrize("slabs", [
    [(1, 0, 6), (2, 58, 6)],       # a cross at two array borders
    [(1, 12, 40)],                 # a band wider than the 32³ window
    [(1, 10, 44), (2, 12, 40)],    # a cross of two bands wider than the window
], ids=["border", "wider-than-window", "wide-cross"])
def test_dl_fill_of_border_and_wide_gaps(bench, crystal, shipped, slabs):
    """The shipped model fills them all (no fallback); 32 frames keep it to one window along the frames."""
    from napari_bcdi_dl.core.simulate import gap_mask

    counts = crystal.counts[16:48]
    m = gap_mask(counts.shape, slabs).astype(bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every gap voxel reached by a window: no fallback warning
        out = bench.fill(counts, m, "dl", shipped)
    assert out.shape == counts.shape and np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_array_equal(out[~m], counts[~m])
    assert out[m].max() > 0  # the gap was filled, not left at 0
    # in the oracle path too: the filled gap gives finite errors in real space
    full = np.zeros(crystal.counts.shape, bool)
    full[16:48] = m
    filled = crystal.counts.copy()
    filled[16:48] = out
    err = bench.real_space_errors(bench.oracle_object(crystal, full, filled), crystal.support)
    assert all(np.isfinite(v) for v in err.values())
