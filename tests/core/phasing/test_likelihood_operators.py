"""Log-likelihood, free voxels, projections and the engine's invariants (real FFTs, small grids)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.phasing import free_mask, llk_free, llk_poisson, phase
from napari_bcdi_dl.core.phasing.operators import Engine, prepare_data, to_native

from ._sim import calc_intensity, simulate


def test_llk_poisson_matches_pynx_formula():
    obs = np.array([0.0, 0.05, 1.0, 10.0, 3.0], np.float32)
    calc = np.array([0.5, 0.2, 2.0, 8.0, 3.0], np.float32)
    terms = [0.5, 0.2, 2 - 1 + np.log(1 / 2), 8 - 10 + 10 * np.log(10 / 8), 0.0]
    assert llk_poisson(obs, calc) == pytest.approx(sum(terms) / 5)
    assert llk_poisson(obs, calc, n_support=2) == pytest.approx(sum(terms) / 3)
    mask = np.array([1, 0, 0, 0, 0], np.uint8)
    assert llk_poisson(obs, calc, mask) == pytest.approx(sum(terms[1:]) / 4)
    assert llk_free(obs, calc, np.array([0, 0, 1, 1, 0])) == pytest.approx((terms[2] + terms[3]) / 2)
    assert llk_free(obs, calc, np.zeros(5)) is None


def test_llk_of_poisson_noise_is_about_one_half():
    rng = np.random.default_rng(0)
    calc = np.full(200_000, 50.0)
    obs = rng.poisson(calc).astype(np.float32)
    assert llk_poisson(obs, calc) == pytest.approx(0.5, abs=0.02)


def test_free_mask_islands_fraction_and_exclusions():
    shape = (40, 40, 40)
    mask = np.zeros(shape, np.uint8)
    mask[:, 18:21, :] = 1
    f = free_mask(shape, mask, ratio=0.05, seed=3)
    assert f.dtype == np.uint8
    assert 0.025 < f.mean() < 0.06
    assert not np.any(f[mask.astype(bool)])
    c = 20
    assert not f[c - 1 : c + 2, c - 1 : c + 2, c - 1 : c + 2].any()  # the centre stays observed
    np.testing.assert_array_equal(f, free_mask(shape, mask, ratio=0.05, seed=3))  # reproducible
    assert not np.array_equal(f, free_mask(shape, mask, ratio=0.05, seed=4))


def test_engine_llk_equals_reference_function():
    data, obj, shape = simulate(n=32, size=10)
    d = prepare_data(data, seed=1, backend="numpy")
    sup = to_native(d.be, shape, bool)
    e = Engine(d, to_native(d.be, obj, np.complex64), sup)
    llk, llkf = e.llk()
    free = d.free_centred().astype(bool)
    calc = calc_intensity(obj)
    assert llk == pytest.approx(llk_poisson(data, calc, free, n_support=int(shape.sum())), rel=1e-4)
    assert llkf == pytest.approx(llk_free(data, calc, free), rel=1e-4)


def _one_projection(data, mask, obj):
    d = prepare_data(data, mask, seed=5, backend="numpy")
    e = Engine(d, to_native(d.be, obj, np.complex64), to_native(d.be, np.ones(data.shape, bool), bool))
    before = np.fft.fftn(e.obj.copy())
    e._modulus_projection(want_llk=False)
    after = np.fft.fftn(e.obj)
    return d, before, after


def test_modulus_projection_keeps_masked_and_free_voxels_free():
    data, obj, _ = simulate(n=32, size=10)
    rng = np.random.default_rng(2)
    start = (obj * np.exp(1j * rng.uniform(0, 6.28, obj.shape))).astype(np.complex64)  # far from a solution
    mask = np.zeros(data.shape, np.uint8)
    mask[:, 14:17, :] = 1
    d, before, after = _one_projection(data, mask, start)
    amp = np.sqrt(np.fft.ifftshift(data))
    fixed = np.zeros(data.size, bool)
    fixed[d.fixed_idx] = True
    fixed = fixed.reshape(data.shape)
    assert d.free_idx.size > 0 and d.masked_idx.size > 0
    # masked and free voxels: the calculated complex amplitude is unchanged
    np.testing.assert_allclose(after[fixed], before[fixed], rtol=1e-3, atol=1e-3 * np.abs(before).max())
    # observed voxels: modulus set to the data, phase kept
    obs = ~fixed
    np.testing.assert_allclose(np.abs(after[obs]), amp[obs], rtol=1e-3, atol=1e-3 * amp.max())
    ph = np.angle(after[obs] * np.conj(before[obs]))[amp[obs] > 1]
    assert np.abs(ph).max() < 1e-2


def test_free_voxels_never_used_by_phasing():
    """Changing the data on the free voxels changes nothing but the free LLK."""
    data, _, _ = simulate(n=32, size=10)
    free = free_mask(data.shape, None, ratio=0.05, seed=7).astype(bool)
    assert free.sum() > 100
    other = data.copy()
    other[free] = other[free] * 3 + 17  # absurd values where the voxels are free
    kw = {
        "recipe": "HIO**20, RAAR**20, ER**20",
        "runs": 1,
        "seed": 7,
        "support_period": 10,
        "backend": "numpy",
    }
    a = phase(data, **kw).best
    b = phase(other, **kw).best
    np.testing.assert_array_equal(a.obj, b.obj)
    np.testing.assert_array_equal(a.support, b.support)
    assert a.llk == b.llk
    assert a.llk_free != b.llk_free


def test_hio_and_raar_formulas_match_pynx():
    """One HIO / RAAR step equals PyNX's (tmp==0)*(prev - β·pm) + tmp*pm and its RAAR counterpart."""
    data, obj, shape = simulate(n=32, size=10)
    rng = np.random.default_rng(0)
    x0 = (obj + 0.3 * rng.standard_normal(obj.shape) * np.abs(obj).max()).astype(np.complex64)
    for algo, beta in (("HIO", 0.9), ("RAAR", 0.75), ("ER", 0.9)):
        d = prepare_data(data, seed=0, backend="numpy")
        s = to_native(d.be, shape, bool)
        e = Engine(d, to_native(d.be, x0, np.complex64), s)
        ref = Engine(d, to_native(d.be, x0, np.complex64), s)
        prev = ref.obj.copy()
        ref._modulus_projection(False)
        pm = ref.obj
        if algo == "HIO":
            expect = np.where(s, pm, prev - beta * pm)
        elif algo == "RAAR":
            expect = np.where(s, pm, (1 - 2 * beta) * pm + beta * prev)
        else:
            expect = np.where(s, pm, 0)
        e.iterate(algo, beta)
        np.testing.assert_allclose(e.obj, expect, rtol=0, atol=1e-4 * np.abs(expect).max())


