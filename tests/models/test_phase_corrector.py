"""The phase corrector (issue 17, item 3): built from the shipped phase network, it predicts what that network
predicts before training; its sets are made from a phase set and the engine; a few steps fit a tiny set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.core.simulate import generate_dataset


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    from napari_bcdi_dl.models.corrector_training import make_corrector_set

    root = tmp_path_factory.mktemp("corrector")
    generate_dataset("phase", root / "phase", 4, size=32, seed=41, workers=1)
    make_corrector_set([root / "phase"], root / "train", n=4, seed=1, hio=(10, 20), er=10, log=lambda s: None)
    make_corrector_set([root / "phase"], root / "val", n=4, seed=2, held_out=True, log=lambda s: None)
    return root


def test_corrector_starts_from_the_phase_network_and_returns_the_estimate():
    from napari_bcdi_dl.models.dl_phasing import load_phase_model
    from napari_bcdi_dl.models.phase_corrector import correct_phase, corrector_from_phase_model, is_corrector

    model, card = load_phase_model()
    corr = corrector_from_phase_model(model, card["arch"])
    assert is_corrector(corr) and not is_corrector(model)
    # the network's weights are there (the first convolution's first input channel, a decoder layer)
    np.testing.assert_array_equal(corr.get_layer("dec0_conv0").get_weights()[0],
                                  model.get_layer("dec0_conv0").get_weights()[0])
    rng = np.random.default_rng(0)
    x = rng.random((2, 32, 32, 32)).astype(np.float32)
    est = rng.uniform(-np.pi, np.pi, x.shape).astype(np.float32)
    np.testing.assert_allclose(correct_phase(corr, x, est), est, atol=1e-6)  # correction starts at zero
    with pytest.raises(BCDIError, match="one input channel"):
        correct_phase(model, x, est)
    with pytest.raises(BCDIError, match="differ in shape"):
        correct_phase(corr, x, est[:, :16])


def test_corrector_set_holds_engine_estimates(tiny_sets):
    from napari_bcdi_dl.models.corrector_training import CorrectorSet, baselines

    data = CorrectorSet([tiny_sets / "train"])
    assert len(data) == 4 and data.x.shape == (4, 32, 32, 32) and data.estimate.shape == data.x.shape
    assert np.isfinite(data.estimate.astype(np.float32)).all() and 0 <= data.x.min() and data.x.max() <= 1
    assert not np.allclose(data.estimate, data.predicted)  # the engine moved the prediction
    base = baselines(data)
    assert 0 <= base["estimate_wca"] <= 1 and 0 <= base["predicted_wca"] <= 1
    manifest = json.loads((tiny_sets / "val" / "manifest.json").read_text())
    assert manifest["held_out"] and manifest["n"] == 4


@pytest.mark.slow
def test_corrector_training_improves_on_the_estimate(tiny_sets, tmp_path):
    """Before training the corrector returns the estimate; a few steps on the same crystals (other noise and
    recipe) bring the held-out WCA below the estimate's, and the export carries its card."""
    from napari_bcdi_dl.models.corrector_training import CorrectorSet, baselines, main
    from napari_bcdi_dl.models.registry import model_path

    out, export = tmp_path / "run", tmp_path / "corr.keras"
    argv = ["train", "--data", str(tiny_sets / "train"), "--val", str(tiny_sets / "val"), "--out", str(out),
            "--init", str(model_path("phase_unet32")), "--export", str(export), "--steps", "32",
            "--steps-per-epoch", "8", "--batch", "4", "--lr", "1e-3", "--warmup", "0"]
    assert main(argv) == 0
    log = json.loads((out / "log.json").read_text())
    start = baselines(CorrectorSet([tiny_sets / "val"]))["estimate_wca"]
    assert np.all(np.isfinite([r["train_loss"] for r in log]))
    assert min(r["val_wca"] for r in log) < start, (start, log)
    from napari_bcdi_dl.models.phase_corrector import is_corrector
    from napari_bcdi_dl.models.registry import load_model

    assert is_corrector(load_model(str(export)))
    card = json.loads(export.with_suffix(".json").read_text())
    assert card["kind"] == "phase_corrector" and card["arch"]["corrector"] and "estimate_wca" in card[
        "held_out_baselines"]
    # a corrector continues as it is (its card beside it): it starts where the export was
    again = tmp_path / "again"
    argv2 = ["train", "--data", str(tiny_sets / "train"), "--val", str(tiny_sets / "val"), "--out", str(again),
             "--init", str(export), "--steps", "8", "--steps-per-epoch", "8", "--batch", "4", "--lr", "1e-5",
             "--warmup", "0", "--time-budget", "600"]  # the timed schedule; --steps caps the run
    assert main(argv2) == 0
    first = json.loads((again / "log.json").read_text())[0]["val_wca"]
    assert first == pytest.approx(card["held_out"]["val_wca"], abs=0.02), (first, card["held_out"])


