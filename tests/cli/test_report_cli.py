"""``bcdi-dl report``: a reconstruction or a strain file to a one-page PNG/PDF, with real files."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.core.io import write_intensity, write_reconstruction
from napari_bcdi_dl.core.simulate import simulate_pattern
from napari_bcdi_dl.core.types import Reconstruction

AU = 0.4078


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    sim = simulate_pattern(size=32, seed=9, phase_range=2.0, max_counts=1e5)
    history = [{"iteration": i, "llk": 4.0 / i + 0.5, "llk_free": 4.4 / i + 0.55} for i in range(1, 300, 10)]
    rec = write_reconstruction(d / "rec.npz", Reconstruction(obj=sim.obj, support=sim.support, llk=0.5, llk_free=0.6,
                                                             method="dl", history=history,
                                                             meta={"recipe": "HIO**200, ER**200"}))
    data = write_intensity(d / "data.npz", sim.intensity, sim.mask)
    return rec, data


def test_report_of_a_reconstruction_with_its_data(files, tmp_path, capsys):
    rec, data = files
    before = rec.read_bytes(), data.read_bytes()
    out = tmp_path / "report.png"
    assert main(["report", str(rec), "--out", str(out), "--data", str(data), "--voxel-size", "8", "--hkl", "1", "1",
                 "1", "--lattice", str(AU)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (rec.read_bytes(), data.read_bytes()) == before, "inputs untouched"
    assert not list(tmp_path.glob(".*.part*"))
    assert "report of rec.npz" in capsys.readouterr().out


def test_report_of_a_strain_file_as_pdf(files, tmp_path, capsys):
    rec, _ = files
    strain = tmp_path / "strain.npz"
    assert main(["strain", str(rec), "--out", str(strain), "--voxel-size", "8"]) == 0
    out = tmp_path / "report.pdf"
    assert main(["report", str(strain), "--out", str(out)]) == 0
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    capsys.readouterr()


def test_report_errors_are_one_line(files, tmp_path, capsys):
    rec, data = files
    cases = [
        (["report", str(rec), "--out", str(tmp_path / "r.jpg")], ".png or .pdf"),
        (["report", str(rec), "--out", str(tmp_path / "r.png"), "--energy", "9"], "partial geometry"),
        (["report", str(data), "--out", str(tmp_path / "r.png")], "not a reconstruction"),
        (["report", str(rec), "--out", str(tmp_path / "r.png"), "--threshold", "1.5"], "--threshold"),
        (["report", str(rec), "--out", str(rec.with_suffix(".png")), "--data", str(tmp_path / "none.npz")],
         "error"),
    ]
    for argv, match in cases:
        assert main(argv) == 2, argv
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert err and err[-1].startswith("bcdi-dl report: error:") and match in err[-1], (argv, err)
    assert not list(tmp_path.glob("r.*"))
    assert np.load(rec)["obj"].shape == (32, 32, 32)
