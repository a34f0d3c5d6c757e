"""``bcdi-dl classify``: one line of probabilities, a JSON file, one-line errors, the documented crop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.cli.classify import crop_note
from napari_bcdi_dl.core.simulate.dislocations import simulate_defect_pattern


@pytest.fixture(scope="module")
def pattern() -> np.ndarray:
    return simulate_defect_pattern(64, seed=31, label="edge", max_counts=1e7).intensity


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("bcdi-dl classify: error: ")
    return err


def test_classify_prints_one_line_and_writes_json(pattern, tmp_path, capsys):
    src = tmp_path / "scan.npy"
    np.save(src, pattern)
    before = src.read_bytes()
    out = tmp_path / "probs.json"
    assert main(["classify", str(src), "--json", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0
    doc = json.loads(out.read_text())
    probs = doc["probabilities"]
    assert list(probs) == ["none", "edge", "screw", "mixed"]
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    for k, v in probs.items():
        assert f"{k} {v:.3f}" in line
    assert line.endswith(f"-> {doc['label']}") and doc["label"] == max(probs, key=probs.get)
    assert doc["shape"] == [64, 64, 64] and doc["model_grid"] == 64
    assert src.read_bytes() == before  # the input is never modified


def test_non_cubic_stack_is_centred_and_cropped(pattern, tmp_path, capsys):
    # a non-cubic stack around the same peak: cropped along its long axes, padded along the short one
    stack = np.zeros((40, 80, 96), np.float32)
    stack[:, 8:72, 16:80] = pattern[12:52]
    src = tmp_path / "stack.npy"
    np.save(src, stack)
    out = tmp_path / "stack.json"
    assert main(["classify", str(src), "--json", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "(centred on the peak, z padded 40->64, y cropped 80->64, x cropped 96->64)" in line
    doc = json.loads(out.read_text())
    assert doc["shape"] == [40, 80, 96]
    assert sum(doc["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert crop_note((64, 64, 64), 64) == ""


def test_two_dimensional_array_is_refused(tmp_path, capsys):
    src = tmp_path / "frame.npy"
    np.save(src, np.ones((64, 64), np.float32))
    assert main(["classify", str(src)]) == 2
    assert "2 dimensions" in _one_error_line(capsys)


def test_nan_pattern_is_refused(pattern, tmp_path, capsys):
    bad = pattern.copy()
    bad[30:32, 30, 30] = np.nan
    src = tmp_path / "nan.npy"
    np.save(src, bad)
    out = tmp_path / "nan.json"
    assert main(["classify", str(src), "--json", str(out)]) == 2
    assert "NaN" in _one_error_line(capsys)
    assert not out.exists()


def test_model_level_checks_are_one_line():
    from napari_bcdi_dl.core.errors import BCDIError
    from napari_bcdi_dl.models.defects import check_pattern

    with pytest.raises(BCDIError, match="2 dimensions"):
        check_pattern(np.ones((8, 8)))
    with pytest.raises(BCDIError, match="NaN"):
        check_pattern(np.full((8, 8, 8), np.nan))
    with pytest.raises(BCDIError, match="no positive counts"):
        check_pattern(np.zeros((8, 8, 8)))
    with pytest.raises(BCDIError, match="real photon counts"):
        check_pattern(np.ones((8, 8, 8), np.complex64))


def test_bad_json_name_is_refused(pattern, tmp_path, capsys):
    src = tmp_path / "scan.npy"
    np.save(src, pattern)
    assert main(["classify", str(src), "--json", str(tmp_path / "probs.txt")]) == 2
    assert ".json" in _one_error_line(capsys)


@pytest.mark.parametrize("label", ["edge", "screw"])
def test_g_axis_z_tells_edge_from_screw(label, tmp_path, capsys):
    """A simulated crystal with G along z (seed 31, 10^7 photons): with --g-axis z the G-aware model gives
    the right type, and the line and the JSON say which model and axis were used."""
    p = simulate_defect_pattern(64, seed=31, label=label, max_counts=1e7, ranges={"g_direction": "z"})
    src = tmp_path / f"{label}.npy"
    np.save(src, p.intensity)
    out = tmp_path / f"{label}.json"
    assert main(["classify", str(src), "--g-axis", "z", "--json", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    doc = json.loads(out.read_text())
    probs = doc["probabilities"]
    assert doc["label"] == label and probs[label] > 0.6 and probs["none"] < 0.05
    other = "screw" if label == "edge" else "edge"
    assert probs[label] > 10 * probs[other]
    assert doc["model"] == "defects_gz" and doc["g_axis"] == "z"
    assert line.endswith(f"-> {label}  (G along z, model defects_gz)")


def test_without_g_axis_the_g_random_model_is_recorded(pattern, tmp_path, capsys):
    src = tmp_path / "scan.npy"
    np.save(src, pattern)
    out = tmp_path / "probs.json"
    assert main(["classify", str(src), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == "defects" and doc["g_axis"] is None
    assert "G along" not in capsys.readouterr().out


def test_bad_g_axis_is_one_line(pattern, tmp_path, capsys):
    src = tmp_path / "scan.npy"
    np.save(src, pattern)
    out = tmp_path / "probs.json"
    assert main(["classify", str(src), "--g-axis", "q", "--json", str(out)]) == 2
    err = _one_error_line(capsys)
    assert "--g-axis" in err and "'q'" in err and "z, y or x" in err
    assert not out.exists()