def test_pipeline_adds_the_corrector_candidates_to_the_networks():
    """With a corrector, predict_object holds the network's best candidates and the corrector's, interleaved;
    an untrained corrector's candidate is the engine's estimate made from the network's phase (every flip,
    in the model-grid frame, ``correct_rounds`` times)."""
    from napari_bcdi_dl.core.reciprocal import to_model_grid
    from napari_bcdi_dl.core.simulate import simulate_pattern
    from napari_bcdi_dl.models.dl_phasing import (load_phase_model, predict_and_refine, predict_object,
                                                  trained_oversampling_range)
    from napari_bcdi_dl.models.phase_corrector import corrector_from_phase_model, estimate_phase

    pattern = simulate_pattern(size=40, seed=5, phase_range=3.0)
    model, card = load_phase_model()
    corr = corrector_from_phase_model(model, card["arch"])
    plain = predict_object(pattern.intensity, model=model, card=card, tta=1, grid_refine=0)
    both = predict_object(pattern.intensity, model=model, card=card, tta=1, grid_refine=0, corrector=corr,
                          correct_rounds=2)
    assert [c.source for c in plain.candidates] == ["network"]
    assert [c.source for c in both.candidates] == ["network", "corrector"]
    np.testing.assert_allclose(both.phase_model, plain.phase_model, atol=1e-5)  # the network's prediction
    i_m, _ = to_model_grid(pattern.intensity, 32, oversampling_range=trained_oversampling_range(card))
    est = estimate_phase(i_m, plain.phase_model)
    est = estimate_phase(i_m, est)  # two rounds
    np.testing.assert_allclose(np.exp(1j * both.candidates[1].phase_model), np.exp(1j * est),
                               atol=2e-2)  # float32 engine
    assert both.meta["correct_rounds"] == 2 and "corrector" not in plain.meta
    with pytest.raises(BCDIError, match="correct_rounds"):
        predict_object(pattern.intensity, model=model, card=card, tta=1, corrector=corr, correct_rounds=0)
    with pytest.raises(BCDIError, match="not a phase corrector"):
        predict_and_refine(pattern.intensity, corrector="phase")


def test_corrector_switch_in_the_config_and_the_cli():
    """``phase.corrector`` (default true), ``bcdi-dl phase --no-corrector`` and the DL dock build the same
    configuration key; a non-boolean value is refused in one line."""
    import argparse

    from napari_bcdi_dl.cli.phase import config_of, register
    from napari_bcdi_dl.pipeline.steps import step_config

    assert step_config("test", phase={"method": "dl"}).phase.corrector is True
    with pytest.raises(BCDIError, match="corrector"):
        step_config("test", phase={"method": "dl", "corrector": "yes"})
    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    parser = sub.choices["phase"]
    assert config_of(parser.parse_args(["in.npz", "--out", "o.cxi", "--method", "dl"])).phase.corrector is True
    off = parser.parse_args(["in.npz", "--out", "o.cxi", "--method", "dl", "--no-corrector"])
    assert config_of(off).phase.corrector is False


def test_the_shipped_corrector_is_the_pipeline_default():
    """The shipped weights load as a corrector with their card (data, held-out WCA against the estimate it
    starts from, the pipeline benchmark), and ``corrector="default"`` resolves to them."""
    from napari_bcdi_dl.models.dl_phasing import DEFAULT_CORRECTOR, resolve_corrector
    from napari_bcdi_dl.models.phase_corrector import is_corrector
    from napari_bcdi_dl.models.registry import load_model, model_card

    model = load_model("phase_corrector")
    card = model_card("phase_corrector")
    assert is_corrector(model) and card["kind"] == "phase_corrector" and card["arch"]["corrector"]
    assert card["held_out"]["val_wca"] < card["held_out_baselines"]["estimate_wca"] < card[
        "held_out_baselines"]["predicted_wca"]
    assert "pipeline_quality" in card and card["data_commands"]
    assert resolve_corrector("default") is load_model(DEFAULT_CORRECTOR)
    assert resolve_corrector(None) is None


def test_estimates_in_worker_processes_are_the_same(tiny_sets, tmp_path):
    """``workers=2`` runs the engine's estimates in spawned processes: the shard is the one made in-process."""
    from napari_bcdi_dl.models.corrector_training import make_corrector_set

    make_corrector_set([tiny_sets / "phase"], tmp_path / "w2", n=4, seed=1, hio=(10, 20), er=10, workers=2,
                       log=lambda s: None)
    with np.load(tiny_sets / "train" / "shard_00000.npz") as a, np.load(tmp_path / "w2" / "shard_00000.npz") as b:
        for key in ("counts", "predicted", "phase"):
            np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_allclose(a["estimate"].astype(np.float32), b["estimate"].astype(np.float32), atol=1e-2)
