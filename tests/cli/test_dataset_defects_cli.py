"""``bcdi-dl dataset defects``: a labelled, resumable set; the range overrides of the other kinds refused."""

from __future__ import annotations

import json

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.core.simulate.datasets import load_dataset


def test_dataset_defects_cli(tmp_path, capsys):
    out = tmp_path / "defects"
    assert main(["dataset", "defects", str(out), "--n", "4", "--size", "32", "--seed", "9", "--quiet"]) == 0
    assert "4 defects samples of size 32" in capsys.readouterr().out
    m = json.loads((out / "manifest.json").read_text())
    assert m["kind"] == "defects" and m["complete"] and m["labels"] == ["none", "edge", "screw", "mixed"]
    d = load_dataset(out)
    assert d["label"].tolist() == [0, 1, 2, 3]
    assert all(p["seed"] == {"dataset_seed": 9, "index": i} for i, p in enumerate(d["params"]))
    assert all(1e5 <= p["max_counts"] <= 1e8 for p in d["params"])


def test_dataset_defects_refuses_overrides(tmp_path, capsys):
    rc = main(["dataset", "defects", str(tmp_path / "d"), "--n", "4", "--size", "32", "--shapes", "hull",
               "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ranges are fixed" in err
