"""The defect classifier: the network, its input, training, and the shipped model on two easy cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_bcdi_dl.core.simulate.dislocations import simulate_defect_pattern
from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.models.defects import (
    LABELS,
    build_defect_net,
    check_g_axis,
    classify,
    model_for,
    orient_to_g,
    preprocess,
)
from napari_bcdi_dl.models.defects_training import augment, augment_keep_g, metrics, train_defects


def test_network_shapes_and_probabilities():
    model = build_defect_net(32, (4, 8, 8, 8), dense=8)
    x = np.random.default_rng(0).random((3, 32, 32, 32, 1)).astype(np.float32)
    p = np.asarray(model(x, training=False))
    assert p.shape == (3, 4)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5) and (p >= 0).all()


def test_preprocess_centres_and_crops():
    p = simulate_defect_pattern(64, seed=2, label="none", max_counts=1e6)
    x = preprocess(p.intensity)
    assert x.shape == (64, 64, 64) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1.0
    # a non-cubic stack around the same peak, shifted: the same central region reaches the network
    stack = np.zeros((48, 80, 96), np.float32)
    stack[:, 10:74, 20:84] = p.intensity[8:56]
    y = preprocess(stack)
    assert y.shape == (64, 64, 64)
    assert np.unravel_index(np.argmax(y), y.shape) == np.unravel_index(np.argmax(x), x.shape)


def test_augmentation_keeps_the_content_and_metrics_count_right():
    rng = np.random.default_rng(1)
    a = np.random.default_rng(2).random((8, 8, 8))
    b = augment(a, rng)
    assert sorted(b.ravel()) == sorted(a.ravel())
    probs = np.array([[0.9, 0.05, 0.03, 0.02], [0.1, 0.6, 0.2, 0.1], [0.2, 0.5, 0.2, 0.1], [0.6, 0.1, 0.1, 0.2]])
    m = metrics(probs, np.array([0, 1, 2, 3]))
    assert m["accuracy"] == 0.5 and m["detection_accuracy"] == 0.75 and m["type_accuracy"] == 0.5
    assert m["confusion_matrix"][3][0] == 1 and m["false_positive_rate"] == 0.0 and m["miss_rate"] == 1 / 3


def test_g_preserving_augmentation_keeps_axis_0():
    # a profile along axis 0 that no flip of it maps onto a profile along axis 1 or 2
    a = np.random.default_rng(3).random((6, 6, 6))
    a += np.arange(6)[:, None, None] * 10.0
    rng = np.random.default_rng(4)
    seen = set()
    for _ in range(256):
        b = augment_keep_g(a, rng)
        assert sorted(b.ravel()) == sorted(a.ravel())
        prof = b.sum(axis=(1, 2))
        assert np.allclose(prof, a.sum(axis=(1, 2))) or np.allclose(prof, a.sum(axis=(1, 2))[::-1])
        seen.add(b.tobytes())
    assert len(seen) == 16  # 2 (swap of y and x) x 8 (flips): all of them, and only them, drawn


def test_g_axis_orientation_and_checks():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert orient_to_g(a, None) is a and orient_to_g(a, "z") is a
    assert orient_to_g(a, "y").shape == (3, 2, 4) and orient_to_g(a, "x").shape == (4, 3, 2)
    assert np.array_equal(orient_to_g(a, "x"), np.swapaxes(a, 0, 2))
    assert orient_to_g(None, "y") is None
    assert check_g_axis("Y") == "y" and check_g_axis("unknown") is None and check_g_axis(None) is None
    assert model_for(None) == "defects" and model_for("x") == "defects_gz"
    with pytest.raises(BCDIError, match="z, y or x") as err:
        check_g_axis("w")
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_training_runs_checkpoints_and_exports_a_card(tmp_path):
    from napari_bcdi_dl.core.simulate.defects_dataset import generate_defects_dataset

    generate_defects_dataset(tmp_path / "train", n=8, size=64, seed=1, workers=1)
    generate_defects_dataset(tmp_path / "val", n=4, size=64, seed=2, workers=1)
    export = tmp_path / "defects.keras"
    res = train_defects([tmp_path / "train"], [tmp_path / "val"], str(tmp_path / "run"), steps=2, batch=2,
                        steps_per_epoch=1, widths=(4, 4, 8, 8), export=str(export))
    assert res.step == 2 and (tmp_path / "run" / "checkpoints" / "latest").exists()
    card = json.loads(export.with_suffix(".json").read_text())
    assert card["n_train"] == 8 and card["n_val"] == 4 and card["labels"] == list(LABELS)
    assert len(card["held_out"]["confusion_matrix"]) == 4 and card["held_out"]["n"] == 4


@pytest.mark.slow
def test_train_cli_continues_from_init_with_g_kept_along_z(tmp_path, capsys):
    """bcdi-dl train defects --init M --keep-g-axis z: starts from M's network (its widths, not the
    default ones), refuses a G-random set, and records both in the card."""
    from napari_bcdi_dl.cli import main
    from napari_bcdi_dl.core.simulate.defects_dataset import generate_defects_dataset
    from napari_bcdi_dl.models.training import save_model_atomic

    generate_defects_dataset(tmp_path / "train", n=8, size=64, seed=1, workers=1, g_direction="z")
    generate_defects_dataset(tmp_path / "val", n=4, size=64, seed=2, workers=1, g_direction="z")
    generate_defects_dataset(tmp_path / "rand", n=4, size=64, seed=2, workers=1)
    init = tmp_path / "init.keras"
    save_model_atomic(build_defect_net(64, (4, 4, 8, 8), dense=8), str(init))
    export = tmp_path / "gz.keras"
    base = ["train", "defects", "--data", str(tmp_path / "train"), "--out", str(tmp_path / "run"),
            "--init", str(init), "--keep-g-axis", "z", "--steps", "2", "--batch", "2",
            "--steps-per-epoch", "1", "--export", str(export), "--quiet"]
    assert main(base + ["--val", str(tmp_path / "rand")]) == 2  # a G-random held-out set is refused
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "G direction random, not along z" in err
    assert main(base + ["--val", str(tmp_path / "val")]) == 0
    card = json.loads(export.with_suffix(".json").read_text())
    assert card["init"] == str(init) and card["g_axis"] == "z"
    assert card["widths"] == [4, 4, 8, 8]  # the network of --init, not the default 8-16-32-64
    assert "G kept along axis 0" in card["augmentation"]
    assert card["data"][0]["g_axis"] == "z" and card["val"][0]["g_axis"] == "z"
    assert card["command"].startswith("bcdi-dl ")  # the command line (sys.argv: here pytest's)
    assert main(base + ["--val", str(tmp_path / "val"), "--keep-g-axis", "q"]) == 2
    assert "z, y or x" in capsys.readouterr().err


# Two fixed easy cases: one crystal (seed 107: same shape, orientation and strain field) without and with a
# screw dislocation, 10^7 photons.
EASY = {"none": 107, "screw": 107}


@pytest.mark.parametrize("label", list(EASY))
def test_shipped_model_separates_two_easy_cases(label):
    from napari_bcdi_dl.models.registry import load_model, model_card

    card = model_card("defects")
    assert card is not None and card["labels"] == list(LABELS)
    model = load_model("defects")  # offline: package data
    p = simulate_defect_pattern(64, seed=EASY[label], label=label, max_counts=1e7)
    probs = classify(p.intensity, model=model)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    # detection: the defect-free crystal is "none", the dislocated one is not (the character, edge vs
    # screw, is not separated by the shipped model: docs/defects.md)
    if label == "none":
        assert probs["none"] > 0.8
    else:
        assert probs["none"] < 0.2


# The G-aware model on a crystal with G along y (seed 107, 10^7 photons): classify(..., g_axis="y") swaps y
# with z so that G lies along axis 0, as the model was trained, and tells edge from screw.
@pytest.mark.parametrize("label", ["edge", "screw"])
def test_g_aware_model_tells_edge_from_screw_with_g_along_y(label):
    from napari_bcdi_dl.models.registry import model_card

    card = model_card("defects_gz")
    assert card is not None and card["g_axis"] == "z" and card["labels"] == list(LABELS)
    p = simulate_defect_pattern(64, seed=107, label=label, max_counts=1e7, ranges={"g_direction": "y"})
    probs = classify(p.intensity, g_axis="y")  # the default model for an axis: defects_gz
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    other = "screw" if label == "edge" else "edge"
    assert max(probs, key=probs.get) == label and probs[label] > 10 * probs[other]
