"""``bcdi-dl simulate`` and ``bcdi-dl dataset``: real files written and read back, one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.cli import simulate as cli_simulate
from napari_bcdi_dl.core import io
from napari_bcdi_dl.core.simulate import FIELDS, SHAPES, load_dataset
from napari_bcdi_dl.core.simulate.datasets import read_manifest


def test_cli_choices_match_core():
    assert tuple(cli_simulate.SHAPES) == tuple(SHAPES)
    assert tuple(cli_simulate.FIELDS) == tuple(FIELDS)


@pytest.mark.parametrize("suffix", [".npz", ".cxi"])
def test_simulate_writes_intensity_mask_and_truth(tmp_path, capsys, suffix):
    out = tmp_path / f"sim{suffix}"
    rc = main(
        [
            "simulate",
            str(out),
            "--size",
            "48",
            "--shape",
            "winterbottom",
            "--field",
            "cosines",
            "--phase-range",
            "4pi",
            "--oversampling",
            "3,2.5,3",
            "--max-counts",
            "1e5",
            "--gap",
            "cross:6",
            "--seed",
            "3",
        ]
    )
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    loaded = io.read(out)
    assert loaded.kind == "intensity" and loaded.data.shape == (48, 48, 48)
    assert loaded.mask is not None and loaded.mask.sum() > 0
    assert np.all(loaded.data[loaded.mask == 1] == 0)
    with np.load(tmp_path / "sim_truth.npz") as t:
        params = json.loads(str(t["params_json"]))
        obj, support, expected = t["obj"], t["support"], t["expected"]
        assert obj.dtype == np.complex64 and support.dtype == np.uint8
        assert set(t.files) >= {
            "obj",
            "support",
            "expected",
            "reciprocal_phase",
            "phase_field",
            "params_json",
        }
    assert params["phase_range"] == pytest.approx(4 * math.pi)
    assert params["oversampling"] == [3.0, 2.5, 3.0] and params["shape"] == "winterbottom"
    assert expected.max() == pytest.approx(1e5, rel=1e-5)
    # the truth opens as a reconstruction with the project's reader
    truth = io.read(tmp_path / "sim_truth.npz")
    assert truth.kind == "object" and truth.support is not None


def test_simulate_is_reproducible(tmp_path):
    for name in ("a.npz", "b.npz"):
        assert (
            main(["simulate", str(tmp_path / name), "--size", "32", "--seed", "11", "--shape", "random"]) == 0
        )
    np.testing.assert_array_equal(io.read(tmp_path / "a.npz").data, io.read(tmp_path / "b.npz").data)


@pytest.mark.parametrize(
    "args,match",
    [
        (["--oversampling", "1.5"], "below 2"),
        (["--max-counts", "-5"], "positive"),
        (["--size", "16", "--oversampling", "4"], "leaves a crystal"),
        (["--phase-range", "7pi"], "outside 0–6π"),
        (["--phase-range", "lots"], "not understood"),
        (["--oversampling", "3,3"], "one number or three"),
        (["--gap", "cross:wide"], "widths must be integers"),
    ],
)
def test_simulate_bad_parameters_one_line_exit_2(tmp_path, capsys, args, match):
    out = tmp_path / "bad.npz"
    rc = main(["simulate", str(out), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("bcdi-dl simulate: error: ") and err.count("\n") == 1
    assert pytest.importorskip("re").search(match, err), err
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing written


def test_simulate_output_suffix(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "x.tif")]) == 2
    assert "must end in .npz or .cxi" in capsys.readouterr().err


def test_dataset_command_generates_and_resumes(tmp_path, capsys):
    out = tmp_path / "set"
    args = [
        "dataset",
        "inpaint",
        str(out),
        "--n",
        "5",
        "--size",
        "32",
        "--seed",
        "2",
        "--workers",
        "1",
        "--shard-size",
        "2",
        "--quiet",
    ]
    assert main(args) == 0
    assert "complete" in capsys.readouterr().out
    data = load_dataset(out)
    assert data["patches"].shape == (5, 32, 32, 32)
    assert main(args) == 0  # again: nothing to do, still complete
    np.testing.assert_array_equal(load_dataset(out)["patches"], data["patches"])


def test_dataset_edge_sigma_option(tmp_path, capsys):
    out = tmp_path / "sharp"
    assert main(["dataset", "inpaint", str(out), "--n", "2", "--size", "32", "--workers", "1",
                 "--edge-sigma", "0", "0.2", "--quiet"]) == 0
    manifest = read_manifest(out)
    assert manifest["overrides"] == {"edge_sigma": [0.0, 0.2]}
    assert all(0.0 <= p["edge_sigma"] <= 0.2 for p in load_dataset(out)["params"])


def test_dataset_phase_range_low_option(tmp_path):
    out = tmp_path / "flat"
    assert main(["dataset", "phase", str(out), "--n", "3", "--size", "32", "--workers", "1",
                 "--low-strain-fraction", "1", "--phase-range-low", "0", "1", "--quiet"]) == 0
    assert read_manifest(out)["overrides"] == {"low_strain_fraction": 1.0, "phase_range_low": [0.0, 1.0]}
    assert all(0.0 <= p["phase_range"] <= 1.0 for p in load_dataset(out)["params"])


@pytest.mark.parametrize(
    "args,match",
    [
        (["--n", "4", "--size", "48"], "not one of 32, 64, 128"),
        (["--n", "0"], "at least 1"),
        (["--n", "2", "--edge-sigma", "0.4", "0.1"], "0 <= LO <= HI <= 3"),
        (["--n", "2", "--phase-range-low", "1", "9"], "0 <= LO <= HI <= 6.283 rad"),
    ],
)
def test_dataset_bad_parameters(tmp_path, capsys, args, match):
    rc = main(["dataset", "phase", str(tmp_path / "d"), *args, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and err.count("\n") == 1
