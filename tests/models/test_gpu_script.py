"""The GPU training script (``scripts/gpu_train_phase.sh``), dry-run on the CPU with JAX: it simulates, trains
on a time budget, writes a float32 export with its card and a reference pair, and that export loads under
TensorFlow and predicts what JAX predicted. No wheels needed (``--no-install`` uses this interpreter).

And the parts it adds to the training code: batches made on threads, reproducible per step; a time-budgeted
fit; a mixed-precision model exported as plain float32; the optional 64³ model name of the registry."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dry_run_exports_weights_that_tensorflow_predicts_the_same(tmp_path):
    if importlib.util.find_spec("jax") is None:  # found, not imported: the script imports it itself
        pytest.skip("jax is not installed (pip install jax: the CPU wheel)")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "XLA_FLAGS", "KERAS_BACKEND")}
    env.update(KERAS_BACKEND="jax", PYTHON=sys.executable, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"))
    run = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_train_phase.sh"), "--no-install", "--no-cupy-test", "--dry-run",
         "--out", str(out), "--work", str(tmp_path / "work")],
        check=False, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] and summary["device"]["backend"] == "jax"
    assert set(summary["stages"]) == {"device", "preflight", "simulation", "training", "reference", "done"}
    files = sorted(p.name for p in out.iterdir())
    assert files == ["log.json", "phase_dryrun.json", "phase_dryrun.keras", "reference.npz", "summary.json",
                     "train.log"]
    card = json.loads((out / "phase_dryrun.json").read_text())
    assert card["kind"] == "phase" and card["grid"] == 16 and card["backend"] == "jax"
    assert card["precision"] == "float32" and card["arch"]["widths"] == [4, 4, 4]
    assert card["data"]["train"] == {"n": 16, "seed": 6401} and card["data"]["val"] == {"n": 4, "seed": 6501}
    assert "val_wca" in card["held_out"]
    assert set(card["held_out"]) <= {"val_loss", "val_wca", "val_wca_low", "val_wca_mid", "val_wca_high"}
    assert "bcdi-dl train phase" in card["command"] and "--time-budget" in card["command"]
    assert card["gpu_run"]["stopped"] == "time" and card["gpu_run"]["final_step"] >= card["step"] >= 1
    log = json.loads((out / "log.json").read_text())
    assert log[-1]["step"] == card["gpu_run"]["final_step"] and np.isfinite(log[-1]["val_wca"])

    # under TensorFlow, in a fresh process (this one may hold another backend already)
    env["KERAS_BACKEND"] = "tensorflow"
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check_export.py"), str(out)],
                           check=False, env=env, capture_output=True, text=True, timeout=180)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    res = json.loads(check.stdout.strip().splitlines()[-1])
    assert res["backend"] == "tensorflow" and res["saved_backend"] == "jax"
    assert res["policies"] == ["float32"] and res["input_shape"] == [None, 16, 16, 16, 1]
    assert res["finite"] and res["n"] == 2
    with np.load(out / "reference.npz") as f:
        scale = float(np.abs(f["phase"]).max())
    assert res["max_abs_diff"] <= 1e-4 * max(1.0, scale), res
    assert max(res["wca_between"]) < 1e-6


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    from napari_bcdi_dl.core.simulate import generate_dataset
    from napari_bcdi_dl.models.phase_training import PhaseSet

    root = tmp_path_factory.mktemp("gpu_script_set")
    generate_dataset("phase", root / "train", 6, size=32, seed=5, workers=1)
    return PhaseSet([root / "train"], 16, workers=2)


def test_parallel_batches_are_the_same_whatever_the_threads_and_resume_mid_stream(tiny_set):
    from napari_bcdi_dl.models.phase_training import parallel_train_batches

    def take(threads, start, n):
        it = parallel_train_batches(tiny_set, 3, seed=7, threads=threads, start_step=start, curriculum_steps=0)
        try:
            return [next(it) for _ in range(n)]
        finally:
            it.close()

    one, four, resumed = take(1, 0, 3), take(4, 0, 3), take(2, 2, 1)
    for (x1, y1), (x4, y4) in zip(one, four):
        assert x1.shape == (3, 16, 16, 16, 1) and y1.shape == (3, 16, 16, 16, 2)
        np.testing.assert_array_equal(x1, x4)
        np.testing.assert_array_equal(y1, y4)
        np.testing.assert_array_equal(y1[..., 1], x1[..., 0])  # the WCA weights are the input
        assert 0 <= x1.min() and x1.max() <= 1
    np.testing.assert_array_equal(resumed[0][0], one[2][0])  # step 2 is step 2, resumed or not
    assert not np.array_equal(one[0][0], one[1][0])


def test_time_budget_stops_fit_and_the_decay_follows_the_time(tmp_path, tiny_set):
    from napari_bcdi_dl.models.phase_training import build_model, parallel_train_batches
    from napari_bcdi_dl.models.training import fit, time_cosine_schedule
    from napari_bcdi_dl.models.wca import wca_loss

    sched = time_cosine_schedule(1e-3, 100.0, warmup=2)
    assert sched.timed and sched(0, 0.0) == pytest.approx(5e-4) and sched(5, 0.0) == pytest.approx(1e-3)
    assert sched(5, 50.0) == pytest.approx(0.525e-3) and sched(5, 500.0) == pytest.approx(0.05e-3)
    model = build_model({"size": 16, "widths": [2, 4], "depth": 1, "stem": "none"})
    batches = parallel_train_batches(tiny_set, 2, seed=1, threads=2)
    try:
        res = fit(model, wca_loss, batches, None, tmp_path / "run", steps=10**6, steps_per_epoch=10**6,
                  learning_rate=sched, max_seconds=0.01, log=lambda line: None)
    finally:
        batches.close()
    assert res.stopped == "time" and res.step == 1 and len(res.history) == 1
    assert res.history[0]["lr"] == pytest.approx(5e-4)  # warm-up step 0


def test_mixed_precision_model_is_exported_as_plain_float32(tmp_path):
    from napari_bcdi_dl.models.phase_training import build_model, export_model
    from napari_bcdi_dl.models.registry import load_model

    model = build_model({"size": 16, "widths": [2, 4], "depth": 1, "stem": "none"}, "mixed_bfloat16")
    assert model.get_layer("enc0_conv0").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("phase").dtype_policy.name == "float32"  # the phase is not rounded to bf16
    path = export_model(model, tmp_path / "w" / "tiny.keras", {"kind": "phase"})
    back = load_model(str(path), fresh=True)
    assert {layer.dtype_policy.name for layer in back.layers} == {"float32"}
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).random((1, 16, 16, 16, 1)).astype(np.float32)
    assert np.all(np.isfinite(np.asarray(back.predict_on_batch(x))))


def test_registry_knows_the_optional_64_model():
    from napari_bcdi_dl.core.errors import BCDIError
    from napari_bcdi_dl.models import registry

    names = registry.available_models()
    assert {"phase", "inpaint"} <= set(names) and names["phase"].name == "phase_unet32.keras"
    if not (registry.WEIGHTS_DIR / "phase_unet64.keras").is_file():
        assert "phase64" not in names
        with pytest.raises(BCDIError, match="phase64.*not in this version") as err:
            registry.model_path("phase64")
        assert "\n" not in str(err.value)
    else:  # pragma: no cover - once the GPU run's weights ship
        assert names["phase64"] == registry.model_path("phase64") == registry.model_path("phase_unet64")
