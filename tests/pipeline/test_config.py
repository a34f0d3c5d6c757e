"""The pipeline configuration: defaults from core/models, one-line errors before any work."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from napari_bcdi_dl.cli import main
from napari_bcdi_dl.core.errors import BCDIError
from napari_bcdi_dl.pipeline.config import PipelineConfig, config_from_dict, load_config, reference
from napari_bcdi_dl.pipeline.scans import expand_scans

from .conftest import write_config

REPO = Path(__file__).resolve().parents[2]
MINIMAL = 'scans: [scan_a.npz, scan_b.npz, "more/*.npz"]\nphase: {method: conventional, recipe: "HIO**50, ER**50", runs: 2}\n'


def test_the_minimal_config_of_the_issue_loads_as_it_is(scan_dir, tmp_path, monkeypatch):
    path = scan_dir / "minimal.yaml"
    path.write_text(MINIMAL)
    monkeypatch.chdir(tmp_path.parent)  # relative paths are relative to the config file, not the cwd
    cfg = load_config(path)
    assert (cfg.phase.method, cfg.phase.recipe, cfg.phase.runs) == ("conventional", "HIO**50, ER**50", 2)
    items = expand_scans(cfg)
    assert [i.name for i in items] == ["scan_a", "scan_b", "more_scan_c"]
    assert all(i.path.is_absolute() and i.path.is_file() for i in items)


def test_defaults_come_from_the_functions_that_do_the_work():
    from napari_bcdi_dl.core.phasing import phase
    from napari_bcdi_dl.core.phasing.recipe import DEFAULT_RECIPE
    from napari_bcdi_dl.models import dl_phasing

    cfg = PipelineConfig()
    sig = inspect.signature(phase).parameters
    assert cfg.phase.recipe == DEFAULT_RECIPE
    for key in ("runs", "seed", "support_threshold", "support_method", "select", "backend"):
        assert getattr(cfg.phase, key) == sig[key].default, key
    assert cfg.phase.candidates == dl_phasing.DEFAULT_CANDIDATES
    assert cfg.phase.tta == inspect.signature(dl_phasing.predict_and_refine).parameters["tta"].default
    assert config_from_dict({}).resolved()["phase"]["refine"] == dl_phasing.DEFAULT_REFINE


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"phase": {"method": "conventional", "runz": 2}}, ["unknown key 'phase.runz'", "runs"]),
        ({"phase": {"runs": "two"}}, ["'phase.runs'", "integer", "'two'"]),
        ({"phase": {"method": "magic"}}, ["'phase.method'", "'conventional' or 'dl'"]),
        ({"inpaint": {"method": "smart"}}, ["'inpaint.method'", "'linear'", "'dl'"]),
        ({"phase": {"recipe": "HIO**x"}}, ["'phase.recipe'", "HIO**x"]),
        ({"scans": ["nothere.npz"]}, ["scans[0].file", "no such file", "nothere.npz"]),
        ({"mask": {"file": "nomask.npy"}}, ["mask.file", "no such file"]),
        ({"export": {"reconstruction": "h5"}}, ["'export.reconstruction[0]'", "'npz' or 'cxi'"]),
        ({"read": {"roi": [1, 2]}}, ["'read.roi'", "too few values"]),
        ("just text", ["must be a mapping"]),
    ],
)
def test_bad_configs_fail_in_one_line_naming_the_key(tmp_path, data, words):
    with pytest.raises(BCDIError) as info:
        config_from_dict(data, tmp_path, source="cfg.yaml")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("cfg.yaml")
    for w in words:
        assert w in msg, (w, msg)


def test_bad_yaml_is_one_line_with_its_position(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("scans: [a.npz\nphase: {runs: 2}\n")
    with pytest.raises(BCDIError, match=r"not valid YAML at line \d+"):
        load_config(path)


@pytest.mark.parametrize("command", ["batch", "run"])
@pytest.mark.parametrize(
    ("data", "word"),
    [({"scans": ["scan_a.npz"], "phase": {"runz": 2}}, "unknown key 'phase.runz'"),
     ({"scans": ["scan_a.npz"], "phase": {"runs": [2]}}, "'phase.runs' must be an integer"),
     ({"scans": ["scan_a.npz", "missing.npz"]}, "scans[1].file: no such file")],
)
def test_cli_refuses_a_bad_config_before_any_work(scan_dir, capsys, command, data, word):
    cfg = write_config(scan_dir, **data)
    out = scan_dir / "results"
    before = sorted(p.name for p in scan_dir.rglob("*"))
    rc = main([command, str(cfg), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith(f"bcdi-dl {command}: error: ") and word in err, err
    assert not out.exists()  # nothing written, no cluster started
    assert sorted(p.name for p in scan_dir.rglob("*")) == before


def test_docs_list_every_key():
    doc = (REPO / "docs" / "batch.md").read_text(encoding="utf-8")
    missing = [key for key, _default, _ in reference() if f"`{key}`" not in doc]
    assert not missing, f"docs/batch.md lacks the keys {missing}"


def test_run_defaults_prints_a_complete_loadable_config(tmp_path, capsys):
    assert main(["run", "--defaults"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "template.yaml").write_text(text.replace("scans: []", "scans: [scan.npz]"))
    (tmp_path / "scan.npz").write_bytes(b"")
    cfg = load_config(tmp_path / "template.yaml")
    assert cfg.resolved()["phase"] == config_from_dict({}).resolved()["phase"]
    for key, _default, _ in reference():
        if key != "provenance":  # written by runs, not by users
            assert key.split(".")[-1] in text, key
