"""The shared fit loop (``models.training``) and the inpainting data pipeline, with tiny models."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import Cancelled
from napari_bcdi_dl.models._keras import keras
from napari_bcdi_dl.models.inpaint_loss import inpaint_loss
from napari_bcdi_dl.models.inpaint_training import (
    augment,
    coherence_blur,
    gap_pcc_batch,
    linear_relative_weights,
    make_batch,
    make_val_metrics,
    random_gap_mask,
)
from napari_bcdi_dl.models.training import cosine_schedule, fit, latest_checkpoint

from ._inpaint_helpers import fringe_pattern, tiny_inpainter

EXPECTED = np.stack([fringe_pattern((32, 32, 32), 1e4, seed=s) for s in range(4)])


def batches(rng, drawn=None, batch=2):
    """Endless augmented batches drawn lazily from ``rng``; records the patch indices drawn."""
    while True:
        idx = rng.integers(0, len(EXPECTED), size=batch)
        if drawn is not None:
            drawn.append(idx.tolist())
        s = [augment(EXPECTED[i], np.zeros((32,) * 3, np.uint8), rng) for i in idx]
        yield make_batch(*(np.stack(a) for a in zip(*s)))


@pytest.fixture(scope="module")
def val():
    rng = np.random.default_rng(99)
    return [next(batches(rng, batch=4))]


# ------------------------------------------------------------------------------------------ data
def test_random_gaps_cover_the_geometries():
    rng = np.random.default_rng(0)
    masks = [random_gap_mask(rng) for _ in range(300)]
    assert all(m.dtype == np.uint8 and m.shape == (32, 32, 32) for m in masks)
    assert all(0 < m.sum() < m.size for m in masks)
    widths, crosses, axes = set(), 0, set()
    for m in masks:
        # planes entirely in the gap, per normal axis (partial slabs have none)
        full = {a: int(m.all(axis=tuple(i for i in range(3) if i != a)).sum()) for a in range(3)}
        normals = [a for a, n in full.items() if n]
        axes.update(normals)
        crosses += len(normals) > 1
        widths.update(full[a] for a in normals)
    assert widths >= set(range(1, 13)) and crosses > 50 and axes == {0, 1, 2}


def test_augment_keeps_physics():
    rng = np.random.default_rng(0)
    e = EXPECTED[0]
    noisy, truth, m = augment(e, np.zeros_like(e, np.uint8), rng)
    assert noisy.dtype == truth.dtype == np.float32 and m.dtype == np.uint8
    assert np.array_equal(noisy, np.round(noisy)) and noisy.min() >= 0, "Poisson counts"
    ratio = truth.sum() / e.sum()
    assert 0.09 < ratio < 3.2, "noise level drawn in 10^[-1, 0.5]"
    assert sorted(np.round(truth.ravel() / ratio, 1))[-5:] == pytest.approx(
        sorted(np.round(e.ravel(), 1))[-5:], rel=1e-3), "a symmetry of the cube keeps the values"


def test_coherence_blur_fills_the_fringe_minima_and_keeps_the_photons():
    e = EXPECTED[0]
    rng = np.random.default_rng(3)
    b = coherence_blur(e, rng, 1.5)
    assert b.dtype == np.float32 and b.shape == e.shape
    assert b.sum() == pytest.approx(e.sum(), rel=1e-3)
    inner = (slice(4, -4),) * 3  # away from the window border (mode "nearest")
    assert np.abs(np.diff(b, axis=1))[inner].mean() < np.abs(np.diff(e, axis=1))[inner].mean()
    # blur=0 draws the same stream as before the option existed; p_blur=1 always blurs
    a0 = augment(e, np.zeros_like(e, np.uint8), np.random.default_rng(5))
    a1 = augment(e, np.zeros_like(e, np.uint8), np.random.default_rng(5), blur=0.0)
    assert all(np.array_equal(x, y) for x, y in zip(a0, a1))
    _, t_blur, _ = augment(e, np.zeros_like(e, np.uint8), np.random.default_rng(5), blur=1.5, p_blur=1.0)
    assert not np.allclose(t_blur.max() / t_blur.sum(), a0[1].max() / a0[1].sum(), rtol=1e-3)


def test_batches_and_metrics(val):
    x, y = val[0]
    assert x.shape == (4, 32, 32, 32, 2) and y.shape == (4, 32, 32, 32, 2)
    np.testing.assert_array_equal(x[..., 1], y[..., 1])
    pcc = gap_pcc_batch(y[..., 0], y[..., 0], y[..., 1])
    np.testing.assert_allclose(pcc, 1)
    metrics = make_val_metrics(inpaint_loss)(tiny_inpainter(), val)
    assert set(metrics) == {"val_loss", "val_pcc", "val_pcc_linear", "val_l1", "val_l1_linear"}
    assert metrics["val_pcc"] == pytest.approx(metrics["val_pcc_linear"], abs=1e-6), "untrained = linear"


def test_linear_relative_weights_favour_the_gaps_linear_gets_right():
    """Weights ∝ 1/L1 of the pre-fill (power 1), batch mean 1, tiny L1s floored at 0.25 × the median."""
    target = np.zeros((4, 8, 8, 8), np.float32)
    masks = np.zeros_like(target, np.uint8)
    masks[:, 3:5] = 1
    prefill = target + np.array([0.1, 0.2, 0.4, 1e-6], np.float32)[:, None, None, None]
    w = linear_relative_weights(prefill, target, masks, 1.0)
    assert w.dtype == np.float32 and w.mean() == pytest.approx(1.0)
    assert w[0] == pytest.approx(2 * w[1]) and w[1] == pytest.approx(2 * w[2])
    median = np.median([0.1, 0.2, 0.4, 0.0])
    assert w[3] == pytest.approx(w[0] * 0.1 / (0.25 * median + 1e-6), rel=1e-4), "floored, not 1e6×"
    np.testing.assert_allclose(linear_relative_weights(prefill, target, masks, 0.0), 1.0)
    # outside the gap the pre-fill does not count
    far = prefill.copy()
    far[:, :3] += 5
    np.testing.assert_allclose(linear_relative_weights(far, target, masks, 1.0), w, rtol=1e-6)


def test_make_batch_carries_the_weights_in_a_third_channel(val):
    rng = np.random.default_rng(3)
    s = [augment(EXPECTED[i], np.zeros((32,) * 3, np.uint8), rng) for i in range(4)]
    noisy, truth, masks = (np.stack(a) for a in zip(*s))
    x, y = make_batch(noisy, truth, masks)
    xw, yw = make_batch(noisy, truth, masks, linear_weight=1.0)
    assert y.shape[-1] == 2 and yw.shape[-1] == 3
    np.testing.assert_array_equal(x, xw)
    np.testing.assert_array_equal(y, yw[..., :2])
    w = yw[:, 0, 0, 0, 2]
    np.testing.assert_allclose(yw[..., 2], np.broadcast_to(w[:, None, None, None], masks.shape))
    np.testing.assert_allclose(w, linear_relative_weights(x[..., 0], y[..., 0], masks, 1.0), rtol=1e-6)
    assert np.isfinite(_train_one_step(xw, yw)), "Keras trains on the 3-channel targets"


def _train_one_step(x, y):
    model = tiny_inpainter()
    model.compile(optimizer=keras().optimizers.Adam(1e-3), loss=inpaint_loss)
    return float(model.train_on_batch(x, y))


def test_cosine_schedule():
    s = cosine_schedule(1e-3, 1000, warmup=100, floor=0.1)
    assert s(0) == pytest.approx(1e-5) and s(99) == pytest.approx(1e-3)
    assert s(1000) == pytest.approx(1e-4) and s(550) == pytest.approx(0.55e-3, rel=1e-2)


# ------------------------------------------------------------------------------------------- fit
@pytest.mark.slow
def test_fit_checkpoints_resumes_the_same_random_stream_and_logs(tmp_path, val):
    run = tmp_path / "run"
    drawn_a: list = []
    rng = np.random.default_rng(7)
    fit(tiny_inpainter(), inpaint_loss, batches(rng, drawn_a), val, run, 3, steps_per_epoch=2,
        checkpoint_every=1, rng=rng, log=lambda _: None)
    ck = latest_checkpoint(run)
    assert ck is not None and ck.name == "step_00000003"
    assert {p.name for p in ck.iterdir()} == {"model.weights.h5", "optimizer.npz", "state.json"}
    assert len(list((run / "checkpoints").glob("step_*"))) == 2, "only the last `keep` are kept"

    # resume with a fresh model and a fresh Generator: the stream continues where it stopped
    drawn_b: list = []
    rng_b = np.random.default_rng(12345)
    res = fit(tiny_inpainter(seed=9), inpaint_loss, batches(rng_b, drawn_b), val, run, 6,
              steps_per_epoch=2, checkpoint_every=1, rng=rng_b, resume=True, log=lambda _: None)
    assert res.step == 6 and res.stopped == "steps"
    drawn_c: list = []
    rng_c = np.random.default_rng(7)
    gen = batches(rng_c, drawn_c)
    for _ in range(6):
        next(gen)
    assert drawn_a + drawn_b == drawn_c

    log = json.loads((run / "log.json").read_text())
    assert [r["step"] for r in log] == [2, 3, 4, 6]
    assert {"train_loss", "val_loss", "lr", "epoch_s", "elapsed_s"} <= set(log[0])
    for name in ("best.keras", "last.keras"):
        m = keras().saving.load_model(str(run / name))  # loads without the training code
        assert m.input_shape == (None, 32, 32, 32, 2)


def test_resume_restores_weights_and_optimizer(tmp_path, val):
    run = tmp_path / "run"
    model = tiny_inpainter()
    rng = np.random.default_rng(0)
    fit(model, inpaint_loss, batches(rng), val, run, 2, steps_per_epoch=2, rng=rng, log=lambda _: None)
    other = tiny_inpainter(seed=5)
    from napari_bcdi_dl.models.training import load_checkpoint

    other.compile(optimizer=keras().optimizers.Adam(), loss=inpaint_loss)
    state = load_checkpoint(latest_checkpoint(run), other)
    assert state["step"] == 2
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.variables, other.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_cancel_checkpoints_then_raises(tmp_path, val):
    token = threading.Event()

    def progress(done, total):
        if done == 2:
            token.set()

    rng = np.random.default_rng(0)
    with pytest.raises(Cancelled):
        fit(tiny_inpainter(), inpaint_loss, batches(rng), val, tmp_path, 10, steps_per_epoch=5,
            checkpoint_every=100, rng=rng, progress=progress, cancel=token, log=lambda _: None)
    assert latest_checkpoint(tmp_path).name == "step_00000003", "the step under way when asked is finished"


def test_early_stopping(tmp_path, val):
    rng = np.random.default_rng(0)
    res = fit(tiny_inpainter(), inpaint_loss, batches(rng), val, tmp_path, 50, steps_per_epoch=1,
              learning_rate=0.0, patience=2, rng=rng, log=lambda _: None)
    assert res.stopped == "early" and res.step == 3, "lr 0: never better than the first epoch"


# ------------------------------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_train_inpaint_cli_from_the_shipped_weights_with_blur_and_linear_weight(tmp_path, capsys):
    """``bcdi-dl train inpaint --init --blur``: starts from the given weights (a fresh U-Net *is* the
    linear fill, so the first held-out PCC differs from linear only with them) and records both."""
    from napari_bcdi_dl.cli import main
    from napari_bcdi_dl.core.simulate import generate_dataset
    from napari_bcdi_dl.models.registry import model_path

    for name, seed in (("train", 1), ("val", 2)):
        generate_dataset("inpaint", tmp_path / name, n=4, size=32, seed=seed, workers=1)
    common = ["train", "inpaint", "--data", str(tmp_path / "train"), "--val", str(tmp_path / "val"),
              "--batch", "2", "--steps", "1", "--steps-per-epoch", "1", "--lr", "1e-7", "--quiet"]
    shipped = model_path("inpaint")
    assert main(common + ["--out", str(tmp_path / "a"), "--init", str(shipped), "--blur", "1.0",
                          "--linear-weight", "1", "--bright-weight", "1",
                          "--amplitude-weight", "0.5"]) == 0
    assert main(common + ["--out", str(tmp_path / "b")]) == 0
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["init"] == str(shipped) and run["blur"] == 1.0 and run["arch"]["norm"] == "group"
    assert run["linear_weight"] == 1.0 and run["bright_weight"] == 1.0 and run["amplitude_weight"] == 0.5
    a, b = (json.loads((tmp_path / d / "log.json").read_text())[-1] for d in ("a", "b"))
    assert a["val_pcc_linear"] == b["val_pcc_linear"]
    assert b["val_pcc"] == pytest.approx(b["val_pcc_linear"], abs=1e-3), "a fresh U-Net is the linear fill"
    assert abs(a["val_pcc"] - a["val_pcc_linear"]) > 1e-3, "the shipped weights were loaded"
    assert main(common + ["--out", str(tmp_path / "c"), "--init", str(tmp_path / "missing.keras")]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert main(common + ["--out", str(tmp_path / "d"), "--linear-weight", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--linear-weight -1.0" in err and "must be finite and >= 0" in err and err.count("\n") == 1
    assert main(common + ["--out", str(tmp_path / "e"), "--bright-weight", "nan"]) == 2
    err = capsys.readouterr().err
    assert "--bright-weight nan" in err and err.count("\n") == 1
    assert main(common + ["--out", str(tmp_path / "f"), "--amplitude-weight", "-2"]) == 2
    err = capsys.readouterr().err
    assert "--amplitude-weight -2.0" in err and err.count("\n") == 1
