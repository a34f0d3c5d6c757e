"""Supports, registration and modes, refinement, progress and cancellation, run selection and retries."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy.ndimage import binary_dilation, binary_erosion, fourier_shift, generate_binary_structure

from napari_bcdi_dl.core.errors import BCDIError, Cancelled
from napari_bcdi_dl.core.phasing import (
    autocorrelation_support,
    mode_decomposition,
    phase,
    refine,
    register,
    update_support,
)
from napari_bcdi_dl.core.phasing.support import sigma_at

from ._sim import compare, simulate

CROSS = generate_binary_structure(3, 1)  # 6-connectivity


def test_autocorrelation_support_covers_the_crystal_and_is_centred():
    data, _obj, shape = simulate(n=32, size=10)
    sup = autocorrelation_support(data, threshold=0.1)
    assert sup.dtype == np.uint8
    # the autocorrelation is twice the object's extent: it contains the crystal centred in the array
    assert np.all(sup[shape.astype(bool)])
    assert sup.sum() > shape.sum()
    com = np.argwhere(sup).mean(axis=0)
    np.testing.assert_allclose(com, [16, 16, 16], atol=1.0)


def test_shrink_wrap_shrinks_a_loose_support_towards_the_crystal():
    _, obj, shape = simulate(n=32, size=10, blur=0.0)
    loose = binary_dilation(shape, CROSS, iterations=3).astype(np.uint8)
    new = update_support(obj * loose, loose, sigma=0.5, threshold=0.3, method="rms")
    assert shape.sum() * 0.9 < new.sum() < loose.sum()
    assert np.mean(new[shape.astype(bool)]) > 0.95


def test_border_only_update_changes_only_the_shell():
    _, obj, shape = simulate(n=32, size=10)
    start = binary_dilation(shape, CROSS, iterations=2).astype(np.uint8)  # two voxels too large
    new = update_support(obj, start, sigma=1.0, threshold=0.25, border_only=True)
    core = binary_erosion(start, CROSS)
    ring = binary_dilation(start, CROSS) & ~core
    assert np.all(new[core.astype(bool)] == 1)  # the core stays
    assert not np.any(new[~(core | ring)])  # nothing appears beyond the outer neighbours
    assert new.sum() < start.sum()  # the empty outer shell left


def test_sigma_schedule():
    assert sigma_at(0, 100, (2.0, 0.5)) == pytest.approx(2.0)
    assert sigma_at(100, 100, (2.0, 0.5)) == pytest.approx(0.5)
    assert sigma_at(50, 100, (2.0, 0.5)) == pytest.approx(1.0)
    assert sigma_at(900, 1000, (2.0, 0.5, 600)) == pytest.approx(0.5)
    assert sigma_at(7, 10, 1.5) == 1.5


def test_register_undoes_twin_shift_and_phase():
    _, obj, _shape = simulate(n=32, size=10)
    moved = np.fft.ifftn(fourier_shift(np.fft.fftn(obj), (2.4, -1.3, 0.6))).astype(np.complex64)
    twin = np.conj(np.roll(moved[::-1, ::-1, ::-1], 1, axis=(0, 1, 2)))  # point inversion about the centre
    other = (twin * np.exp(1.1j)).astype(np.complex64)
    aligned, info = register(obj, other, upsample=20)
    assert info["twin"] is True
    err = np.linalg.norm(aligned - obj) / np.linalg.norm(obj)
    assert err < 0.02 and info["correlation"] > 0.999


def test_modes_weights():
    _, obj, _ = simulate(n=32, size=10)
    w, modes = mode_decomposition([obj, obj * np.complex64(1j), obj * np.float32(2)])
    assert w[0] == pytest.approx(1.0, abs=1e-6) and w.sum() == pytest.approx(1.0)
    assert modes.shape == (3,) + obj.shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal(obj.shape).astype(np.complex64)
    b = rng.standard_normal(obj.shape).astype(np.complex64)
    w2, _ = mode_decomposition([a, b])
    np.testing.assert_allclose(w2, [0.5, 0.5], atol=0.02)


def test_refine_keeps_the_shape_and_reports_history():
    data, obj, shape = simulate(n=32, size=10)
    start_sup = binary_dilation(shape, CROSS, iterations=2).astype(np.uint8)
    rng = np.random.default_rng(3)
    noisy = (obj * np.exp(1j * 0.3 * rng.standard_normal(obj.shape))).astype(np.complex64)  # a rough guess
    calls = []
    rec = refine(
        data,
        noisy,
        start_sup,
        n_iter=60,
        support_period=10,
        llk_every=10,
        progress=lambda d, t: calls.append((d, t)),
        backend="numpy",
    )
    assert rec.obj.dtype == np.complex64 and rec.support.dtype == np.uint8 and rec.method == "refined"
    sup = np.roll(rec.support, [-s for s in rec.meta["centring_shift"]], axis=(0, 1, 2)).astype(bool)
    core = binary_erosion(start_sup, CROSS)
    outer = binary_dilation(start_sup, CROSS)
    assert np.all(sup[core]) and not np.any(sup[~outer])  # only the border changed: the shape stays
    assert sup.sum() != start_sup.sum()  # ... and it did change
    llk = [h["llk"] for h in rec.history]
    assert llk[-1] < llk[0] and rec.llk == llk[-1] and rec.llk_free is not None
    assert calls[-1] == (60, 60) and len(calls) == 61
    c = compare(obj, rec.obj, shape)
    assert c["phase_rmse"] < 0.1  # 0.3 rad of phase noise smoothed out by the support and the data


def test_refine_bad_inputs():
    data, obj, shape = simulate(n=32, size=10)
    with pytest.raises(BCDIError, match="empty"):
        refine(data, obj, np.zeros_like(shape), n_iter=2)
    with pytest.raises(BCDIError, match="object shape"):
        refine(data, obj[:16], shape, n_iter=2)
    with pytest.raises(BCDIError, match="NaN"):
        refine(data, np.full(obj.shape, np.nan, np.complex64), shape, n_iter=2)


def test_progress_and_cancel_every_iteration():
    data, _, _ = simulate(n=32, size=10)
    calls = []
    res = phase(
        data, recipe="HIO**5, ER**5", runs=2, progress=lambda d, t: calls.append((d, t)), backend="numpy"
    )
    assert calls[0] == (0, 20) and calls[-1] == (20, 20) and len(calls) == 21
    assert len(res.runs) == 2
    token = threading.Event()

    def stop_at_7(done, total):
        if done == 7:
            token.set()

    with pytest.raises(Cancelled):
        phase(data, recipe="HIO**50", progress=stop_at_7, cancel=token, backend="numpy")


def test_support_too_large_retries_then_fails_clearly():
    data, _, _ = simulate(n=32, size=10)
    with pytest.raises(BCDIError) as e:
        phase(data, recipe="sup=5, HIO**10", max_support=0.001, max_retries=2, backend="numpy")
    msg = str(e.value)
    assert "above the maximum" in msg and "after 2 retries" in msg and "\n" not in msg


def test_support_too_small_is_retried_with_a_lower_threshold():
    data, _, shape = simulate(n=32, size=10)
    frac = shape.mean()
    res = phase(
        data,
        recipe="sup=5, HIO**10, ER**10",
        support_threshold=3.0,
        support_method="rms",
        min_support=0.5 * frac,
        max_retries=8,
        backend="numpy",
    )
    assert res.best.meta["attempts"] > 1
    assert res.best.meta["support_threshold"] < 3.0


def test_runs_selection_and_modes():
    data, _, _ = simulate(n=32, size=10)
    res = phase(data, recipe="HIO**30, RAAR**30, ER**30", runs=3, seed=4, backend="numpy")
    free = [r.llk_free for r in res.runs]
    assert res.best is res.runs[int(np.argmin(free))]
    assert [r.meta["run"] for r in res.runs] == [0, 1, 2]
    assert len(res.modes) == 3 and res.modes.sum() == pytest.approx(1.0)
    assert 0.3 < res.first_mode_weight <= 1.0
    assert res.first_mode.shape == data.shape and res.first_mode.dtype == np.complex64
    res2 = phase(
        data, recipe="HIO**30, RAAR**30, ER**30", runs=3, seed=4, select="sharpness", keep=2, backend="numpy"
    )
    sharp = [r.meta["sharpness"] for r in res2.runs]
    assert res2.best is res2.runs[int(np.argmin(sharp))] and len(res2.kept) == 2
    # same seed, same runs
    np.testing.assert_array_equal(res.runs[1].obj, res2.runs[1].obj)
    with pytest.raises(BCDIError, match="selection"):
        phase(data, recipe="ER", select="best")


def test_initial_support_can_be_given():
    data, _, shape = simulate(n=32, size=10)
    sup = binary_dilation(shape, CROSS, iterations=2).astype(np.uint8)
    res = phase(data, recipe="sup=off, ER**5", support=sup, backend="numpy")
    back = np.roll(res.best.support, [-s for s in res.best.meta["centring_shift"]], axis=(0, 1, 2))
    np.testing.assert_array_equal(back, sup)
    with pytest.raises(BCDIError, match="empty"):
        phase(data, recipe="ER", support=np.zeros_like(sup))


def test_positivity_and_detwin_steps_run():
    data, _, _ = simulate(n=32, size=10)
    res = phase(data, recipe="HIO**10, DETWIN**5, pos=on, HIO**5, RAAR**5, ER**5", backend="numpy")
    rec = res.best
    assert np.isfinite(rec.llk) and rec.obj.dtype == np.complex64
    inside = rec.support.astype(bool)
    assert rec.history[-1]["algorithm"] == "final"
    assert "pos=on" in rec.meta["recipe"] and "DETWIN**5" in rec.meta["recipe"]
    assert inside.sum() > 0
