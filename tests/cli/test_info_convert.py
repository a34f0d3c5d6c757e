"""``bcdi-dl info`` and ``bcdi-dl convert`` on real files (and once through the installed console script)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bcdi_test_files import bliss_dataset, complex_object, edf_frames, pattern, pynx_result_cxi, with_gap

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.core import io


@pytest.fixture(scope="module")
def gapped():
    return with_gap(pattern((16, 40, 36)), rows=(18, 21))


def test_info_on_bliss_scan(tmp_path, capsys, gapped):
    master = bliss_dataset(tmp_path, {1: gapped, 2: gapped})
    assert main(["info", str(master), "--scan", "2"]) == 0
    out = capsys.readouterr().out
    assert "scan 2.1, detector mpx1x4" in out
    assert "shape (z, y, x): (16, 40, 36)" in out
    assert "dtype: float32 (stored as uint32)" in out
    assert f"max: {gapped.max():g}" in out
    assert f"total counts: {float(gapped.sum()):.6g}" in out
    assert "centre of mass (z, y, x): (7.50," in out
    assert "rows (axis 1) 18:21 (3 wide)" in out
    assert "rocking motor: eta, step 0.005 deg" in out


def test_info_on_real_pattern(tmp_path, capsys, real_pattern):
    np.savez(tmp_path / "real.npz", data=real_pattern)
    assert main(["info", str(tmp_path / "real.npz")]) == 0
    out = capsys.readouterr().out
    assert "shape (z, y, x): (64, 64, 64)" in out
    assert f"max: {real_pattern.max():.6g}" in out


def test_info_on_result(tmp_path, capsys):
    obj, sup = complex_object()
    assert main(["info", str(pynx_result_cxi(tmp_path / "r.cxi", obj, sup))]) == 0
    out = capsys.readouterr().out
    assert "kind: object" in out and "llk: 1.0523" in out and f"support: {int(sup.sum())} voxels" in out


@pytest.mark.parametrize("suffix", [".npz", ".cxi"])
def test_convert_bliss_to_npz_and_cxi(tmp_path, capsys, gapped, suffix):
    master = bliss_dataset(tmp_path, {1: gapped})
    out = tmp_path / f"scan1{suffix}"
    assert main(["convert", str(master), str(out), "--scan", "1.1", "--roi", "2,38,4,32"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    loaded = io.read(out)
    np.testing.assert_array_equal(loaded.data, gapped[:, 2:38, 4:32].astype(np.float32))
    assert loaded.geometry.energy_kev == pytest.approx(9.0)
    assert loaded.geometry.roi == (2, 38, 4, 32)


def test_convert_frames_and_result(tmp_path, gapped):
    edf_frames(tmp_path / "frames", gapped)
    assert main(["convert", str(tmp_path / "frames"), str(tmp_path / "f.cxi")]) == 0
    np.testing.assert_array_equal(io.read(tmp_path / "f.cxi").data, gapped.astype(np.float32))
    obj, sup = complex_object()
    src = pynx_result_cxi(tmp_path / "r.cxi", obj, sup)
    assert main(["convert", str(src), str(tmp_path / "r.npz")]) == 0
    back = io.read(tmp_path / "r.npz")
    assert back.kind == "object" and back.meta["llk"] == pytest.approx(1.0523)
    np.testing.assert_array_equal(back.support, sup)


def test_convert_refuses_to_overwrite_its_input(tmp_path, capsys, gapped):
    np.savez(tmp_path / "in.npz", data=gapped)
    before = (tmp_path / "in.npz").read_bytes()
    assert main(["convert", str(tmp_path / "in.npz"), str(tmp_path / "in.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the input file" in err
    assert (tmp_path / "in.npz").read_bytes() == before


def test_console_script_subprocess(tmp_path, gapped):
    exe = Path(sys.executable).with_name("bcdi-dl")
    np.save(tmp_path / "s.npy", gapped)
    run = subprocess.run(
        [str(exe), "info", str(tmp_path / "s.npy")], check=False, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "detected gap planes: 1" in run.stdout
    bad = subprocess.run(
        [str(exe), "info", str(tmp_path / "nope.npy")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("bcdi-dl info: error:") and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr
