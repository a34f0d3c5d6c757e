"""``pipeline.folder.read_result``: a finished scan folder read back as the plugin's one result type."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.pipeline.config import load_config
from napari_bcdi_dl.pipeline.folder import process_scan, read_result
from napari_bcdi_dl.pipeline.runner import as_item

from .conftest import save_scan, write_config


def test_a_finished_folder_reads_back_as_written(tmp_path, patterns):
    save_scan(tmp_path / "scan_a.npz", patterns[0])
    cfg = load_config(write_config(tmp_path, scans=["scan_a.npz"],
                                   phase={"method": "conventional", "recipe": "HIO**20, ER**20", "runs": 1},
                                   export={"thumbnail": False}))
    final = tmp_path / "out" / "scan_a"
    final.parent.mkdir()
    row = process_scan(cfg, as_item(cfg, "scan_a.npz"), final)
    assert row["status"] == "done"
    got = read_result(final)
    assert got.folder == final and got.row == json.loads((final / "done.json").read_text())
    res = got.result
    with np.load(final / "reconstruction.npz") as f:
        np.testing.assert_array_equal(res.obj, f["obj"])
    with np.load(final / "strain.npz") as f:
        inside = res.strain.support != 0
        np.testing.assert_array_equal(res.strain.strain[inside], f["het_strain"][inside])
    assert res.llk == pytest.approx(row["llk"]) and res.method == "conventional"
    assert res.source == str(final / "reconstruction.npz") and res.data_name == row["input"]
    assert res.config["phase"]["recipe"] == "HIO**20, ER**20" and "provenance" not in res.config
    assert res.provenance["inputs"][0]["sha256"]


def test_an_unfinished_or_failed_folder_is_refused_in_one_line(tmp_path, patterns):
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated zip")
    cfg = load_config(write_config(tmp_path, scans=["broken.npz"], phase={"recipe": "HIO**5"}))
    final = tmp_path / "out" / "broken"
    final.parent.mkdir()
    assert process_scan(cfg, as_item(cfg, "broken.npz"), final)["status"] == "failed"
    for folder, state in ((final, "failed"), (tmp_path / "out" / "nothing", "absent")):
        with pytest.raises(BCDIError) as err:
            read_result(folder)
        assert state in str(err.value) and "\n" not in str(err.value)
