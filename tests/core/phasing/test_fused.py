"""The fused, threaded element-wise paths of the numpy engine give the iterates of plain ufuncs.

The blocked numpy path is bit-identical to the plain sequence; the compiled loops (``_kernels.c``) agree to
float32 rounding (their ``|psi|`` is ``sqrtf(re² + im²)``, numpy's a scaled hypot).
"""

import numpy as np
import pytest

from napari_bcdi_dl.core.phasing import _fused
from napari_bcdi_dl.core.phasing.operators import Engine, prepare_data
from napari_bcdi_dl.core.phasing.support import autocorrelation_support_native

SEQUENCES = [["ER"] * 3, ["HIO"] * 3, ["RAAR"] * 3, ["HIO", "HIO", "ER", "RAAR", "HIO"]]
needs_kernels = pytest.mark.skipif(_fused._kernels is None, reason="the compiled loops are not built here")


def _pattern(n: int = 64, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obj = np.zeros((n,) * 3, np.complex64)
    s = slice(n // 2 - 8, n // 2 + 8)
    obj[s, s, s] = np.exp(1j * rng.random((16, 16, 16)))
    i = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))) ** 2
    mask = np.zeros(i.shape, np.uint8)
    mask[:, n // 2 + 3 : n // 2 + 6, :] = 1  # a gap: masked voxels
    return rng.poisson(i * 1e5 / i.max()).astype(np.float32), mask


def _engines(monkeypatch, compiled: bool) -> tuple[Engine, Engine]:
    monkeypatch.setattr(_fused, "BLOCK", 1 << 12)  # many blocks
    monkeypatch.setattr(_fused, "MIN_THREADED_SIZE", 1)  # threaded even at 64³
    monkeypatch.setenv(_fused.ENV_VAR, "1" if compiled else "0")
    intensity, mask = _pattern()
    data = prepare_data(intensity, mask, seed=1, backend="numpy")
    assert data.fixed_idx.size > 0
    sup = autocorrelation_support_native(data.be, data.intensity_native(), 0.1)
    rng = np.random.default_rng(0)
    start = (rng.standard_normal(data.shape) + 1j * rng.standard_normal(data.shape)).astype(np.complex64) * sup
    fused, plain = Engine(data, start.copy(), sup), Engine(data, start.copy(), sup)
    plain._plan = None
    assert fused._plan is not None and fused._plan.compiled is compiled
    assert len(fused._plan.parts) == len(fused._plan.ranges) == _fused.n_threads()
    return fused, plain


def _run(fused: Engine, plain: Engine, sequence: list[str], check) -> None:
    for k, algo in enumerate(sequence):
        if k == 2:  # a support change in the middle invalidates the fused "previous" share
            for e in (fused, plain):
                e.update_support(sigma=1.0, threshold=0.2)
        for e in (fused, plain):
            e.iterate(algo, 0.9)
        check(fused.obj, plain.obj)


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_blocked_numpy_matches_plain_bit_for_bit(monkeypatch, sequence):
    fused, plain = _engines(monkeypatch, compiled=False)

    def check(a, b):
        np.testing.assert_array_equal(a, b)
        # both kinds of block took part: constant coefficients (scalar) and mixed ones (the array)
        assert {k is None for k in fused._c_fused[0].consts} == {True, False}

    _run(fused, plain, sequence, check)
    # an LLK request takes the plain path and reports the same values
    assert fused.iterate("ER", want_llk=True) == plain.iterate("ER", want_llk=True)


@needs_kernels
@pytest.mark.parametrize("sequence", SEQUENCES)
def test_compiled_loops_match_plain_to_rounding(monkeypatch, sequence):
    fused, plain = _engines(monkeypatch, compiled=True)

    def check(a, b):
        # float32 rounding of |psi| (1 ulp), spread over the array by the FFTs
        assert np.abs(a - b).max() <= 1e-5 * float(np.abs(b).max())

    _run(fused, plain, sequence, check)
    # the compiled path keeps no coefficient arrays
    assert fused._c_pm is None and fused._c_prev is None
    llk_f, llk_p = fused.iterate("ER", want_llk=True), plain.iterate("ER", want_llk=True)
    np.testing.assert_allclose(llk_f, llk_p, rtol=1e-5)


@needs_kernels
def test_compiled_modulus_keeps_fixed_voxels_and_checks_its_arguments():
    from napari_bcdi_dl.core.phasing import _kernels

    rng = np.random.default_rng(1)
    n = 1000
    psi = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    amp = rng.random(n).astype(np.float32)
    fixed = rng.random(n) < 0.2
    amp[fixed] = 0  # as prepare_data leaves it
    out = psi.copy()
    _kernels.modulus(out, amp, fixed, 1e-20, 0, n)
    np.testing.assert_array_equal(out[fixed], psi[fixed])
    np.testing.assert_allclose(np.abs(out[~fixed]), amp[~fixed], rtol=1e-6)
    np.testing.assert_allclose(np.angle(out[~fixed]), np.angle(psi[~fixed]), atol=1e-6)
    with pytest.raises(ValueError, match="amp has"):
        _kernels.modulus(out, amp[:-1], fixed, 1e-20, 0, n)
    with pytest.raises(ValueError, match="outside"):
        _kernels.modulus(out, amp, fixed, 1e-20, 0, n + 1)
    with pytest.raises(TypeError):
        _kernels.modulus(out.copy().tobytes(), amp, fixed, 1e-20, 0, n)  # read-only buffer


def test_engine_threads_are_capped_by_the_environment(monkeypatch):
    """``BCDI_DL_THREADS`` (set by the batch in each Dask worker) caps the element-wise threads and the FFT
    workers of large arrays; small arrays stay on one thread; a bad value is ignored."""
    import os

    from napari_bcdi_dl.core.phasing import _fused
    from napari_bcdi_dl.core.phasing.backend import THREADED_FFT_MIN_SIZE, _workers

    cores = len(os.sched_getaffinity(0))
    big, small = np.zeros(THREADED_FFT_MIN_SIZE, np.complex64), np.zeros(8, np.complex64)
    monkeypatch.delenv(_fused.THREADS_ENV, raising=False)
    assert _fused.n_threads() == cores and _workers(big) == cores and _workers(small) == 1
    monkeypatch.setenv(_fused.THREADS_ENV, "1")
    assert _fused.n_threads() == 1 and _workers(big) == 1
    monkeypatch.setenv(_fused.THREADS_ENV, "many")
    assert _fused.n_threads() == cores
