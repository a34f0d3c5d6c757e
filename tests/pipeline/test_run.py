"""``bcdi-dl run`` and ``pipeline.run_scan``: the same arrays as the single-step commands, reproducible from
the sidecar, provenance in every output, inputs untouched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.pipeline.provenance import read_provenance

from .conftest import FAST_PHASE, write_config

STRAIN_KEYS = ("amplitude", "phase", "displacement", "het_strain", "support")  # bcdi-dl strain's layout


def _arrays(path, keys):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k].copy() for k in keys}


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        np.testing.assert_array_equal(v, b[k], err_msg=k)


def test_yaml_round_trip_config_run_sidecar_rerun_gives_the_same_arrays(scan_dir, capsys):
    scan = scan_dir / "scan_a.npz"
    before = scan.read_bytes()
    cfg = write_config(scan_dir, scans=["scan_a.npz"], phase=FAST_PHASE,
                       export={"reconstruction": ["npz", "cxi"], "vti": True})
    r1, r2 = scan_dir / "r1", scan_dir / "r2"
    assert main(["run", str(cfg), "--out", str(r1), "--quiet"]) == 0
    assert "bcdi-dl run: scan_a: conventional" in capsys.readouterr().out
    assert scan.read_bytes() == before  # the input is never modified
    assert {p.name for p in r1.iterdir()} == {"reconstruction.npz", "reconstruction.cxi", "strain.npz", "strain.vti",
                                              "provenance.yaml", "log.txt", "done.json", "thumbnail.png"}

    sidecar = r1 / "provenance.yaml"
    assert main(["run", str(sidecar), "--out", str(r2), "--quiet"]) == 0
    _same(_arrays(r1 / "reconstruction.npz", ("obj", "support")), _arrays(r2 / "reconstruction.npz", ("obj", "support")))
    _same(_arrays(r1 / "strain.npz", STRAIN_KEYS), _arrays(r2 / "strain.npz", STRAIN_KEYS))

    # the sidecar is the resolved configuration of the run (the same both times) plus provenance
    s1, s2 = (yaml.safe_load((r / "provenance.yaml").read_text()) for r in (r1, r2))
    p1 = s1.pop("provenance")
    s2.pop("provenance")
    assert s1 == s2
    assert s1["phase"]["recipe"] == FAST_PHASE["recipe"] and s1["phase"]["backend"] == "numpy"
    assert s1["scans"] == [{"file": str(scan), "name": "scan_a"}]
    assert p1["inputs"][0]["sha256"] == hashlib.sha256(before).hexdigest()
    assert set(p1["timings_s"]) >= {"read", "mask", "phase", "strain", "export", "total"}
    from napari_bcdi_dl import __version__

    assert p1["version"] == __version__
    # ... and is stored in every output
    for out in ("reconstruction.npz", "reconstruction.cxi", "strain.npz"):
        prov = read_provenance(r1 / out)
        assert prov["inputs"][0]["sha256"] == p1["inputs"][0]["sha256"], out
    with np.load(r1 / "reconstruction.npz") as f:
        assert json.loads(str(f["meta_json"]))["provenance"]["results"]["method"] == "conventional"


def test_run_gives_the_arrays_of_the_phase_and_strain_commands(scan_dir, tmp_path):
    scan = scan_dir / "scan_b.npz"
    mask = np.zeros((32, 32, 32), np.uint8)
    mask[:, 15:17, :] = 1
    np.save(scan_dir / "gap.npy", mask)
    cfg = write_config(scan_dir, scans=["scan_b.npz"], mask={"file": "gap.npy"},
                       phase={**FAST_PHASE, "seed": 3, "support_threshold": 0.3, "support_method": "rms"},
                       strain={"offset": "com", "isosurface": 0.2})
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    rec = tmp_path / "rec.npz"
    assert main(["phase", str(scan), "--out", str(rec), "--mask", str(scan_dir / "gap.npy"), "--recipe",
                 FAST_PHASE["recipe"], "--runs", "2", "--seed", "3", "--support-threshold", "0.3",
                 "--support-method", "rms"]) == 0
    assert main(["strain", str(rec), "--out", str(tmp_path / "strain.npz"), "--offset", "com",
                 "--isosurface", "0.2"]) == 0
    _same(_arrays(tmp_path / "run" / "reconstruction.npz", ("obj", "support")), _arrays(rec, ("obj", "support")))
    _same(_arrays(tmp_path / "run" / "strain.npz", STRAIN_KEYS), _arrays(tmp_path / "strain.npz", STRAIN_KEYS))


def test_run_with_a_baseline_inpainting_is_the_inpaint_then_phase_commands(scan_dir, patterns, tmp_path):
    data = patterns[3].copy()
    data[:, 14:16, :] = 0
    mask = np.zeros(data.shape, np.uint8)
    mask[:, 14:16, :] = 1
    np.savez(scan_dir / "gappy.npz", data=data, mask=mask)
    cfg = write_config(scan_dir, scans=["gappy.npz"], phase=FAST_PHASE,
                       inpaint={"method": "linear", "keep_mask": True}, strain={"enabled": False})
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert not (tmp_path / "run" / "strain.npz").exists()
    assert main(["inpaint", str(scan_dir / "gappy.npz"), "--method", "linear", "--out",
                 str(tmp_path / "filled.npz"), "--quiet"]) == 0
    assert main(["phase", str(tmp_path / "filled.npz"), "--out", str(tmp_path / "rec.npz"), "--recipe",
                 FAST_PHASE["recipe"], "--runs", "2"]) == 0
    _same(_arrays(tmp_path / "run" / "reconstruction.npz", ("obj", "support")),
          _arrays(tmp_path / "rec.npz", ("obj", "support")))
    assert "inpaint (linear): 2048 gap voxels filled" in (tmp_path / "run" / "log.txt").read_text()


def test_run_refuses_a_folder_that_is_not_a_result_folder_and_a_config_of_several_scans(scan_dir, capsys):
    cfg = write_config(scan_dir, scans=["scan_a.npz"], phase=FAST_PHASE)
    busy = scan_dir / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("keep me")
    assert main(["run", str(cfg), "--out", str(busy)]) == 2
    assert "holds other files (thesis.tex)" in capsys.readouterr().err
    assert (busy / "thesis.tex").read_text() == "keep me"
    cfg2 = write_config(scan_dir, "two.yaml", scans=["scan_a.npz", "scan_b.npz"])
    assert main(["run", str(cfg2), "--out", str(scan_dir / "x")]) == 2
    assert "lists 2 scans; 'bcdi-dl run' takes one scan: use 'bcdi-dl batch'" in capsys.readouterr().err


def test_a_failing_scan_is_a_one_line_error_and_a_failed_folder(scan_dir, capsys):
    (scan_dir / "bad.npz").write_bytes(b"not a zip file at all")
    cfg = write_config(scan_dir, scans=["bad.npz"], phase=FAST_PHASE)
    out = scan_dir / "rbad"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a NumPy .npz archive" in err
    assert (out / "failed.json").is_file() and not (out / "done.json").exists()
    assert "FAILED:" in (out / "log.txt").read_text()
    assert not [p for p in scan_dir.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("method", ["conventional"])
def test_a_conventional_run_never_imports_tensorflow(scan_dir, method):
    cfg = write_config(scan_dir, scans=["scan_a.npz"], phase={**FAST_PHASE, "method": method})
    code = ("import sys; from napari_bcdi_dl.cli import main; "
            f"rc = main(['run', {str(cfg)!r}, '--out', {str(scan_dir / 'tf')!r}, '--quiet']); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
            "print(rc, bad); sys.exit(1 if rc or bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
