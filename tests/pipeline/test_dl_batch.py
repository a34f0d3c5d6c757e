"""The default embedded LocalCluster running DL phasing: TensorFlow is loaded once per worker, not per scan."""

from __future__ import annotations

import csv

import pytest

from napari_bcdi_dl.cli import main

from .conftest import write_config


@pytest.mark.slow
def test_dl_batch_on_the_embedded_cluster_loads_tensorflow_once_per_worker(scan_dir, capsys):
    cfg = write_config(scan_dir, scans=["scan_a.npz", "scan_b.npz"],
                       phase={"method": "dl", "refine": "HIO**20, ER**20", "candidates": 1, "tta": 1},
                       export={"thumbnail": False})
    out = scan_dir / "dl"
    assert main(["batch", str(cfg), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert "2 done, 0 failed" in capsys.readouterr().out
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == ["done", "done"] and {r["method"] for r in rows} == {"dl"}
    assert len({r["worker"] for r in rows}) == 1  # one worker process ran both
    assert sorted(r["cold_start"] for r in rows) == ["False", "True"]  # the model loaded for the first only
    first, second = sorted(rows, key=lambda r: r["finished"])
    assert first["cold_start"] == "True" and float(second["phase_s"]) < float(first["phase_s"])
    assert (out / "scan_a" / "provenance.yaml").read_text().count("role: model phase") == 1