def test_er_from_the_truth_stays_there():
    """ER started from the true object (on a support a bit larger than the crystal) hardly moves."""
    from napari_bcdi_dl.core.phasing import refine

    from ._sim import compare

    data, obj, shape = simulate(n=32, size=10)
    sup = (np.abs(obj) > 0.05 * np.abs(obj).max()).astype(np.uint8)
    rec = refine(data, obj, sup, n_iter=100, support_period=0, backend="numpy")
    c = compare(obj, rec.obj, shape)
    # Poisson noise alone moves the fixed point a little: a few 0.01 rad in the core, a few % overall
    assert c["phase_rmse"] < 0.03
    assert c["error"] < 0.08
    np.testing.assert_array_equal(rec.support, np.roll(sup, 0))


def test_llk_decreases_over_an_er_run():
    data, _obj, _shape = simulate(n=32, size=10)
    rec = phase(data, recipe="sup=off, ER**60", runs=1, seed=2, llk_every=5, backend="numpy")
    llk = [h["llk"] for h in rec.best.history if h["algorithm"] == "ER"]
    assert len(llk) >= 12
    assert llk[-1] < 0.5 * llk[0]
    # ER never increases the (Gaussian) error; the Poisson LLK follows it up to small wiggles
    assert all(b <= a * 1.01 for a, b in itertools.pairwise(llk))


def test_llk_decreases_over_a_default_style_run():
    data, _, _ = simulate(n=32, size=10)
    res = phase(data, recipe="HIO**40, RAAR**40, ER**40", runs=1, seed=0, backend="numpy")
    h = res.best.history
    assert h[-1]["llk"] < 0.2 * h[0]["llk"]
    assert h[-1]["algorithm"] == "final" and res.best.llk == h[-1]["llk"]


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: (np.zeros_like(d), None), "zero everywhere"),
        (lambda d: (d, np.ones(d.shape, np.uint8)), "covers every voxel"),
        (lambda d: (np.where(np.arange(d.size).reshape(d.shape) % 97 == 0, np.nan, d), None), "NaN"),
        (lambda d: (d[0], None), "3D"),
        (lambda d: (d, np.zeros((4, 4, 4), np.uint8)), "mask shape"),
        (lambda d: (d.astype(np.complex64), None), "complex"),
        (lambda d: (d[:4], None), "too small"),
    ],
)
def test_bad_inputs_give_one_line_errors(make, words):
    data, _, _ = simulate(n=32, size=10, noise=False)
    x, m = make(data)
    with pytest.raises(BCDIError) as e:
        phase(x, m, recipe="ER**2", backend="numpy")
    msg = str(e.value)
    assert words in msg and "\n" not in msg


def test_zero_outside_mask_is_an_error():
    data, _, _ = simulate(n=32, size=10)
    mask = (data > 0).astype(np.uint8)
    assert not mask.all()
    with pytest.raises(BCDIError, match="zero outside the mask"):
        phase(data, mask, recipe="ER**2", backend="numpy")


def test_inputs_are_not_modified():
    data, _, _ = simulate(n=32, size=10)
    data[0, 0, 0] = -3  # a negative count, clipped internally
    mask = np.zeros(data.shape, np.uint8)
    mask[:, 15, :] = 1
    d0, m0 = data.copy(), mask.copy()
    res = phase(data, mask, recipe="ER**3", backend="numpy")
    np.testing.assert_array_equal(data, d0)
    np.testing.assert_array_equal(mask, m0)
    assert res.best.meta["n_negative_clipped"] == 1
    assert res.best.obj.dtype == np.complex64 and res.best.obj.shape == data.shape
    assert res.best.support.dtype == np.uint8
