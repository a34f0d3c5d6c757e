"""The defect classifier: the network, its input, training, and the shipped model on two easy cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_bcdi_dl.core.simulate.dislocations import simulate_defect_pattern
from napari_bcdi_dl.models.defects import LABELS, build_defect_net, classify, preprocess
from napari_bcdi_dl.models.defects_training import augment, metrics, train_defects


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
