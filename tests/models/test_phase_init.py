"""``bcdi-dl train phase --init`` continues from the shipped weights: the training loss on a tiny set falls."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_bcdi_dl.core.simulate import generate_dataset


@pytest.mark.slow
def test_init_continues_from_the_shipped_weights_and_lowers_the_loss(tmp_path):
    from napari_bcdi_dl.cli import main
    from napari_bcdi_dl.models.dl_phasing import load_phase_model
    from napari_bcdi_dl.models.phase_training import PhaseSet, held_out_metrics, validation_batches
    from napari_bcdi_dl.models.registry import model_path

    data = tmp_path / "tiny"
    generate_dataset("phase", data, 4, size=32, seed=31, workers=1)
    shipped, card = load_phase_model()
    arch = card["arch"]
    val = PhaseSet([data], 32, keep_intensity=True)
    before = held_out_metrics(shipped, validation_batches(val, 2), val.phase_range)["val_wca"]
    out = tmp_path / "run"
    argv = ["train", "phase", "--data", str(data), "--val", str(data), "--out", str(out), "--init",
            str(model_path("phase_unet32")), "--steps", "24", "--steps-per-epoch", "8", "--batch", "4",
            "--lr", "1e-3", "--warmup", "0", "--curriculum-steps", "0", "--counts-log10", "7", "8",
            "--quiet", "--size", "32",
            "--base", str(arch["base"]), "--depth", str(arch["depth"]), "--growth", str(arch["growth"]),
            "--stem", arch["stem"]]
    assert main(argv) == 0
    log = json.loads((out / "log.json").read_text())
    losses = [r["train_loss"] for r in log]
    # the run started from the shipped weights (a fresh network scores ~1) and fitted the tiny set further
    assert before < 0.95 and losses[0] < 0.95 and np.all(np.isfinite(losses)), (before, losses)
    assert losses[-1] < losses[0], losses
