"""The fused, threaded element-wise path of the numpy engine gives the same iterates as plain ufuncs."""

import numpy as np
import pytest

from napari_bcdi_dl.core.phasing import _fused
from napari_bcdi_dl.core.phasing.operators import Engine, prepare_data
from napari_bcdi_dl.core.phasing.support import autocorrelation_support_native


def _pattern(n: int = 64, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obj = np.zeros((n,) * 3, np.complex64)
    s = slice(n // 2 - 8, n // 2 + 8)
    obj[s, s, s] = np.exp(1j * rng.random((16, 16, 16)))
    i = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))) ** 2
    mask = np.zeros(i.shape, np.uint8)
    mask[:, n // 2 + 3 : n // 2 + 6, :] = 1  # a gap: masked voxels
    return rng.poisson(i * 1e5 / i.max()).astype(np.float32), mask


@pytest.mark.parametrize("sequence", [["ER"] * 3, ["HIO"] * 3, ["RAAR"] * 3, ["HIO", "HIO", "ER", "RAAR", "HIO"]])
def test_fused_matches_plain(monkeypatch, sequence):
    monkeypatch.setattr(_fused, "BLOCK", 1 << 12)  # many blocks
    monkeypatch.setattr(_fused, "MIN_THREADED_SIZE", 1)  # threaded even at 64³
    intensity, mask = _pattern()
    data = prepare_data(intensity, mask, seed=1, backend="numpy")
    assert data.fixed_idx.size > 0
    sup = autocorrelation_support_native(data.be, data.intensity_native(), 0.1)
    rng = np.random.default_rng(0)
    start = (rng.standard_normal(data.shape) + 1j * rng.standard_normal(data.shape)).astype(np.complex64) * sup
    fused, plain = Engine(data, start.copy(), sup), Engine(data, start.copy(), sup)
    plain._plan = None
    assert fused._plan is not None and len(fused._plan.parts) == _fused.n_threads()
    for k, algo in enumerate(sequence):
        if k == 2:  # a support change in the middle invalidates the fused "previous" share
            for e in (fused, plain):
                e.update_support(sigma=1.0, threshold=0.2)
        for e in (fused, plain):
            e.iterate(algo, 0.9)
        np.testing.assert_array_equal(fused.obj, plain.obj)
        # both kinds of block took part: constant coefficients (scalar) and mixed ones (the array)
        kinds = {k is None for k in fused._c_consts[0]}
        assert kinds == {True, False}
    # an LLK request takes the plain path and reports the same values
    assert fused.iterate("ER", want_llk=True) == plain.iterate("ER", want_llk=True)
