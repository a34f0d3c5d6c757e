"""``bcdi-dl phase``: real files in, real files out."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from napari_bcdi_dl.cli import main


def _pattern(n: int = 32) -> np.ndarray:
    c = np.arange(n) - n // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    obj = ((np.abs(x) <= 5) & (np.abs(y) <= 4) & (np.abs(z) <= 4)) * np.exp(
        0.5j * np.exp(-(x**2 + y**2) / 20)
    )
    i = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))) ** 2
    return np.random.default_rng(0).poisson(i * 1e5 / i.max()).astype(np.float32)


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "scan.npy"
    np.save(path, _pattern())
    return path


def test_phase_npz(data_file, tmp_path, capsys):
    out = tmp_path / "rec.npz"
    before = data_file.read_bytes()
    rc = main(
        [
            "phase",
            str(data_file),
            "--out",
            str(out),
            "--method",
            "conventional",
            "--recipe",
            "HIO**30, RAAR**30, ER**20",
            "--runs",
            "2",
            "--seed",
            "3",
        ]
    )
    assert rc == 0
    assert data_file.read_bytes() == before  # the input is untouched
    with np.load(out) as f:
        assert f["obj"].dtype == np.complex64 and f["obj"].shape == (32, 32, 32)
        assert f["support"].dtype == np.uint8 and 0 < f["support"].sum() < f["support"].size
        assert np.isfinite(float(f["llk"])) and np.isfinite(float(f["llk_free"]))
        assert str(f["method"]) == "conventional"
        # the crystal is centred
        com = np.argwhere(f["support"]).mean(axis=0)
        np.testing.assert_allclose(com, [16, 16, 16], atol=1.0)
    assert "best run" in capsys.readouterr().out


def test_phase_cxi_with_mask(data_file, tmp_path):
    mask = np.zeros((32, 32, 32), np.uint8)
    mask[:, 15, :] = 1
    mpath = tmp_path / "mask.npy"
    np.save(mpath, mask)
    out = tmp_path / "rec.cxi"
    rc = main(
        ["phase", str(data_file), "--out", str(out), "--mask", str(mpath), "--recipe", "HIO**20, ER**10"]
    )
    assert rc == 0 and out.exists()
    from napari_bcdi_dl.core.io import read

    back = read(out)
    assert back.kind == "object" and back.data.shape == (32, 32, 32)


def test_phase_errors_are_one_line(data_file, tmp_path, capsys):
    assert main(["phase", str(data_file), "--out", str(tmp_path / "rec.txt")]) == 2
    err = capsys.readouterr().err
    assert "bcdi-dl phase: error:" in err and ".npz or .cxi" in err and err.count("\n") == 1
    assert main(["phase", str(data_file), "--out", str(tmp_path / "r.npz"), "--recipe", "HOI**3"]) == 2
    assert "unknown algorithm" in capsys.readouterr().err
    zeros = tmp_path / "zeros.npy"
    np.save(zeros, np.zeros((16, 16, 16), np.float32))
    assert main(["phase", str(zeros), "--out", str(tmp_path / "r.npz")]) == 2
    assert "zero everywhere" in capsys.readouterr().err
    assert not (tmp_path / "r.npz").exists()
    assert main(["phase", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "r.npz")]) == 2


def test_method_dl_with_a_refinement_recipe_prints_the_recipe_run(data_file, tmp_path, capsys):
    out = tmp_path / "dl.npz"
    rc = main(["phase", str(data_file), "--out", str(out), "--method", "dl", "--refine", "HIO**10, ER**10",
               "--candidates", "2"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "refinement run: sup=20, pos=off, border=off, beta=0.9, HIO**10, ER**10" in text
    assert "candidate" in text and out.is_file()
    with np.load(out) as f:
        assert f["obj"].shape == (32, 32, 32) and str(f["method"]) == "dl"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--refine", "HIO**ten"], "refinement recipe 'HIO**ten'"),
        (["--refine", "WALK**3"], "unknown algorithm"),
        (["--candidates", "9"], "--candidates must be 1 to 8"),
        (["--refine", "paper", "--refine-iter", "10"], "not both"),
    ],
)
def test_bad_dl_options_are_refused_in_one_line(data_file, tmp_path, capsys, extra, message):
    rc = main(["phase", str(data_file), "--out", str(tmp_path / "r.npz"), "--method", "dl", *extra])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "r.npz").exists()


def test_conventional_prints_the_recipe_run_with_its_detwin_step(data_file, tmp_path, capsys):
    rc = main(["phase", str(data_file), "--out", str(tmp_path / "r.npz"), "--recipe", "HIO**150, ER**20"])
    assert rc == 0
    assert "recipe run: sup=20, pos=off, border=off, beta=0.9, HIO**100, DETWIN**40, HIO**10, ER**20" in \
        capsys.readouterr().out
