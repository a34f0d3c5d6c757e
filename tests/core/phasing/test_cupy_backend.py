"""The CuPy phasing backend agrees with the numpy one: FFTs and filters, the LLK, ``refine`` and a recipe run.

Runs only where CuPy imports and sees a CUDA device (``backend.cupy_usable()``, the check behind
``backend="auto"``); elsewhere the module skips. On the GPU machine ``scripts/gpu_train_phase.sh`` runs it
(``docs/gpu-training.md``). Same data, same free voxels, same random start (drawn on the host) on both
backends: only float32 rounding differs (pocketfft vs cuFFT, summation orders), so a frozen-support
refinement agrees to ~1e-4, and runs whose support changes agree in quality, not voxel for voxel.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.core.phasing import get_backend, phase, refine, select_backend_name
from napari_bcdi_dl.core.phasing.backend import cupy_usable

from ._sim import calc_intensity, compare, simulate

pytest.importorskip("cupy")
if not cupy_usable():
    pytest.skip("CuPy is installed but sees no CUDA device", allow_module_level=True)

BACKENDS = ("numpy", "cupy")


@pytest.fixture(scope="module")
def case():
    """A 32³ low-strain faceted crystal, 1e5 photons at the peak, Poisson noise (``_sim.simulate``)."""
    return simulate(n=32, size=10, phase_amp=0.8, blur=0.5, max_counts=1e5, seed=0)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def test_auto_selects_cupy_on_a_gpu(monkeypatch):
    monkeypatch.delenv("BCDI_DL_BACKEND", raising=False)
    assert select_backend_name("auto") == "cupy"
    be = get_backend("auto")
    assert be.name == "cupy" and be.xp.__name__ == "cupy"
    monkeypatch.setenv("BCDI_DL_BACKEND", "numpy")
    assert select_backend_name("auto") == "numpy"


def test_ffts_and_filter_agree():
    rng = np.random.default_rng(0)
    host = (rng.standard_normal((64, 64, 64)) + 1j * rng.standard_normal((64, 64, 64))).astype(np.complex64)
    real = rng.random((48, 40, 36)).astype(np.float32)
    out = {}
    for name in BACKENDS:
        be = get_backend(name)
        f = be.fftn_(be.asarray(host.copy()))
        assert f.dtype == np.complex64
        back = be.ifftn_(f.copy())
        r = be.rfftn(be.asarray(real))
        out[name] = {
            "fft": be.to_numpy(f),
            "ifft": be.to_numpy(back),
            "irfft": be.to_numpy(be.irfftn(r, real.shape)),
            "gauss": be.to_numpy(be.gaussian_filter(be.asarray(real), 1.3)),
        }
    for key, tol in (("fft", 1e-5), ("ifft", 1e-5), ("irfft", 1e-5), ("gauss", 1e-5)):
        assert _rel(out["cupy"][key], out["numpy"][key]) < tol, key
    assert _rel(out["cupy"]["ifft"], host) < 1e-5


def test_llk_of_the_truth_agrees(case):
    data, obj, shape = case
    recs = {name: refine(data, obj, shape, n_iter=0, seed=3, backend=name) for name in BACKENDS}
    a, b = recs["numpy"], recs["cupy"]
    assert b.meta["backend"] == "cupy" and a.meta["backend"] == "numpy"
    assert np.isfinite(b.llk) and b.llk == pytest.approx(a.llk, rel=1e-4)
    assert b.llk_free is not None and b.llk_free == pytest.approx(a.llk_free, rel=1e-4)
    assert _rel(b.obj, a.obj) < 1e-5  # the same scaling to the data


def test_refine_agrees(case):
    data, obj, shape = case
    rng = np.random.default_rng(1)
    start = (obj * np.exp(0.3j * rng.standard_normal(obj.shape))).astype(np.complex64)
    # frozen support: the same iteration map on both, float rounding only
    frozen = {name: refine(data, start, shape, n_iter=60, support_period=0, backend=name) for name in BACKENDS}
    a, b = frozen["numpy"], frozen["cupy"]
    assert _rel(b.obj, a.obj) < 1e-3
    assert b.llk == pytest.approx(a.llk, rel=1e-3) and b.llk_free == pytest.approx(a.llk_free, rel=1e-3)
    assert [h["iteration"] for h in b.history] == [h["iteration"] for h in a.history]
    # border-only support updates (the DL pipeline's refinement): the same quality
    moving = {name: refine(data, start, shape, n_iter=100, backend=name) for name in BACKENDS}
    a, b = moving["numpy"], moving["cupy"]
    assert b.llk == pytest.approx(a.llk, rel=0.02)
    ca, cb = compare(obj, a.obj, shape), compare(obj, b.obj, shape)
    assert cb["error"] < ca["error"] + 0.02 and cb["phase_rmse"] < ca["phase_rmse"] + 0.02
    assert abs(int(b.support.sum()) - int(a.support.sum())) <= 0.05 * a.support.sum()


def test_recipe_run_agrees(case):
    data, obj, shape = case
    res = {name: phase(data, recipe="HIO**100, RAAR**100, ER**60", runs=1, seed=0, backend=name)
           for name in BACKENDS}
    a, b = res["numpy"].best, res["cupy"].best
    assert b.meta["backend"] == "cupy"
    assert np.all(np.isfinite(b.obj)) and b.obj.dtype == np.complex64
    # the same start and data: both solve this easy case, to the same quality
    ca, cb = compare(obj, a.obj, shape), compare(obj, b.obj, shape)
    assert ca["error"] < 0.2 and cb["error"] < 0.2, (ca, cb)
    assert cb["phase_rmse"] < ca["phase_rmse"] + 0.03
    assert b.llk == pytest.approx(a.llk, rel=0.15)  # two numpy variants (compiled loops on/off) differ by 3 %
    # the model intensity of the CuPy result fits the data as well as the numpy one's
    i_b = calc_intensity(b.obj)
    assert np.isfinite(i_b).all() and i_b.sum() == pytest.approx(data.sum(), rel=0.1)
