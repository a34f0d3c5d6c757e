"""``bcdi-dl strain``: real files in, real npz out, clear errors."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.core.io import write_npz, write_reconstruction
from napari_bcdi_dl.core.types import Reconstruction

AU = 0.4078
G111 = 2 * np.pi * np.sqrt(3) / AU
KEYS = {"amplitude", "phase", "displacement", "het_strain", "support", "voxel_size", "meta_json"}  # cdiutils-like


def _linear_strain_object(n: int = 32, eps0: float = 3e-3, voxel: float = 2.0):
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) - n // 2] * 3, indexing="ij")
    s = (z / 11) ** 2 + (y / 9) ** 2 + (x / 8) ** 2 <= 1
    u = eps0 * z * voxel  # nm, G along z
    return (s * np.exp(1j * G111 * u)).astype(np.complex64), s.astype(np.uint8)


@pytest.fixture
def result_file(tmp_path):
    obj, s = _linear_strain_object()
    path = tmp_path / "rec.npz"
    write_reconstruction(path, Reconstruction(obj=obj, support=s, llk=1.0, method="conventional"))
    return path


def test_strain_cli_writes_the_keys_and_the_right_strain(result_file, tmp_path, capsys):
    out = tmp_path / "strain.npz"
    before = result_file.read_bytes()
    status = main(
        ["strain", str(result_file), "--out", str(out), "--hkl", "1", "1", "1", "--lattice", str(AU),
         "--voxel-size", "2", "--keep-ramp", "--offset", "none"]
    )
    assert status == 0
    assert result_file.read_bytes() == before  # the input is untouched
    assert not list(tmp_path.glob(".*.part*"))  # nothing half-written left behind
    with np.load(out) as f:
        assert KEYS <= set(f.files)
        s = f["support"].astype(bool)
        assert f["support"].dtype == np.uint8
        for key in ("amplitude", "phase", "displacement", "het_strain"):
            assert f[key].dtype == np.float32, key
        np.testing.assert_allclose(f["voxel_size"], [2.0, 2.0, 2.0])
        np.testing.assert_allclose(f["het_strain"][s], 3e-3, rtol=1e-4)
        # strain and phase outside the support are NaN, as cdiutils writes them
        for key in ("phase", "displacement", "het_strain"):
            assert np.isnan(f[key][~s]).all() and np.isfinite(f[key][s]).all(), key
        assert str(f["frame"]) == "array"
        assert '"method": "conventional"' in str(f["meta_json"])
    with zipfile.ZipFile(out) as z:  # compressed members
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    captured = capsys.readouterr()
    assert "array frame" in captured.out and "G direction unknown" in captured.err


def test_strain_cli_with_geometry_goes_to_the_lab_frame(result_file, tmp_path, capsys):
    out = tmp_path / "lab.npz"
    status = main(
        ["strain", str(result_file), "--out", str(out), "--energy", "9", "--distance", "0.5", "--pixel", "55e-6",
         "--rocking-step", "0.01", "--hkl", "1", "1", "1", "--lattice", str(AU)]
    )
    assert status == 0
    with np.load(out) as f:
        assert str(f["frame"]) == "lab"
        v = f["voxel_size"]
        assert np.all(v == v[0]) and 10 < v[0] < 60  # nm, finest detector-frame voxel
        assert float(f["g_norm"]) == pytest.approx(G111)
        assert f["support"].sum() > 100
    assert "symmetric vertical Bragg geometry assumed" in capsys.readouterr().err
    # the skewed detector frame on request
    out2 = tmp_path / "det.npz"
    assert main(["strain", str(result_file), "--out", str(out2), "--energy", "9", "--distance", "0.5", "--pixel",
                 "55e-6", "55e-6", "--rocking-step", "0.01", "--delta", "34", "--eta", "17", "--hkl", "1", "1",
                 "1", "--lattice", str(AU), "--frame", "detector"]) == 0
    with np.load(out2) as f:
        assert str(f["frame"]) == "detector" and f["het_strain"].shape == (32, 32, 32)


def test_strain_cli_errors(result_file, tmp_path, capsys):
    data = tmp_path / "pattern.npz"
    write_npz(data, data=np.ones((8, 8, 8), np.float32))
    assert main(["strain", str(data), "--out", str(tmp_path / "o.npz")]) == 2
    assert "not a reconstruction" in capsys.readouterr().err
    assert main(["strain", str(result_file), "--out", str(tmp_path / "o.h5")]) == 2
    assert ".npz" in capsys.readouterr().err
    assert main(["strain", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o.npz")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["strain", str(result_file), "--out", str(result_file)]) == 2  # never over the input
    assert "input" in capsys.readouterr().err
    assert main(["strain", str(result_file), "--out", str(tmp_path / "o.npz"), "--pixel", "1", "2", "3"]) == 2
    assert "--pixel" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("given, missing", [
    (["--energy", "9"], ["--distance", "--pixel", "--rocking-step"]),
    (["--energy", "9", "--distance", "0.5", "--pixel", "55e-6"], ["--rocking-step"]),
])
def test_strain_cli_refuses_a_partial_geometry(result_file, tmp_path, capsys, given, missing):
    out = tmp_path / "partial.npz"
    status = main(["strain", str(result_file), "--out", str(out), "--hkl", "1", "1", "1", "--lattice", str(AU),
                   *given])
    assert status == 2 and not out.exists()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("bcdi-dl strain: error: partial geometry"), lines
    for name in missing:
        assert name in lines[0]


def test_strain_cli_hkl_needs_the_lattice(result_file, tmp_path, capsys):
    assert main(["strain", str(result_file), "--out", str(tmp_path / "o.npz"), "--hkl", "1", "1", "1"]) == 2
    err = capsys.readouterr().err
    assert "--hkl given but --lattice missing" in err


def test_strain_cli_warns_when_the_angles_disagree_with_hkl(result_file, tmp_path, capsys):
    out = tmp_path / "warn.npz"
    # 111 of gold at 9 keV is at 2θ = 34.02°: a delta of 39° is another reflection or a wrong energy
    assert main(["strain", str(result_file), "--out", str(out), "--energy", "9", "--distance", "0.5", "--pixel",
                 "55e-6", "--rocking-step", "0.01", "--delta", "39", "--hkl", "1", "1", "1", "--lattice",
                 str(AU)]) == 0
    warning = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(warning) == 1 and "39.000°" in warning[0] and "34.0" in warning[0], warning
